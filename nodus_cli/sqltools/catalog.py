"""What the SQL tools need to know about a DuckDB database: column types, keys, execution."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodus_cli.errors import InputError
from nodus_cli.store.query import sql_error_text

Schema = dict[str, dict[str, str]]  # table -> column -> DuckDB type, in column order


@dataclass
class Catalog:
    """Column types plus the columns that carry an index, key or sort order."""

    tables: Schema = field(default_factory=dict)
    indexed: set[tuple[str, str]] = field(default_factory=set)  # (table, column)
    not_null: set[tuple[str, str]] = field(default_factory=set)

    def column_type(self, table: str | None, column: str) -> str | None:
        if table is not None:
            return self.tables.get(table.lower(), {}).get(column.lower())
        found = {cols[column.lower()] for cols in self.tables.values() if column.lower() in cols}
        return found.pop() if len(found) == 1 else None


def read_catalog(con: Any) -> Catalog:
    """Tables and views of the ``main`` schema with their column types and key columns."""
    catalog = Catalog()
    for table, column, data_type, nullable in con.execute(
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position"
    ).fetchall():
        catalog.tables.setdefault(table.lower(), {})[column.lower()] = data_type
        if nullable == "NO":
            catalog.not_null.add((table.lower(), column.lower()))
    for table, columns in con.execute(
        "SELECT table_name, constraint_column_names FROM duckdb_constraints() "
        "WHERE constraint_type IN ('PRIMARY KEY', 'UNIQUE') AND schema_name = 'main'"
    ).fetchall():
        catalog.indexed.update((table.lower(), column.lower()) for column in columns)
    for table, expressions in con.execute(
        "SELECT table_name, expressions FROM duckdb_indexes() WHERE schema_name = 'main'"
    ).fetchall():
        for column in _index_columns(expressions):
            catalog.indexed.add((table.lower(), column))
    return catalog


def _index_columns(expressions: Any) -> list[str]:
    items = expressions if isinstance(expressions, list) else [expressions or ""]
    text = ",".join(str(item) for item in items)
    return [part.strip().strip("[]'\" ").lower() for part in text.split(",") if part.strip()]


def connect_database(path: Path) -> Any:
    """A read-only, locked-down connection to a DuckDB file given with ``--db``."""
    from nodus_cli.store.sandbox import connect_file

    return connect_file(path)


def execute(con: Any, sql: str) -> tuple[list[tuple[Any, ...]], float]:
    """All rows of ``sql`` and the wall time to run and fetch them, in seconds."""
    import duckdb

    started = time.perf_counter()
    try:
        rows = con.execute(sql).fetchall()
    except duckdb.Error as exc:
        raise InputError(f"SQL error: {sql_error_text(exc)}") from None
    return rows, time.perf_counter() - started


def output_columns(con: Any, sql: str) -> list[tuple[str, str]]:
    """Names and types of a query's output columns, without running it to the end."""
    import duckdb

    try:
        relation = con.sql(sql)
    except duckdb.Error as exc:
        raise InputError(f"SQL error: {sql_error_text(exc)}") from None
    return [(name, str(kind)) for name, kind in zip(relation.columns, relation.types, strict=True)]
