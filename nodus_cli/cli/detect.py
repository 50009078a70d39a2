"""``nodus detect`` and ``nodus forecast``: anomalies now, threshold crossings soon."""

import enum
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nodus_cli.anomaly.methods import METHODS  # cheap: no heavy imports
from nodus_cli.cli import state
from nodus_cli.cli.options import (
    AllowFilesOption,
    FormatOption,
    JsonOption,
    resolve_format,
    since_option,
    until_option,
)
from nodus_cli.cli.output import (
    Format,
    dumps,
    emit_json,
    render_rows,
    say,
)
from nodus_cli.cli.progressbar import progress
from nodus_cli.errors import CheckFailed, UsageError
from nodus_cli.timeparse import parse_duration, parse_time

if TYPE_CHECKING:
    from datetime import datetime, timedelta

    from nodus_cli.anomaly.source import Source


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
    pattern: Annotated[
        str | None,
        typer.Option(
            "--pattern", help="Score a log pattern's lines per --bucket (nodus patterns)."
        ),
    ] = None,
    all_patterns: Annotated[
        bool,
        typer.Option(
            "--patterns", help="Score every log pattern's rate; a new pattern is an anomaly too."
        ),
    ] = False,
    bucket: Annotated[
        str, typer.Option("--bucket", help="With --pattern(s): the width of a count (1m, 5m).")
    ] = "1m",
    level: Annotated[
        str | None,
        typer.Option("--level", help="With --pattern(s): count only lines of this level."),
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
        str | None, since_option("Only points at or after this time (new points only).")
    ] = None,
    until: Annotated[str | None, until_option("Only points at or before this time.")] = None,
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
    allow_files: AllowFilesOption = None,
    fmt: FormatOption = None,
    as_json: JsonOption = False,
) -> None:
    """Score the new points of a series for anomalies, continuing from the last run.

    The detector state is saved in the store, so a cron job scores only new points
    and gets the same result as one long run. Anomalies go to the anomalies table.
    Scores are tail probabilities on one scale for every method: 0.5 and above is
    an anomaly, flagged once per incident. A name with several label sets needs
    --labels or --each. --pattern scores a log pattern's lines per --bucket, and
    --patterns every pattern's (with --since, a pattern first seen in the window is
    an anomaly with reason "first seen").

    Examples:

      nodus detect cpu                          # new anomalies since the last run
      nodus detect --pattern 96b1b8e7828fe68e --bucket 1h   # one log pattern's lines per hour
      nodus detect --patterns --since 1h --level error --fail-on-anomaly   # from cron
    """
    from nodus_cli.anomaly.detect import detect as run_detect
    from nodus_cli.anomaly.detect import record_first_seen
    from nodus_cli.anomaly.source import fetch_sql_points, label_sets, parse_series, sql_source
    from nodus_cli.cli.core import read_sql_argument

    chosen = [series is not None, sql is not None, pattern is not None, all_patterns]
    if sum(chosen) != 1:
        raise UsageError("give a SERIES, --sql QUERY, --pattern ID or --patterns (one of them)")
    if allow_files and sql is None:
        raise UsageError("--allow-files goes with --sql")
    since_time = parse_time(since) if since else None
    until_time = parse_time(until) if until else None
    if series is None and (labels or each):
        raise UsageError("--labels and --each apply to a SERIES")
    first_seen: list[tuple[Any, ...]] = []
    if sql is not None:
        source = sql_source(read_sql_argument(sql))
        with state.open_user_sql(allow_files or []) as sandbox:  # never where it could write
            source = fetch_sql_points(sandbox, source, since=since_time, until=until_time)
    elif pattern is not None or all_patterns:
        pattern_sources, first_seen = _pattern_sources(
            pattern, parse_duration(bucket), level, since_time, until_time
        )
    else:
        assert series is not None
        source = parse_series(series, labels)
    only_anomalies = points is Points.anomalies
    output = resolve_format(fmt, as_json)
    results = []
    many = each or all_patterns
    with state.open_store() as store:
        if pattern is not None or all_patterns:
            sources = pattern_sources
            record_first_seen(store, first_seen, method)
        else:
            sources = label_sets(store, source) if each else [source]
        for one in sources:
            with progress(f"scoring {one.key}", unit="points") as advance:
                results.append(
                    run_detect(
                        store,
                        one,
                        method_name=method,
                        since=since_time,
                        until=until_time,
                        from_scratch=from_scratch,
                        on_progress=advance,
                    )
                )
    if as_json and fmt is None:
        emit_detections(results, only_anomalies, many)
    else:
        columns = ["timestamp", "value", "score", "anomaly"]
        if output is not Format.csv:
            columns.append("reason")
        rows: Iterator[tuple[Any, ...]] = (
            ((result.series,) if many else ()) + row[: len(columns)]
            for result in results
            for row in result.points(only_anomalies)
        )
        if output is Format.table:
            rows = head_and_tail(rows, TABLE_ROWS)
        render_rows(["series", *columns] if many else columns, rows, output)
    for result in results:
        say(
            f"{result.series}: scored {result.scored:,} new points with {result.method}, "
            f"new anomalies: {result.found}"
        )
    for key, _time, _value, reason in first_seen:
        say(f"{key}: {reason}")
    flagged = [f"{result.series}: {result.found}" for result in results if result.found]
    flagged += [f"{key}: first seen" for key, *_ in first_seen]
    if fail_on_anomaly and flagged:
        raise CheckFailed("new anomalies in " + ", ".join(flagged))


