"""``nodus detect`` and ``nodus forecast``: anomalies now, threshold crossings soon."""

import enum
from pathlib import Path
from typing import Annotated

import typer

from nodus_cli.anomaly.methods import METHODS  # cheap: no heavy imports
from nodus_cli.cli import state
from nodus_cli.cli.output import (
    Format,
    FormatOption,
    JsonOption,
    emit_json,
    progress,
    render_rows,
    resolve_format,
    say,
)
from nodus_cli.errors import CheckFailed, UsageError
from nodus_cli.timeparse import parse_duration, parse_time


class Points(enum.StrEnum):
    anomalies = "anomalies"
    all = "all"


class Direction(enum.StrEnum):
    above = "above"
    below = "below"


def detect(
    series: Annotated[
        str | None,
        typer.Argument(help='Series name, optionally with labels: cpu{host="web1"}.'),
    ] = None,
    sql: Annotated[
        str | None,
        typer.Option("--sql", help="A query returning (time, value) instead of a series."),
    ] = None,
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help="Detector: " + "; ".join(f"{m.name}: {m.help}" for m in METHODS.values()) + ".",
        ),
    ] = "auto",
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only points at or after this time (new points only)."),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Only points at or before this time.")
    ] = None,
    points: Annotated[
        Points,
        typer.Option("--points", help="Print only anomalies, or every scored point."),
    ] = Points.anomalies,
    fail_on_anomaly: Annotated[
        bool, typer.Option("--fail-on-anomaly", help="Exit 1 when a new anomaly was found.")
    ] = False,
    from_scratch: Annotated[
        bool,
        typer.Option("--from-scratch", help="Forget the saved detector state and start over."),
    ] = False,
    fmt: FormatOption = None,
    as_json: JsonOption = False,
) -> None:
    """Score the new points of a series for anomalies, continuing from the last run.

    The detector state is saved in the store, so a cron job scores only new points
    and gets the same result as one long run. Anomalies go to the anomalies table.

    Examples:

      nodus detect cpu                          # new anomalies since the last run
      nodus detect cpu --from-scratch --points all -f csv   # every point's score
      nodus detect --sql "SELECT time, value FROM metrics WHERE series = 'cpu'" \\
        --fail-on-anomaly                         # exit 1: the spike is new to this query
    """
    from nodus_cli.anomaly.detect import detect as run_detect
    from nodus_cli.anomaly.source import parse_series, sql_source
    from nodus_cli.cli.core import read_sql_argument

    if (series is None) == (sql is None):
        raise UsageError("give a SERIES or --sql QUERY (one of them)")
    if sql is not None:
        source = sql_source(read_sql_argument(sql))
    else:
        assert series is not None
        source = parse_series(series)
    with state.open_store() as store, progress("scoring") as advance:
        result = run_detect(
            store,
            source,
            method_name=method,
            since=parse_time(since) if since else None,
            until=parse_time(until) if until else None,
            from_scratch=from_scratch,
            on_progress=advance,
        )
    only_anomalies = points is Points.anomalies
    output = resolve_format(fmt, as_json)
    if as_json and fmt is None:
        emit_json(
            {
                "series": result.series,
                "method": result.method,
                "resumed_after": result.resumed_after,
                "scored": result.scored,
                "last_time": result.last_time,
                "anomalies": len(result.anomalies),
                "points": [
                    {"time": t, "value": v, "score": s, "anomaly": a, "reason": r or None}
                    for t, v, s, a, r in result.points(only_anomalies)
                ],
            }
        )
    elif output is Format.csv:
        render_rows(
            ["timestamp", "value", "score", "anomaly"],
            (row[:4] for row in result.points(only_anomalies)),
            output,
        )
    else:
        render_rows(
            ["timestamp", "value", "score", "anomaly", "reason"],
            result.points(only_anomalies),
            output,
        )
    say(
        f"{result.series}: scored {result.scored:,} new points with {result.method}, "
        f"new anomalies: {len(result.anomalies)}"
    )
    if fail_on_anomaly and result.anomalies:
        raise CheckFailed(f"new anomalies in {result.series}: {len(result.anomalies)}")


def forecast(
    series: Annotated[
        str, typer.Argument(help='Series name, optionally with labels: disk{host="db1"}.')
    ],
    horizon: Annotated[
        str, typer.Option("--horizon", help="How far ahead to forecast (e.g. 6h, 2d).")
    ] = "6h",
    until: Annotated[
        str | None,
        typer.Option("--until", help="Forecast from the history up to this time (default: all)."),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option("--threshold", help="A limit: report when the forecast crosses it."),
    ] = None,
    direction: Annotated[
        Direction,
        typer.Option("--direction", help="Crossing means going above or below the threshold."),
    ] = Direction.above,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Write a report: FILE.html (self-contained chart), FILE.md (chart as "
            "FILE.png beside it) or FILE.json.",
        ),
    ] = None,
    fail_on_breach: Annotated[
        bool,
        typer.Option(
            "--fail-on-breach", help="Exit 1 when a crossing is predicted within the horizon."
        ),
    ] = False,
    fmt: FormatOption = None,
    as_json: JsonOption = False,
) -> None:
    """Forecast a series with prediction intervals and the time it crosses a threshold.

    Examples:

      nodus forecast disk_used_pct --threshold 90 --report disk.html
      nodus forecast disk_used_pct --horizon 1d --threshold 90 \\
        --fail-on-breach                          # exit 1: 90% is crossed within a day
    """
    from nodus_cli.anomaly.source import parse_series
    from nodus_cli.forecast.model import forecast_source
    from nodus_cli.forecast.report import write_report

    span = parse_duration(horizon)
    if span.total_seconds() <= 0:
        raise UsageError("--horizon must be positive")
    source = parse_series(series)
    with state.open_store(read_only=True) as store:
        result = forecast_source(
            store,
            source,
            horizon=span,
            until=parse_time(until) if until else None,
            threshold=threshold,
            direction=direction.value,
        )
    if report is not None:
        written = write_report(result, report)
        with state.open_store() as store:
            store.record("ok", {"series": result.series, "report": [str(p) for p in written]})
        say(f"Wrote {', '.join(str(p) for p in written)}")
    output = resolve_format(fmt, as_json)
    if as_json and fmt is None:
        emit_json(result.document())
    else:
        render_rows(
            ["timestamp", "forecast", "lower", "upper"],
            ((row["time"], row["forecast"], row["lower"], row["upper"]) for row in result.rows()),
            output,
        )
    say(result.summary())
    if fail_on_breach and result.crossing is not None:
        raise CheckFailed(result.summary())


def register(app: typer.Typer) -> None:
    app.command()(detect)
    app.command()(forecast)
