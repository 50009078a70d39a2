"""``nodus sql``: verified rewrites, honest transpiling, lint with safe fixes, advice."""

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nodus_cli.cli import state
from nodus_cli.cli.options import FormatOption, JsonOption, resolve_format
from nodus_cli.cli.output import (
    Format,
    detail,
    emit_json,
    render_rows,
    say,
    visible,
    warn,
    write_text,
)
from nodus_cli.errors import UsageError
from nodus_cli.fsutil import read_text

if TYPE_CHECKING:
    from nodus_cli.sqltools.catalog import Catalog
    from nodus_cli.sqltools.rewrite import RewriteReport

sql_app = typer.Typer(
    name="sql",
    help="Rewrite queries (verified by execution), transpile between dialects, lint, advise."
    "\n\nExamples:\n\n"
    "  nodus sql rules\n"
    '  echo "SELECT level FROM logs WHERE level = NULL" | nodus sql lint  '
    "# exit 1: a finding",
    no_args_is_help=True,
)

SourceArgument = Annotated[
    str, typer.Argument(help="SQL file, or '-' for stdin.", show_default="-")
]
DialectOption = Annotated[
    str, typer.Option("--dialect", "-d", help="SQL dialect of the input (sqlglot name).")
]
DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help="DuckDB file to read the schema from and verify on (default: the store).",
        show_default=False,
    ),
]
RulesOption = Annotated[
    str,
    typer.Option(
        "--rules",
        help="Rewrite rules: default, all, or a comma-separated list (see 'nodus sql rules').",
    ),
]
RunsOption = Annotated[
    int,
    typer.Option(
        "--runs", min=1, help="Interleaved timing pairs before the interval is first looked at."
    ),
]


def _read_source(source: str) -> str:
    text = read_text("-" if source == "-" else Path(source), "an SQL file")
    if not text.strip():
        raise UsageError(f"{'stdin' if source == '-' else source}: no SQL given")
    return text


@contextlib.contextmanager
def _database(db: Path | None, *, needed: bool) -> Iterator[Any]:
    """A connection to ``--db`` or the store; None when neither exists and none is needed."""
    from nodus_cli.sqltools.catalog import connect_database

    if db is not None:
        con = connect_database(db)
        try:
            yield con
        finally:
            con.close()
        return
    if not needed and not state.workspace().store_path.exists():
        yield None
        return
    with state.open_user_sql() as store:
        yield store.con


def _catalog(con: Any) -> "Catalog | None":
    from nodus_cli.sqltools.catalog import read_catalog

    return read_catalog(con) if con is not None else None


@sql_app.command("rewrite")
def rewrite(
    source: SourceArgument = "-",
    dialect: DialectOption = "duckdb",
    rules: RulesOption = "default",
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Run original and rewrite; keep the rewrite only if the rows are the same "
            "and it is measurably faster (the 95% interval of its time ratio at most 0.95, "
            "in two independent timings).",
        ),
    ] = False,
    db: DbOption = None,
    runs: RunsOption = 6,
    budget: Annotated[
        float,
        typer.Option(
            "--budget",
            min=0.0,
            help="Seconds of timing at most, for each of the two timings a kept rewrite "
            "needs: the verdict is taken when the time ratio's interval is narrow or "
            "decided, or when they are spent.",
        ),
    ] = 5.0,
    as_json: JsonOption = False,
) -> None:
    """Print a rewritten query; with --verify, proven by execution to be no worse.

    Examples:

      echo "SELECT * FROM (SELECT level FROM logs) WHERE level = 'error'" | nodus sql rewrite
      echo "SELECT * FROM (SELECT level FROM logs) WHERE level = 'error'" | nodus sql rewrite \\
        --verify --runs 3
    """
    from nodus_cli.sqltools.rewrite import resolve_rules, rewrite_sql, verify_rewrite

    text = _read_source(source)
    names = resolve_rules(rules)
    with _database(db, needed=verify) as con:
        report = rewrite_sql(text, dialect=dialect, rules=names, con=con)
        if verify:
            verify_rewrite(report, con, runs=runs, budget=budget, on_progress=detail)
    if as_json:
        emit_json({"original": report.original, **report.as_dict()})
        return
    write_text(report.rewritten.rstrip() + "\n")
    if verify:
        _say_verdict(report)


