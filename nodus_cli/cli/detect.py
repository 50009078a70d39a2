"""``nodus detect`` and ``nodus forecast``: anomalies now, threshold crossings soon."""

import enum
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

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
    labels: Annotated[
        str | None,
        typer.Option("--labels", help="Pick one label set of the series: 'label=value,...'."),
    ] = None,
    each: Annotated[
        bool,
        typer.Option("--each", help="Score every label set of the series as its own series."),
    ] = False,
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
    Scores are tail probabilities on one scale for every method: 0.5 and above is
    an anomaly, flagged once per incident. A name with several label sets needs
    --labels or --each.
    """
    from nodus_cli.anomaly.detect import detect as run_detect
    from nodus_cli.anomaly.source import label_sets, parse_series, sql_source
    from nodus_cli.cli.core import read_sql_argument

    if (series is None) == (sql is None):
        raise UsageError("give a SERIES or --sql QUERY (one of them)")
    if sql is not None and (labels or each):
        raise UsageError("--labels and --each apply to a SERIES, not to --sql")
    if sql is not None:
        source = sql_source(read_sql_argument(sql))
    else:
        assert series is not None
        source = parse_series(series, labels)
    only_anomalies = points is Points.anomalies
    output = resolve_format(fmt, as_json)
    results = []
    with state.open_store() as store:
        sources = label_sets(store, source) if each else [source]
        for one in sources:
            with progress(f"scoring {one.key}") as advance:
                results.append(
                    run_detect(
                        store,
                        one,
                        method_name=method,
                        since=parse_time(since) if since else None,
                        until=parse_time(until) if until else None,
                        from_scratch=from_scratch,
                        on_progress=advance,
                    )
                )
    if as_json and fmt is None:
        documents = [
            {
                "series": result.series,
                "method": result.method,
                "resumed_after": result.resumed_after,
                "scored": result.scored,
                "last_time": result.last_time,
                "anomalies": result.found,
                "points": [
                    {"time": t, "value": v, "score": s, "anomaly": a, "reason": r or None}
                    for t, v, s, a, r in result.points(only_anomalies)
                ],
            }
            for result in results
        ]
        emit_json({"series": documents} if each else documents[0])
    else:
        columns = ["timestamp", "value", "score", "anomaly"]
        if output is not Format.csv:
            columns.append("reason")
        rows: Iterator[tuple[Any, ...]] = (
            ((result.series,) if each else ()) + row[: len(columns)]
            for result in results
            for row in result.points(only_anomalies)
        )
        if output is Format.table:
            rows = head_and_tail(rows, TABLE_ROWS)
        render_rows(["series", *columns] if each else columns, rows, output)
    for result in results:
        say(
            f"{result.series}: scored {result.scored:,} new points with {result.method}, "
            f"new anomalies: {result.found}"
        )
    flagged = [result for result in results if result.found]
    if fail_on_anomaly and flagged:
        raise CheckFailed(
            "new anomalies in "
            + ", ".join(f"{result.series}: {result.found}" for result in flagged)
        )


TABLE_ROWS = 20  # a terminal table shows this many first and last rows


def head_and_tail(rows: Iterator[tuple[Any, ...]], keep: int) -> Iterator[tuple[Any, ...]]:
    """The first and last ``keep`` rows, with one row saying how many were left out."""
    from collections import deque

    tail: deque[tuple[Any, ...]] = deque(maxlen=keep)
    skipped = 0
    width = 0
    for count, row in enumerate(rows):
        width = len(row)
        if count < keep:
            yield row
            continue
        if len(tail) == keep:
            skipped += 1
        tail.append(row)
    if skipped:
        yield (f"... {skipped:,} rows not shown (use --format csv for all)",) + ("",) * (width - 1)
    yield from tail


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
    all_steps: Annotated[
        bool,
        typer.Option(
            "--all-steps",
            help="The report's table lists every step ahead, not only the first crossing, "
            "the peak and the end of the horizon.",
        ),
    ] = False,
    generated: Annotated[
        str | None,
        typer.Option(
            "--generated",
            help="The generation time the report states (e.g. now; default: the time of "
            "the last point, so the same data gives the same report).",
        ),
    ] = None,
    tz: Annotated[
        str | None,
        typer.Option("--tz", help="Show times in this time zone, e.g. Europe/Paris (default UTC)."),
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
    """Forecast a series with prediction intervals and the time it crosses a threshold."""
    from nodus_cli.anomaly.source import parse_series
    from nodus_cli.forecast.model import forecast_source
    from nodus_cli.forecast.report import ReportOptions, write_report

    span = parse_duration(horizon)
    if span.total_seconds() <= 0:
        raise UsageError("--horizon must be positive")
    zone = time_zone(tz) if tz else None
    options = ReportOptions(
        generated=parse_time(generated) if generated else None, all_steps=all_steps
    )
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
    if zone is not None:
        result = result.localized(zone)
    if report is not None:
        written = write_report(result, report, options)
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


def time_zone(name: str) -> Any:
    """The IANA time zone ``name`` (``--tz``); an unknown name is a usage error."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"--tz {name!r}: unknown time zone (expected e.g. Europe/Paris)") from None


def register(app: typer.Typer) -> None:
    app.command()(detect)
    app.command()(forecast)
