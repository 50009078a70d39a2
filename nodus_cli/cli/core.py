"""Workspace and store commands: init, info, query, tables, load, journal."""

import contextlib
import platform
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nodus_cli import __version__
from nodus_cli.cli import flags, state
from nodus_cli.cli.options import (
    AllowFilesOption,
    AsOfOption,
    FormatOption,
    JsonOption,
    resolve_format,
    since_option,
    time_or_none,
)
from nodus_cli.cli.output import (
    Format,
    child_stderr_quiet,
    emit_json,
    render_rows,
    say,
    warn,
    write_text,
)
from nodus_cli.cli.progressbar import progress
from nodus_cli.errors import UsageError
from nodus_cli.fsutil import read_text
from nodus_cli.scaleout import QueryEngine
from nodus_cli.timeparse import parse_time
from nodus_cli.workspace import Workspace, init_workspace

if TYPE_CHECKING:
    from nodus_cli.store.query import LoadMode

ENGINES = ("duckdb", "river", "sqlglot", "cryptography", "typer", "rich", "tomlkit")


def init(
    directory: Annotated[
        Path | None,
        typer.Argument(
            help="Directory to create .nodus/ in (default: the workspace --home or "
            "NODUS_HOME names, else the current directory).",
            show_default=False,
        ),
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
    """Create a workspace (store, keyring and nodus.toml): --home or NODUS_HOME, else .nodus/.

    Examples:

      nodus init                    # .nodus/ here (nothing to do when it exists)
      nodus init ops                # a new workspace in ops/.nodus
    """
    from nodus_cli.store import Invocation, open_store
    from nodus_cli.store.db import set_aside

    if force and directory is None:
        ws, created = state.workspace().ensure(), False
    else:
        ws, created = init_workspace(directory, home=flags.STATE.home)
        named = state.workspace()
        if directory is not None and named.found_by in ("--home", "NODUS_HOME"):
            warn(
                f"{named.found_by} names {named.root}: other commands use that workspace, "
                "not this one"
            )
    kept = set_aside(ws.store_path) if force else None
    invocation = Invocation.from_argv("init", flags.STATE.argv)
    state.install_schemas()
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
    """Show the workspace paths, store schema version, table row counts and versions.

    Examples:

      nodus info
      nodus info --json
    """
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
            "trust_root": _trust_root(ws),
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
    write_text(f"trust root: {workspace_doc['trust_root'] or 'no signing key yet'}\n")
    write_text(f"schema:     {document['schema_version'] or 'no store yet'}\n")
    tables = document["tables"]
    assert isinstance(tables, dict)
    for name, count in tables.items():
        write_text(f"  {name:<20} {count:>12,} rows\n")
    engines = document["engines"]
    assert isinstance(engines, dict)
    write_text("engines:    " + ", ".join(f"{k} {v}" for k, v in engines.items()) + "\n")


def _trust_root(ws: Workspace) -> str | None:
    """The fingerprint of the key log's first key, to pin with ``--trust-root``."""
    from nodus_cli.errors import NodusError
    from nodus_cli.keys.keyring import Keyring

    try:
        return Keyring(ws).root_fingerprint()
    except NodusError:
        return None


def _version(distribution: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def read_sql_argument(sql: str) -> str:
    """``-`` reads the SQL from stdin; an ``@FILE`` reads it from a file."""
    if sql == "-":
        text = read_text("-", "SQL")
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
    allow_files: AllowFilesOption = None,
    as_of: AsOfOption = None,
) -> None:
    """Run read-only SQL over the store or a Parquet export (statements that write are refused).

    The SQL runs on a read-only connection that cannot reach files, the network or
    extensions, nor change its settings (see nodus-security(7)).

    Examples:

      nodus query "SELECT level, count(*) AS n FROM logs GROUP BY level ORDER BY n DESC"
      nodus query "SELECT count(*) AS n FROM read_csv('samples/cpu.csv')" \\
        --allow-files samples/cpu.csv             # your own file, beside the store
      echo "SELECT count(*) AS n FROM logs" | nodus query - --as-of "1h ago" --json
    """
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
                    query_export(
                        text,
                        engine,
                        data,
                        master=master,
                        limit=limit,
                        allow_files=allow_files or [],
                        protected=[state.workspace().root],
                        on_progress=meter,
                    )
                )
            rows = exported.rows
            if flags.stdout_is_terminal():  # the rows are drawn where the spinner is
                rows = _then(rows, spinner.close)
            for message in exported.warnings:
                warn(message)
            output = resolve_format(fmt, as_json)
            render_rows(exported.columns, rows, output, types=exported.types)
        return
    if as_of is not None and (engine is not QueryEngine.duckdb or data is not None):
        raise UsageError("--as-of reads the store; it does not apply to --data or --engine spark")
    with state.open_user_sql(allow_files or []) as store:
        if as_of is not None:
            from nodus_cli.store.asof import shadow_as_of

            shadow_as_of(store.con, parse_time(as_of))
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
    """List the store's tables with row counts and columns.

    as_of names the column query --as-of cuts a table on; "-": the table is read as it
    is now (tables loaded with nodus load, nodus's bookkeeping).

    Examples:

      nodus tables
      nodus tables -f json
    """
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
                    "as_of": t.as_of,
                    "columns": [{"name": n, "type": ty} for n, ty in t.columns],
                }
                for t in infos
            ]
        )
        return
    render_rows(
        ["table", "rows", "owner", "as_of", "columns"],
        (
            (t.name, t.rows, t.owner, t.as_of or "-", ", ".join(f"{n} {ty}" for n, ty in t.columns))
            for t in infos
        ),
        resolve_format(fmt, as_json),
    )