def _say_verdict(report: "RewriteReport") -> None:
    if report.kept:
        ratio, low, high = report.time_ratio, report.ratio_low, report.ratio_high
        timing = ""
        if report.same_plan:
            timing = ", the same DuckDB plan as the original (not slower; not timed)"
        elif ratio is not None and low is not None and high is not None:
            timing = (
                f", {ratio:.2f}x the original's time (95% interval {low:.2f}-{high:.2f}, "
                f"{report.runs} interleaved pairs)"
            )
            if report.confirmation:
                again, again_low, again_high = report.confirmation
                timing += f", confirmed {again:.2f}x ({again_low:.2f}-{again_high:.2f})"
        say(f"verified: same {report.rows} rows{timing}")
    else:
        say(f"kept the original: {report.reason}")
    for step in report.steps:
        if step.changed or step.error:
            effect = (
                step.error
                or step.difference
                or (f"rows equal, {step.time_ratio:.2f}x time" if step.time_ratio else "changed")
            )
            say(f"  {step.rule}: {effect}")


@sql_app.command("rules")
def rules_command(as_json: JsonOption = False, fmt: FormatOption = None) -> None:
    """List the rewrite and lint rules with their codes and defaults.

    Examples:

      nodus sql rules
      nodus sql rules -f csv
    """
    from nodus_cli.sqltools.lint import LINT_RULES
    from nodus_cli.sqltools.rewrite import RULES

    rows = [("rewrite", r.name, "yes" if r.default else "no", r.summary) for r in RULES.values()]
    rows += [
        ("lint", f"{r.code} {r.name}", f"fix: {r.fix}", r.summary) for r in LINT_RULES.values()
    ]
    render_rows(["kind", "rule", "default", "summary"], rows, resolve_format(fmt, as_json))


