"""``nodus timeline``: one time-ordered list across logs, anomalies and every change."""

from pathlib import Path
from typing import Annotated

import typer

from nodus_cli.cli import state
from nodus_cli.cli.options import (
    AsOfOption,
    FormatOption,
    JsonOption,
    LogSourceOption,
    resolve_format,
    since_option,
    until_option,
)
from nodus_cli.cli.output import Format, emit_json, render_rows, say
from nodus_cli.timeparse import parse_duration, parse_time, shift

COLUMNS = ["time", "kind", "source", "summary", "count", "last", "ref"]


def timeline(
    around: Annotated[
        str | None,
        typer.Option("--around", help="The moment of an incident: rank what happened before it."),
    ] = None,
    window: Annotated[
        str, typer.Option("--window", help="How far before (and after) --around to look.")
    ] = "30m",
    since: Annotated[
        str | None, since_option("Start of the listing (default: a window ago).")
    ] = None,
    until: Annotated[str | None, until_option("End of the listing (default: now).")] = None,
    kinds: Annotated[
        str | None,
        typer.Option(
            "--kinds",
            help="Comma list of logs, anomalies, config, keys, audit, journal, patterns (all).",
        ),
    ] = None,
    source: LogSourceOption = None,
    min_level: Annotated[
        str, typer.Option("--min-level", help="Log lines at this level and above.")
    ] = "warn",
    as_of: AsOfOption = None,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report", help="Also write a self-contained HTML page (same input, same bytes)."
        ),
    ] = None,
    fmt: FormatOption = None,
    as_json: JsonOption = False,
) -> None:
    """List events in time order; with --around, what happened before it, ranked.

    Log lines at --min-level and above are grouped per pattern and source ("x120"
    with the first and last time), or per message and minute before patterns were
    learned. Every event has a reference to follow: a command, or a file and line.

    With --around T, the events of the window before T are ranked by a fixed rule
    with no weights: first the changes someone made (a configuration applied or
    rolled back, a key generated, rotated or revoked), nearest first; then the
    changes nodus saw (a new log pattern, a new source), nearest first; then the
    first anomaly of each series, earliest first. Ties fall to kind and summary, so
    the same store always gives the same ranking.

    Examples:

      nodus timeline --around 2026-11-20T14:17 --window 30m   # the samples' cpu spike

      nodus timeline --since 2h --kinds config,anomalies --format csv

      nodus timeline --around 2026-11-20T14:17 --report incident.html
    """
    import datetime as dt

    from nodus_cli.keys.keylog import LOG_FILE
    from nodus_cli.timeline.events import Window, collect, parse_kinds, parse_level
    from nodus_cli.timeline.rank import related

    width = parse_duration(window)
    moment = parse_time(around) if around else None
    what = f"--window {window}"
    now = dt.datetime.now(dt.UTC)
    end = parse_time(until) if until else (shift(moment, width, what) if moment else now)
    start = parse_time(since) if since else shift(moment or end, -width, what)
    known = parse_time(as_of) if as_of else None
    scope = Window(start, end, parse_kinds(kinds), source, parse_level(min_level), known)
    workspace = state.workspace()
    with state.open_store(read_only=True) as store:
        if known is not None:
            from nodus_cli.store.asof import shadow_as_of

            shadow_as_of(store.con, known)
        events = collect(store.con, scope, workspace.keyring_dir / LOG_FILE)
    ranked = related(events, moment, width) if moment else []
    if report is not None:
        from nodus_cli.fsutil import atomic_write
        from nodus_cli.timeline.report import render_html

        atomic_write(report, render_html(events, ranked, start, end, moment))
    output = resolve_format(fmt, as_json)
    if as_json and fmt is None:
        emit_json(
            {
                "since": start,
                "until": end,
                "around": moment,
                "events": [e.to_json() for e in events],
                "related": [r.to_json() for r in ranked],
            }
        )
        return
    render_rows(
        COLUMNS,
        [(e.time, e.kind, e.source, e.summary, e.count, e.last, e.ref) for e in events],
        output,
    )
    if output is Format.table:
        if not events:
            say("No events in the window.")
        if moment is not None:
            render_rows(
                ["before", "kind", "summary", "why", "ref"],
                [
                    (f"{r.minutes_before:g} min", r.event.kind, r.event.summary, r.why, r.event.ref)
                    for r in ranked
                ],
                Format.table,
            )


def register(app: typer.Typer) -> None:
    app.command()(timeline)
