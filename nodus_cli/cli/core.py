"""Workspace and store commands: init, info, query, tables, load, journal."""

import contextlib
import platform
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nodus_cli import __version__
from nodus_cli.cli import state
from nodus_cli.cli.output import (
    FormatOption,
    JsonOption,
    child_stderr_quiet,
    emit_json,
    progress,
    render_rows,
    resolve_format,
    say,
    warn,
    write_text,
)
from nodus_cli.errors import UsageError
from nodus_cli.fsutil import read_text
from nodus_cli.scaleout import QueryEngine
from nodus_cli.timeparse import parse_time
from nodus_cli.workspace import init_workspace

if TYPE_CHECKING:
    from nodus_cli.store.query import LoadMode

ENGINES = ("duckdb", "river", "sqlglot", "cryptography", "typer", "rich", "tomlkit")


def init(
    directory: Annotated[
        Path, typer.Argument(help="Directory to create .nodus/ in.", show_default=".")
    ] = Path("."),
    as_json: JsonOption = False,
) -> None:
    """Create a workspace (.nodus/ with store, keyring and nodus.toml) in DIRECTORY."""
    from nodus_cli.store import Invocation, open_store

    ws, created = init_workspace(directory)
    invocation = Invocation.from_argv("init", state.STATE.argv)
    with open_store(ws, lock_timeout=state.lock_timeout(ws), invocation=invocation) as store:
        if created:
            store.record("ok", {"workspace": str(ws.root)})
        version = store.schema_version
    document = {
        "workspace": str(ws.root),
        "created": created,
        "store": str(ws.store_path),
        "schema_version": version,
    }
    if as_json:
        emit_json(document)
    else:
        verb = "Initialised" if created else "Already initialised:"
        say(f"{verb} workspace {ws.root}")


def info(as_json: JsonOption = False) -> None:
    """Show the workspace paths, store schema version, table row counts and versions."""
    ws = state.workspace()
    document: dict[str, object] = {
        "nodus": __version__,
        "python": platform.python_version(),
        "engines": {name: _version(name) for name in ENGINES},
        "workspace": {
            "root": str(ws.root),
            "found_by": ws.found_by,
            "exists": ws.exists,
            "store": str(ws.store_path),
            "keyring": str(ws.keyring_dir),
            "settings": str(ws.settings_path),
        },
    }
    if ws.store_path.exists():
        with state.open_store(read_only=True) as store:
            document["schema_version"] = store.schema_version
            document["tables"] = store.table_counts()
    else:
        document["schema_version"] = None
        document["tables"] = {}
    if as_json:
        emit_json(document)
        return
    workspace_doc = document["workspace"]
    assert isinstance(workspace_doc, dict)
    write_text(f"nodus {__version__} (Python {document['python']})\n")
    write_text(f"workspace:  {workspace_doc['root']}  (found by {ws.found_by})\n")
    for key in ("store", "keyring", "settings"):
        write_text(f"{key + ':':<11} {workspace_doc[key]}\n")
    write_text(f"schema:     {document['schema_version'] or 'no store yet'}\n")
    tables = document["tables"]
    assert isinstance(tables, dict)
    for name, count in tables.items():
        write_text(f"  {name:<20} {count:>12,} rows\n")
    engines = document["engines"]
    assert isinstance(engines, dict)
    write_text("engines:    " + ", ".join(f"{k} {v}" for k, v in engines.items()) + "\n")


