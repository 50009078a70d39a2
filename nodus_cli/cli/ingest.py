"""``nodus ingest``, ``nodus sources`` and ``nodus quarantine``."""

import enum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nodus_cli.cli import state
from nodus_cli.cli.options import FormatOption, JsonOption, resolve_format, time_or_none
from nodus_cli.cli.output import Format, emit_json, error_line, render_rows, say
from nodus_cli.cli.progressbar import progress
from nodus_cli.errors import EXIT_USAGE

if TYPE_CHECKING:
    from nodus_cli.ingest.engine import IngestReport
    from nodus_cli.store import Store
    from nodus_cli.store.db import JournalRun


class IngestFormat(enum.StrEnum):
    auto = "auto"
    jsonl = "jsonl"
    logfmt = "logfmt"
    syslog = "syslog"
    clf = "clf"
    combined = "combined"
    csv = "csv"
    prometheus = "prometheus"
    openmetrics = "openmetrics"
    text = "text"


SUMMARY_COLUMNS = ["path", "format", "records", "rows", "quarantined", "skipped", "seconds"]


def ingest(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Files, directories (recursive, hidden entries skipped), glob patterns, "
            "or - for stdin. gzip is recognised by its magic bytes."
        ),
    ],
    fmt: Annotated[
        IngestFormat,
        typer.Option("--format", help="Input format; auto sniffs the first lines."),
    ] = IngestFormat.auto,
    source: Annotated[
        str | None,
        typer.Option("--source", help="Source name stored with each row (default: file name)."),
    ] = None,
    tz: Annotated[
        str | None,
        typer.Option("--tz", help="Time zone for times written without an offset (default UTC)."),
    ] = None,
    redact_values: Annotated[
        list[str] | None,
        typer.Option(
            "--redact",
            help="Replace values by keyed pseudonyms: a kind (email, ipv4, ipv6, ip) or a "
            "field name; comma lists and repeats allowed.",
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option("--at", help="Scrape time for Prometheus samples without a timestamp."),
    ] = None,
    time_column: Annotated[
        str | None, typer.Option("--time-column", help="CSV: the column holding the time.")
    ] = None,
    series: Annotated[
        str | None, typer.Option("--series", help="CSV: series name instead of the file stem.")
    ] = None,
    max_line: Annotated[
        str,
        typer.Option(
            "--max-line",
            help="Quarantine lines longer than this as too long (bytes; KiB, MiB, GiB suffixes).",
        ),
    ] = "64MiB",
    no_patterns: Annotated[
        bool,
        typer.Option(
            "--no-patterns",
            help="Do not learn log patterns now (the next ingest or nodus patterns does).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Ingest log and metric files into the store, exactly once (re-runs add only new lines).

    Examples:

      nodus ingest samples/                     # a directory: only new lines are added
      nodus ingest 'samples/*.log' --redact ip  # a glob; IP addresses as keyed pseudonyms
      cat samples/syslog.log | nodus ingest - --source syslog-stdin
    """
    from nodus_cli.ingest.engine import IngestOptions
    from nodus_cli.ingest.engine import ingest as run_ingest
    from nodus_cli.ingest.source import parse_size
    from nodus_cli.patterns.learn import learn_pending

    options = IngestOptions(
        format=fmt.value,
        source=source,
        tz=tz,
        redact=list(redact_values or []),
        at=time_or_none(at),
        time_column=time_column,
        series=series,
        max_line=parse_size(max_line, "--max-line"),
    )
    from nodus_cli.store.db import JournalRun

    workspace = state.workspace()
    with state.open_store() as store:
        run = JournalRun(_IngestTotals())
        with store.one_journal_row(run), progress("ingesting") as meter:
            report = run_ingest(
                store,
                paths,
                options,
                secret=workspace.secret() if options.redact else None,
                on_progress=meter,
            )
        _journal_summary(store, run, report)
        if not no_patterns:
            learn_pending(store)
    if as_json:
        emit_json({"files": [f.as_dict() for f in report.files], "totals": report.totals()})
    for result in report.files:
        if result.status == "failed":
            error_line(_failure(result.path, result.error or "failed"))
        elif not as_json:
            layout = f" ({result.layout})" if result.layout else ""
            say(
                f"{result.path}: {result.format}{layout}, {result.records:,} records, "
                f"{result.rows:,} rows, {result.quarantined:,} quarantined, "
                f"{result.skipped:,} lines already ingested, {result.seconds:.2f} s"
            )
    if not as_json:
        totals = report.totals()
        say(
            f"{totals['files']} file(s): {totals['rows']:,} rows, "
            f"{totals['quarantined']:,} quarantined, {totals['failed']} failed"
        )
    if report.failed:
        raise typer.Exit(EXIT_USAGE)  # each failed file has had its one error line


def _failure(path: str, error: str) -> str:
    """``PATH: REASON``, naming the file once even when the reason already does."""
    return error if error.startswith(f"{path}: ") else f"{path}: {error}"


class _IngestTotals:
    """Folds the run's changes (one per window) into files, rows, quarantined, failed."""

    def __init__(self) -> None:
        self.files: set[str] = set()
        self.failed: set[str] = set()
        self.rows = self.quarantined = 0

    def __call__(self, outcome: str, summary: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        path = str(summary.get("path"))
        if outcome == "ok":
            self.files.add(path)
            self.rows += int(summary.get("rows", 0))
            self.quarantined += int(summary.get("quarantined", 0))
        else:
            self.failed.add(path)
        totals = {
            "files": len(self.files | self.failed),
            "rows": self.rows,
            "quarantined": self.quarantined,
            "failed": len(self.failed),
        }
        return ("error" if self.failed else "ok"), totals


def _journal_summary(store: "Store", run: "JournalRun", report: "IngestReport") -> None:
    """The final row: the run's totals, and the files that failed by name."""
    totals = report.totals()
    if run.row_id is None and not (totals["rows"] or totals["quarantined"] or totals["failed"]):
        return  # nothing changed: nothing to journal
    summary: dict[str, Any] = dict(totals)
    if report.failed:
        summary["failed_files"] = [f.path for f in report.failed][:20]
    store.finish_journal_row(run, "error" if report.failed else "ok", summary)


def sources(fmt: FormatOption = None, as_json: JsonOption = False) -> None:
    """List every ingested file: path, fingerprint, format, rows, quarantined, bytes read.

    Examples:

      nodus sources
      nodus sources -f csv
    """
    from nodus_cli.ingest.catalog import list_sources

    with state.open_store(read_only=True) as store:
        listing = list_sources(store)
    render_rows(listing.columns, listing.rows, resolve_format(fmt, as_json))


def quarantine(
    source: Annotated[
        str | None,
        typer.Option("--source", help="Only lines of this source name or file path."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=0, help="Show at most this many lines.")
    ] = None,
    fmt: FormatOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show quarantined lines: file, line, byte offset, reason and the raw text.

    Examples:

      nodus quarantine --source app.jsonl --limit 10
      nodus quarantine --json
    """
    from nodus_cli.ingest.catalog import list_quarantine

    with state.open_store(read_only=True) as store:
        listing = list_quarantine(store, source, limit)
    output = resolve_format(fmt, as_json)
    render_rows(listing.columns, listing.rows, output)
    if output is Format.table and not listing.rows:
        say("No quarantined lines.")


def register(app: typer.Typer) -> None:
    app.command()(ingest)
    app.command()(sources)
    app.command()(quarantine)
