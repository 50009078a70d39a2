"""``nodus patterns`` and ``nodus patterns show``: the kinds of log line and their counts."""

from typing import TYPE_CHECKING, Annotated, Any

import typer

from nodus_cli.cli import flags, state
from nodus_cli.cli.options import (
    FormatOption,
    JsonOption,
    LogSourceOption,
    resolve_format,
    since_option,
    time_or_none,
    until_option,
)
from nodus_cli.cli.output import Format, emit_json, render_rows, say
from nodus_cli.errors import CheckFailed

if TYPE_CHECKING:
    from nodus_cli.patterns.query import Filters

patterns_app = typer.Typer(
    name="patterns",
    invoke_without_command=True,
    no_args_is_help=False,
)

SPARK = "▁▂▃▄▅▆▇█"
SPARK_BUCKETS = 24


@patterns_app.callback()
def patterns(
    ctx: typer.Context,
    source: LogSourceOption = None,
    since: Annotated[str | None, since_option("Only lines at or after this time.")] = None,
    until: Annotated[str | None, until_option("Only lines before this time.")] = None,
    level: Annotated[
        str | None, typer.Option("--level", help="Only lines of this level (info, warn, …).")
    ] = None,
    new_since: Annotated[
        str | None,
        typer.Option(
            "--new-since", help="Only patterns whose first line is at or after this time (1h, ISO)."
        ),
    ] = None,
    top: Annotated[
        int | None, typer.Option("--top", min=1, help="Show the N patterns with most lines.")
    ] = None,
    fail_on_new: Annotated[
        bool,
        typer.Option("--fail-on-new", help="Exit 1 when --new-since finds any pattern."),
    ] = False,
    fmt: FormatOption = None,
    as_json: JsonOption = False,
) -> None:
    """The kinds of log line (templates learned at ingest), new ones and their counts.

    Without a command: the patterns, most lines first, with when each was first and
    last seen.

    Examples:

      nodus patterns --top 10
      nodus patterns --new-since 1h --fail-on-new    # after a deploy, in CI or cron
      nodus patterns show 96b1b8e7828fe68e      # "payment declined: upstream timeout"
    """
    if ctx.invoked_subcommand is not None:
        return
    from nodus_cli.patterns.learn import learn_pending
    from nodus_cli.patterns.query import COLUMNS, Filters, list_patterns

    filters = Filters(
        source=source,
        since=time_or_none(since),
        until=time_or_none(until),
        level=level.lower() if level else None,
        new_since=time_or_none(new_since),
    )
    if fail_on_new and filters.new_since is None:
        raise typer.BadParameter("--fail-on-new needs --new-since", param_hint="--fail-on-new")
    with state.open_store() as store:
        learn_pending(store)  # rows a killed ingest left unlearned
        rows = list_patterns(store.con, filters, top)
        output = resolve_format(fmt, as_json)
        columns = list(COLUMNS)
        if output is Format.table and flags.stdout_is_terminal() and rows:
            columns.insert(2, "lines over time")
            lines = _sparklines(store.con, [r[0] for r in rows], filters)
            rows = [(*r[:2], lines.get(r[0], ""), *r[2:]) for r in rows]
    render_rows(columns, rows, output)
    if output is Format.table and not rows:
        say("No patterns." if filters.new_since is None else "No new patterns.")
    if fail_on_new and rows:
        raise CheckFailed(f"{len(rows)} new pattern(s) since {new_since}")


@patterns_app.command("show")
def show(
    pattern_id: Annotated[str, typer.Argument(help="A pattern id, or its first 4+ hex digits.")],
    examples: Annotated[
        int, typer.Option("--examples", min=1, help="How many distinct example lines.")
    ] = 5,
    bucket: Annotated[
        str, typer.Option("--bucket", help="Bucket width of the counts over time (e.g. 1h, 5m).")
    ] = "1h",
    as_json: JsonOption = False,
) -> None:
    """Show one pattern: its template, example lines and its lines per time bucket.

    Examples:

      nodus patterns show 96b1b8e7828fe68e --bucket 10m
    """
    from nodus_cli.patterns.query import show_pattern
    from nodus_cli.timeparse import parse_duration

    width = parse_duration(bucket)
    with state.open_store(read_only=True) as store:
        detail = show_pattern(
            store.con, pattern_id, examples=examples, bucket=f"{int(width.total_seconds())} seconds"
        )
    if as_json:
        emit_json(
            {
                "id": detail.id,
                "template": detail.template,
                "count": detail.count,
                "first_seen": detail.first_seen,
                "last_seen": detail.last_seen,
                "sources": detail.sources,
                "levels": detail.levels,
                "learned_at": detail.learned_at,
                "examples": detail.examples,
                "absorbed": detail.absorbed,
                "buckets": [{"time": t, "count": n} for t, n in detail.buckets],
            }
        )
        return
    render_rows(
        ["field", "value"],
        [
            ("id", detail.id),
            ("template", detail.template),
            ("count", detail.count),
            ("first seen", detail.first_seen),
            ("last seen", detail.last_seen),
            ("sources", ", ".join(detail.sources)),
            ("levels", detail.levels),
            ("learned at", detail.learned_at),
            ("absorbed", ", ".join(detail.absorbed) or "-"),
        ],
        Format.table,
    )
    render_rows(["example"], [(e,) for e in detail.examples], Format.table)
    render_rows(["bucket", "lines"], detail.buckets, Format.table)


def _sparklines(con: Any, ids: list[str], filters: "Filters") -> dict[str, str]:
    """One bar per time bucket over the listed patterns' whole span."""
    from nodus_cli.patterns.query import lines_per_bucket

    counts = lines_per_bucket(con, ids, filters, SPARK_BUCKETS)
    lines = {}
    for pattern_id, series in counts.items():
        peak = max(series) or 1
        lines[pattern_id] = "".join(
            " " if n == 0 else SPARK[min(len(SPARK) - 1, (n * len(SPARK) - 1) // peak)]
            for n in series
        )
    return lines


def register(app: typer.Typer) -> None:
    app.add_typer(patterns_app)