def _version(distribution: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def read_sql_argument(sql: str) -> str:
    """``-`` reads the SQL from stdin; an ``@FILE`` reads it from a file."""
    if sql == "-":
        text = sys.stdin.read()
    elif sql.startswith("@"):
        text = read_text(Path(sql[1:]), "an SQL file")
    else:
        text = sql
    if not text.strip():
        raise UsageError("no SQL given")
    return text


def query(
    sql: Annotated[str, typer.Argument(help="SQL to run, '-' for stdin, or @FILE.")],
    fmt: FormatOption = None,
    as_json: JsonOption = False,
    limit: Annotated[
        int | None, typer.Option("--limit", min=0, help="Print at most this many rows.")
    ] = None,
    engine: Annotated[
        QueryEngine,
        typer.Option("--engine", help="duckdb, or spark (over a Parquet export, with --data)."),
    ] = QueryEngine.duckdb,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", metavar="DIR", help="Query the Parquet export in DIR (nodus export) instead."
        ),
    ] = None,
    master: Annotated[
        str | None,
        typer.Option(
            "--master",
            metavar="URL",
            help="Spark master URL (default local[*]).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run read-only SQL over the store or a Parquet export (statements that write are refused)."""
    from nodus_cli.sqltools.querylog import record_query
    from nodus_cli.store.query import run_query

    text = read_sql_argument(sql)
    if engine is not QueryEngine.duckdb or data is not None or master is not None:
        from nodus_cli.scaleout.engines import query_export

        with contextlib.ExitStack() as stack:
            spinner = stack.enter_context(contextlib.ExitStack())
            meter = spinner.enter_context(progress(f"querying with {engine.value}"))
            with child_stderr_quiet():  # the JVM starts here
                exported = stack.enter_context(
                    query_export(text, engine, data, master=master, limit=limit, on_progress=meter)
                )
            rows = exported.rows
            if state.stdout_is_terminal():  # the rows are drawn where the spinner is
                rows = _then(rows, spinner.close)
            for message in exported.warnings:
                warn(message)
            output = resolve_format(fmt, as_json)
            render_rows(exported.columns, rows, output, types=exported.types)
        return
    with state.open_store(read_only=True) as store:
        started = time.perf_counter()
        result = run_query(store, text, limit=limit)
        count = render_rows(
            result.columns, result.rows, resolve_format(fmt, as_json), types=result.types
        )
        record_query(store.path.parent, text, time.perf_counter() - started, count)


def _then(rows: Iterator[Any], first: Callable[[], object]) -> Iterator[Any]:
    """``rows``, calling ``first`` once the first row is there (or there is none)."""
    head = next(rows, None)
    first()
    if head is not None:
        yield head
        yield from rows


def tables(fmt: FormatOption = None, as_json: JsonOption = False) -> None:
    """List the store's tables with row counts and columns."""
    from nodus_cli.store.query import list_tables

    with state.open_store(read_only=True) as store:
        infos = list_tables(store)
    if as_json and fmt is None:  # --json alone: a nested document, not rows
        emit_json(
            [
                {
                    "table": t.name,
                    "rows": t.rows,
                    "owner": t.owner,
                    "columns": [{"name": n, "type": ty} for n, ty in t.columns],
                }
                for t in infos
            ]
        )
        return
    render_rows(
        ["table", "rows", "owner", "columns"],
        ((t.name, t.rows, t.owner, ", ".join(f"{n} {ty}" for n, ty in t.columns)) for t in infos),
        resolve_format(fmt, as_json),
    )


def load(
    file: Annotated[Path, typer.Argument(help="CSV, Parquet or JSON file (.gz/.zst too).")],
    table: Annotated[str, typer.Option("--table", "-t", help="Table to load into.")],
    replace: Annotated[bool, typer.Option("--replace", help="Replace the table.")] = False,
    append: Annotated[bool, typer.Option("--append", help="Append to the table.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Load reference data into a table of the store, in one journaled transaction."""
    from nodus_cli.store.query import load_file

    if replace and append:
        raise UsageError("--replace and --append exclude each other")
    mode: LoadMode = "replace" if replace else "append" if append else "create"
    with state.open_store() as store:
        rows = load_file(store, file, table, mode=mode)
    if as_json:
        emit_json({"table": table, "file": str(file), "mode": mode, "rows": rows})
    else:
        say(f"Loaded {rows:,} rows into {table}")


def journal(
    since: Annotated[
        str | None, typer.Option("--since", help="Only entries at or after this time.")
    ] = None,
    fmt: FormatOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the journal: every command that changed state, with its outcome."""
    since_time = parse_time(since) if since else None
    with state.open_store(read_only=True) as store:
        sql = (
            'SELECT id, time, command, args, "user", host, outcome, summary FROM journal '
            + ("WHERE time >= ? " if since_time else "")
            + "ORDER BY id"
        )
        cursor = store.con.execute(sql, [since_time] if since_time else [])
        columns = [d[0] for d in cursor.description]
        types = [str(d[1]) for d in cursor.description]
        render_rows(columns, iter(cursor.fetchall()), resolve_format(fmt, as_json), types=types)


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(info)
    app.command()(query)
    app.command()(tables)
    app.command()(load)
    app.command()(journal)