def load(
    file: Annotated[Path, typer.Argument(help="CSV, Parquet or JSON file (.gz/.zst too).")],
    table: Annotated[str, typer.Option("--table", "-t", help="Table to load into.")],
    replace: Annotated[bool, typer.Option("--replace", help="Replace the table.")] = False,
    append: Annotated[bool, typer.Option("--append", help="Append to the table.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Load reference data into a table of the store, in one journaled transaction.

    Examples:

      nodus load samples/cpu.csv --table cpu_raw            # a new table
      nodus load samples/cpu.csv --table cpu_raw --replace
    """
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
    since: Annotated[str | None, since_option("Only entries at or after this time.")] = None,
    fmt: FormatOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the journal: one row per command that changed state, with its outcome.

    On a terminal the table shows the summary and arguments as short text (host is in
    json/ndjson/csv); secret-looking argument values are always masked.

    Examples:

      nodus journal --since 1d
      nodus journal -f csv
    """
    since_time = time_or_none(since)
    output = resolve_format(fmt, as_json)
    with state.open_store(read_only=True) as store:
        sql = (
            'SELECT id, time, command, args, "user", host, outcome, summary FROM journal '
            + ("WHERE time >= ? " if since_time else "")
            + "ORDER BY id"
        )
        cursor = store.con.execute(sql, [since_time] if since_time else [])
        columns = [d[0] for d in cursor.description]
        types = [str(d[1]) for d in cursor.description]
        rows = [_masked_row(row) for row in cursor.fetchall()]
    if output is not Format.table:
        render_rows(columns, rows, output, types=types)
        return
    render_rows(
        ["id", "time", "user", "command", "outcome", "summary", "args"],
        (_table_row(row) for row in rows),
        output,
    )


def _table_row(row: tuple[object, ...]) -> tuple[object, ...]:
    identifier, time, command, args, user, _host, outcome, summary = row
    return (
        identifier,
        _time_text(time),
        user,
        command,
        outcome,
        _summary_text(summary),
        _args_text(args),
    )


def _masked_row(row: tuple[object, ...]) -> tuple[object, ...]:
    """Rows an older nodus wrote kept some secrets (``--set=db.password=x``): mask again."""
    import json

    from nodus_cli.masking import mask_args

    try:
        args = json.loads(str(row[3]))
    except ValueError:
        return row
    if not isinstance(args, list):
        return row
    return (*row[:3], json.dumps(mask_args([str(a) for a in args])), *row[4:])


_SUMMARY_FIRST = ("files", "rows", "quarantined", "failed")


def _summary_text(summary: object) -> str:
    """``files=16 rows=32000 quarantined=0 failed=0``: the summary's keys, counts first;
    a long list is shown by its length (the json format has it whole)."""
    import json

    try:
        document = json.loads(str(summary))
    except ValueError:
        return str(summary)
    if not isinstance(document, dict):
        return str(summary)
    keys = [k for k in _SUMMARY_FIRST if k in document]
    keys += [k for k in document if k not in _SUMMARY_FIRST]
    parts = []
    for key in keys:
        value = document[key]
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        if isinstance(value, list | dict) and len(text) > 40:
            text = f"[{len(value)} items]" if isinstance(value, list) else "{…}"
        parts.append(f"{key}={text}")
    return " ".join(parts)


def _time_text(value: object) -> str:
    """Seconds are enough to tell journal rows apart on a terminal (json keeps all)."""
    import datetime as dt

    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return str(value)


def _args_text(args: object) -> str:
    import json
    import shlex

    try:
        return shlex.join(str(a) for a in json.loads(str(args)))
    except (ValueError, TypeError):
        return str(args)


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(info)
    app.command()(query)
    app.command()(tables)
    app.command()(load)
    app.command()(journal)
