"""Workspace and store commands: init, info, query, tables, load, journal."""

import platform
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nodus_cli import __version__
from nodus_cli.cli import state
from nodus_cli.cli.output import (
    FormatOption,
    JsonOption,
    emit_json,
    render_rows,
    resolve_format,
    say,
    warn,
)
from nodus_cli.errors import InputError, UsageError
from nodus_cli.scaleout import QueryEngine
from nodus_cli.timeparse import parse_time
from nodus_cli.workspace import init_workspace

if TYPE_CHECKING:
    from nodus_cli.store.query import LoadMode

ENGINES = ("duckdb", "river", "sqlglot", "cryptography", "typer", "rich", "tomlkit")


def init(
    directory: Annotated[
        Path | None, typer.Argument(help="Directory to create .nodus/ in.", show_default=".")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Start the store over: move the existing one aside (kept as "
            "store.duckdb.broken-TIME) and create an empty one; keys and settings stay. "
            "Without DIRECTORY, the workspace the other commands use.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Create a workspace (.nodus/ with store, keyring and nodus.toml) in DIRECTORY."""
    from nodus_cli.store import Invocation, open_store
    from nodus_cli.store.db import set_aside

    if force and directory is None:
        ws, created = state.workspace().ensure(), False
    else:
        ws, created = init_workspace(directory or Path("."))
    kept = set_aside(ws.store_path) if force else None
    invocation = Invocation.from_argv("init", state.STATE.argv)
    with open_store(ws, lock_timeout=state.lock_timeout(ws), invocation=invocation) as store:
        if created or kept:
            summary = {"workspace": str(ws.root)}
            if kept:
                summary["set_aside"] = str(kept)
            store.record("ok", summary)
        version = store.schema_version
    document = {
        "workspace": str(ws.root),
        "created": created,
        "store": str(ws.store_path),
        "schema_version": version,
        "set_aside": str(kept) if kept else None,
    }
    if as_json:
        emit_json(document)
        return
    if kept:
        say(f"Moved the old store aside to {kept}; started a new one in {ws.root}")
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
    out = sys.stdout
    workspace_doc = document["workspace"]
    assert isinstance(workspace_doc, dict)
    out.write(f"nodus {__version__} (Python {document['python']})\n")
    out.write(f"workspace:  {workspace_doc['root']}  (found by {ws.found_by})\n")
    for key in ("store", "keyring", "settings"):
        out.write(f"{key + ':':<11} {workspace_doc[key]}\n")
    out.write(f"schema:     {document['schema_version'] or 'no store yet'}\n")
    tables = document["tables"]
    assert isinstance(tables, dict)
    for name, count in tables.items():
        out.write(f"  {name:<20} {count:>12,} rows\n")
    engines = document["engines"]
    assert isinstance(engines, dict)
    out.write("engines:    " + ", ".join(f"{k} {v}" for k, v in engines.items()) + "\n")


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
        try:
            text = Path(sql[1:]).read_text()
        except OSError as exc:
            raise InputError(f"{sql[1:]}: {exc.strerror}") from None
    else:
        text = sql
    if not text.strip():
        raise UsageError("no SQL given")
    return text


AllowFilesOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--allow-files",
        metavar="PATH",
        help="Let the SQL read this file or directory (repeatable); without it SQL reads "
        "only the store. The workspace's own files are never readable.",
        show_default=False,
    ),
]


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
    allow_files: AllowFilesOption = None,
) -> None:
    """Run read-only SQL over the store or a Parquet export (statements that write are refused).

    The SQL runs on a read-only connection that cannot reach files, the network or
    extensions, nor change its settings (see nodus-security(7)).
    """
    from nodus_cli.sqltools.querylog import record_query
    from nodus_cli.store.query import run_query

    text = read_sql_argument(sql)
    if engine is not QueryEngine.duckdb or data is not None or master is not None:
        from nodus_cli.scaleout.engines import query_export

        with query_export(
            text,
            engine,
            data,
            master=master,
            limit=limit,
            allow_files=allow_files or [],
            protected=[state.workspace().root],
        ) as exported:
            for message in exported.warnings:
                warn(message)
            output = resolve_format(fmt, as_json)
            render_rows(exported.columns, exported.rows, output, types=exported.types)
        return
    with state.open_user_sql(allow_files or []) as store:
        started = time.perf_counter()
        result = run_query(store, text, limit=limit)
        count = render_rows(
            result.columns, result.rows, resolve_format(fmt, as_json), types=result.types
        )
        record_query(store.path.parent, text, time.perf_counter() - started, count)


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