@sql_app.command("transpile")
def transpile(
    source: SourceArgument = "-",
    from_dialect: Annotated[
        str, typer.Option("--from", help="Dialect of the input (sqlglot name).")
    ] = "duckdb",
    to_dialect: Annotated[
        str, typer.Option("--to", help="Dialect to write (sqlglot name).", show_default=False)
    ] = "",
    allow_unverified: Annotated[
        bool,
        typer.Option(
            "--allow-unverified",
            help="Write functions and constructs the target is not known to have, with a "
            "warning for each, instead of refusing them (exit 2).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Translate SQL between dialects; a construct the target lacks is an error (exit 2).

    Examples:

      echo "SELECT level FROM logs ORDER BY time DESC LIMIT 5" | nodus sql transpile --to tsql
      echo "SELECT * FROM logs ASOF JOIN metrics ON logs.time >= metrics.time" \\
        | nodus sql transpile --to postgres   # exit 2: postgres has no ASOF JOIN
    """
    from nodus_cli.sqltools.transpile import transpile_sql

    if not to_dialect:
        raise UsageError("--to is required (the dialect to write)")
    result = transpile_sql(
        _read_source(source), from_dialect, to_dialect, allow_unverified=allow_unverified
    )
    if as_json:
        emit_json(
            {
                "from": from_dialect.lower(),
                "to": to_dialect.lower(),
                "sql": result.sql,
                "statements": result.statements,
                "warnings": result.warnings,
            }
        )
        return
    for message in result.warnings:
        warn(message)
    write_text(result.sql.rstrip() + ";\n")


@sql_app.command("lint")
def lint(
    sources: Annotated[
        list[str] | None, typer.Argument(help="SQL files, or '-' for stdin.", show_default="-")
    ] = None,
    fix: Annotated[
        bool,
        typer.Option(
            "--fix",
            help="Apply the safe fixes: files in place, stdin fixed to stdout. A fix edits "
            "only the text it changes; one that would change the output columns or their "
            "order is never applied.",
        ),
    ] = False,
    diff: Annotated[
        bool,
        typer.Option("--diff", help="Print the fixes as a unified diff instead of applying them."),
    ] = False,
    dialect: DialectOption = "duckdb",
    db: Annotated[
        Path | None,
        typer.Option(
            "--db",
            help="DuckDB file the SQL runs on: its schema informs the rules and fixes are "
            "checked by execution on it (every table the SQL reads must be there).",
            show_default=False,
        ),
    ] = None,
    fmt: FormatOption = None,
    as_json: JsonOption = False,
) -> None:
    """Find real bugs and slow patterns in SQL; findings on stdout, exit 1 when any remain.

    Examples:

      echo "SELECT app FROM logs WHERE level = NULL" | nodus sql lint  # exit 1: = NULL
      echo "SELECT app FROM logs WHERE level = NULL" | nodus sql lint --fix   # fixed SQL on stdout
    """
    from nodus_cli.fsutil import atomic_write
    from nodus_cli.sqltools.lint import LintResult, fix_source, lint_source

    names = sources or ["-"]
    fixing = fix or diff
    results: list[LintResult] = []
    texts: dict[str, str] = {}
    with _database(db, needed=False) if db is not None else contextlib.nullcontext() as con:
        catalog = _catalog(con)
        for name in names:
            text = texts[name] = _read_source(name)
            if fixing:
                result = fix_source(text, name, dialect=dialect, catalog=catalog, con=con)
            else:
                result = lint_source(text, name, dialect=dialect, catalog=catalog)
            results.append(result)
    findings = [f for result in results for f in result.findings]
    remaining = [f for f in findings if not f.fixed]
    output = resolve_format(fmt, as_json)
    # stdout carries the fixed SQL from stdin, or the diff: the findings then go to stderr.
    sql_to_stdout = diff or (fix and output is Format.table and "-" in names)
    for result in results:
        for refused in result.refused_fixes:
            warn(f"fix not applied: {refused}")
        if result.fixed_sql is None:
            continue
        if diff:
            write_text(_unified_diff(texts[result.file], result.fixed_sql, result.file))
        elif result.file != "-":
            atomic_write(Path(result.file), result.fixed_sql.encode())
        elif sql_to_stdout:
            write_text(result.fixed_sql)
    if as_json and fmt is None and not sql_to_stdout:
        emit_json(
            {
                "findings": [f.as_dict() for f in findings],
                "fixed": sum(f.fixed for f in findings) if not diff else 0,
                "fixable": sum(f.fixed for f in findings) if diff else 0,
                "remaining": len(remaining),
                "fixed_sql": {r.file: r.fixed_sql for r in results if r.fixed_sql},
            }
        )
    elif output is Format.table or sql_to_stdout:
        stream = sys.stderr if sql_to_stdout else sys.stdout
        for f in findings:
            state_note = (" (fixable)" if diff else " (fixed)") if f.fixed else ""
            line = f"{f.file}:{f.line}:{f.column}: {f.code} {f.message}{state_note}"
            stream.write(visible(line) + "\n")  # one line each, whatever the file name holds
    else:
        render_rows(
            ["file", "line", "column", "code", "rule", "message", "fixed"],
            ((f.file, f.line, f.column, f.code, f.name, f.message, f.fixed) for f in findings),
            output,
        )
    if remaining or (diff and findings):
        count = len(findings) if diff else len(remaining)
        say(f"{count} finding(s) in {len(names)} file(s)")
        raise typer.Exit(1)


def _unified_diff(before: str, after: str, name: str) -> str:
    import difflib

    label = "stdin" if name == "-" else name
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=label,
        tofile=label,
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


@sql_app.command("advise")
def advise(
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="How many of the slowest fingerprints.")
    ] = 5,
    rules: RulesOption = "default",
    runs: RunsOption = 7,
    fmt: FormatOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the slowest queries from the query log, each with a verified faster rewrite.

    Examples:

      nodus sql advise
      nodus sql advise --limit 3 --runs 3
    """
    from nodus_cli.sqltools.advise import advise as advise_slowest
    from nodus_cli.sqltools.advise import slowest_queries
    from nodus_cli.sqltools.rewrite import resolve_rules

    names = resolve_rules(rules)
    with state.open_store() as store:
        folded, slow = slowest_queries(store, limit)
    with state.open_user_sql() as sandbox:
        advice = advise_slowest(sandbox, slow, rules=names, runs=runs, on_progress=detail)
    if folded.skipped_lines:
        warn(f"skipped {folded.skipped_lines} unreadable line(s) of the query spool")
    if as_json and fmt is None:
        emit_json({"folded": folded.rows, "queries": [a.as_dict() for a in advice]})
        return
    render_rows(
        ["fingerprint", "runs", "total_ms", "mean_ms", "speedup", "sql", "rewrite_or_note"],
        (
            (
                a.fingerprint,
                a.runs,
                a.total_ms,
                a.mean_ms,
                a.speedup,
                " ".join(a.sql.split()),
                a.rewrite or a.note,
            )
            for a in advice
        ),
        resolve_format(fmt, as_json),
    )
