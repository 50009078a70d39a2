"""Read-only queries, table listings and reference-data loading over the store."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from nodus_cli.errors import InputError, NotFoundError, UsageError
from nodus_cli.store import migrations
from nodus_cli.store.asof import as_of_column
from nodus_cli.store.db import Store
from nodus_cli.store.loads import record_load
from nodus_cli.store.sandbox import one_read_statement, sql_error_text, sql_input_error

FETCH_BATCH = 2048


@dataclass
class QueryResult:
    """Column names, DuckDB type names, and a lazy iterator of row tuples."""

    columns: list[str]
    types: list[str]
    rows: Iterator[tuple[Any, ...]]


def run_query(store: Store, sql: str, *, limit: int | None = None) -> QueryResult:
    """Run the read-only statement a user gave on a sandboxed store; its rows come lazily."""
    import duckdb

    if not store.sandboxed:
        raise ValueError("user SQL runs only on a sandboxed store (open_user_sql)")
    statement = one_read_statement(store.con, sql, "nodus query")
    try:
        cursor = store.con.execute(statement)
    except duckdb.Error as exc:
        store.raise_if_damaged(exc)
        raise sql_input_error(exc) from None
    description = cursor.description or []
    columns = [d[0] for d in description]
    types = [str(d[1]) for d in description]

    def rows() -> Iterator[tuple[Any, ...]]:
        remaining = limit
        while remaining is None or remaining > 0:
            size = FETCH_BATCH if remaining is None else min(FETCH_BATCH, remaining)
            try:
                batch = cursor.fetchmany(size)
            except duckdb.Error as exc:
                store.raise_if_damaged(exc)
                raise sql_input_error(exc) from None
            if not batch:
                return
            yield from batch
            if remaining is not None:
                remaining -= len(batch)

    return QueryResult(columns, types, rows())


@dataclass(frozen=True)
class TableInfo:
    name: str
    rows: int
    columns: list[tuple[str, str]]  # (name, type)
    owner: str  # "nodus" for tables nodus manages, "user" for loaded ones
    as_of: str | None  # the column --as-of cuts it on; None: read as it is now


def list_tables(store: Store) -> list[TableInfo]:
    columns: dict[str, list[tuple[str, str]]] = {}
    for table, column, data_type in store.con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position"
    ).fetchall():
        columns.setdefault(table, []).append((column, data_type))
    counts = store.table_counts()
    return [
        TableInfo(name, counts[name], columns.get(name, []), _owner(name), as_of_column(name))
        for name in store.table_names()
    ]


def _owner(table: str) -> str:
    return "nodus" if table in migrations.REGISTRY.tables else "user"


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_READERS = {
    ".csv": "read_csv",
    ".tsv": "read_csv",
    ".txt": "read_csv",
    ".parquet": "read_parquet",
    ".json": "read_json_auto",
    ".jsonl": "read_json_auto",
    ".ndjson": "read_json_auto",
}
_COMPRESSION_SUFFIXES = (".gz", ".zst")

LoadMode = Literal["create", "replace", "append"]


def _reader_for(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    while suffixes and suffixes[-1] in _COMPRESSION_SUFFIXES:
        suffixes.pop()
    if not suffixes or suffixes[-1] not in _READERS:
        raise UsageError(
            f"{path}: cannot tell the format from the file name "
            f"(expected one of {', '.join(sorted(_READERS))}, optionally .gz or .zst)"
        )
    return _READERS[suffixes[-1]]


def load_file(store: Store, path: Path, table: str, *, mode: LoadMode = "create") -> int:
    """Load CSV/Parquet/JSON into ``table`` with DuckDB's type detection, journaled.

    Returns the number of rows loaded. Tables that nodus manages are refused.
    """
    import duckdb

    if not _IDENTIFIER.fullmatch(table):
        raise UsageError(f"invalid table name {table!r} (letters, digits and _ only)")
    if table.lower() in migrations.REGISTRY.tables:
        raise UsageError(f"table {table!r} belongs to nodus; choose another name")
    if not path.exists():
        raise NotFoundError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(
            f"{path}: not a regular file (nodus load reads CSV, Parquet or JSON files)"
        )
    reader = _reader_for(path)
    exists = table in store.table_names()
    if exists and mode == "create":
        raise UsageError(f"table {table!r} exists; pass --replace or --append")
    if not exists and mode == "append":
        mode = "create"
    source = f"{reader}(?)"
    with store.change({"table": table, "file": str(path), "mode": mode}) as summary:
        try:
            before = 0
            if mode == "append":
                before = store.con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
                store.con.execute(
                    f'INSERT INTO "{table}" BY NAME SELECT * FROM {source}', [str(path)]
                )
            else:
                verb = "CREATE OR REPLACE TABLE" if mode == "replace" else "CREATE TABLE"
                store.con.execute(f'{verb} "{table}" AS SELECT * FROM {source}', [str(path)])
            total = store.con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            record_load(store.con, table, mode, before, total)  # nodus export's watermark
        except duckdb.Error as exc:
            raise InputError(f"{path}: cannot load: {sql_error_text(exc)}") from None
        summary["rows"] = total - before
    return int(summary["rows"])