def _pattern_sources(
    pattern: str | None,
    bucket: "timedelta",
    level: str | None,
    since: "datetime | None",
    until: "datetime | None",
) -> tuple[list["Source"], list[tuple[Any, ...]]]:
    """The rate series of one pattern or of every current one, read in the sandbox, and
    (with --patterns) the patterns first seen in the window: (key, time, lines, reason)."""
    from nodus_cli.anomaly.source import Source, fetch_sql_points
    from nodus_cli.patterns.rates import PatternRate, current_patterns, pattern_rate, rate_sql

    with state.open_user_sql([]) as sandbox:
        if pattern is not None:
            rates = [pattern_rate(sandbox.con, pattern, bucket, level)]
        else:
            rates = [
                PatternRate(pid, template, bucket, rate_sql(pid, bucket, level))
                for pid, template in current_patterns(sandbox.con, level)
            ]
        sources = [
            fetch_sql_points(sandbox, Source(rate.key, sql=rate.sql), since=since, until=until)
            for rate in rates
        ]
        new = []
        if pattern is None and since is not None:
            firsts = {
                int(pid): (first, count)
                for pid, first, count in sandbox.con.execute(
                    "SELECT id, first_seen, count FROM patterns WHERE kind = 'template' "
                    "AND absorbed_by IS NULL AND first_seen >= ?"
                    + (" AND first_seen <= ?" if until is not None else ""),
                    [since, *([until] if until is not None else [])],
                ).fetchall()
            }
            new = [
                (
                    rate.key,
                    firsts[rate.pattern_id][0],
                    firsts[rate.pattern_id][1],
                    f"first seen: {rate.template}",
                )
                for rate in rates
                if rate.pattern_id in firsts
            ]
    return sources, new


def emit_detections(results: list[Any], only_anomalies: bool, many: bool) -> None:
    """The --json document of ``results``, its points streamed one at a time.

    The same text as ``emit_json`` of the whole document: each points list is left
    as a unique placeholder in the document, which is written around them.
    """
    import secrets
    import sys

    token = secrets.token_hex(16)
    documents = [
        {
            "series": result.series,
            "method": result.method,
            "resumed_after": result.resumed_after,
            "scored": result.scored,
            "last_time": result.last_time,
            "anomalies": result.found,
            "points": f"{token}{number}",
        }
        for number, result in enumerate(results)
    ]
    text = dumps({"series": documents} if many else documents[0]) + "\n"
    out = sys.stdout
    for number, result in enumerate(results):
        before, text = text.split(f'"{token}{number}"', 1)
        out.write(before)
        key_line = before.rsplit("\n", 1)[-1]  # '    "points": '
        indent = key_line[: len(key_line) - len(key_line.lstrip(" "))]
        inner = "\n" + indent + "  "
        count = 0
        for t, v, s, a, r in result.points(only_anomalies):
            point = {"time": t, "value": v, "score": s, "anomaly": a, "reason": r or None}
            out.write("," if count else "[")
            out.write(inner + dumps(point).replace("\n", inner))
            count += 1
        out.write(f"\n{indent}]" if count else "[]")
    out.write(text)
    out.flush()


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
        str | None, until_option("Forecast from the history up to this time (default: all).")
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
    """Forecast a series with prediction intervals and the time it crosses a threshold.

    Examples:

      nodus forecast disk_used_pct --threshold 90 --report disk.html
      nodus forecast disk_used_pct --horizon 1d --threshold 90 \\
        --fail-on-breach                          # exit 1: 90% is crossed within a day
    """
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
