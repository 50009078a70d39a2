"""Real target engines for the transpile tests: SQLite in process, PostgreSQL over a socket.

Tables are copied from DuckDB (the reference engine) so that every engine holds the same
rows; dates go to SQLite as ISO text, which is how SQLite's date functions read them.
"""

from __future__ import annotations

import datetime
import decimal
import os
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

PG_HOST_ENV = "NODUS_PG_HOST"  # the socket directory of the cluster .ci/run starts
PG_PORT_ENV = "NODUS_PG_PORT"
PG_USER_ENV = "NODUS_PG_USER"
QUERY_TIMEOUT_MS = 30_000

_PG_TYPES = {"DOUBLE": "DOUBLE PRECISION", "VARCHAR": "TEXT", "BIGINT": "BIGINT"}


def pg_connect(dbname: str = "postgres") -> Any:
    """A connection to the private cluster; autocommit, so a failed query poisons nothing."""
    import psycopg

    con = psycopg.connect(
        host=os.environ[PG_HOST_ENV],
        port=int(os.environ.get(PG_PORT_ENV, "5432")),
        user=os.environ.get(PG_USER_ENV, "nodus"),
        dbname=dbname,
        autocommit=True,
    )
    con.execute(f"SET statement_timeout = {QUERY_TIMEOUT_MS}")
    return con


def pg_fresh_database(name: str) -> Any:
    """Drop and create database ``name``; a connection to it."""
    with pg_connect() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    return pg_connect(name)


def pg_drop_database(name: str) -> None:
    with pg_connect() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


def duckdb_tables(con: Any, only: Iterable[str] | None = None) -> dict[str, list[tuple[str, str]]]:
    """Columns and types of the ``main`` tables (of those named in ``only``, if given)."""
    wanted = set(only) if only is not None else None
    rows = con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position"
    ).fetchall()
    tables: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in rows:
        if wanted is not None and table not in wanted:
            continue
        tables.setdefault(table, []).append((column, kind))
    return tables


def copy_to_postgres(duck: Any, pg: Any, only: Iterable[str] | None = None) -> None:
    """The DuckDB connection's tables (those in ``only``), with their rows, into PostgreSQL."""
    for table, columns in duckdb_tables(duck, only).items():
        definition = ", ".join(f"{name} {_PG_TYPES.get(kind, kind)}" for name, kind in columns)
        pg.execute(f"CREATE TABLE {table} ({definition})")
        names = ", ".join(name for name, _ in columns)
        with pg.cursor().copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in duck.execute(f"SELECT {names} FROM {table}").fetchall():
                copy.write_row(row)
        _index_keys(pg, table, columns)
        pg.execute(f"ANALYZE {table}")


def copy_to_sqlite(duck: Any, lite: sqlite3.Connection, only: Iterable[str] | None = None) -> None:
    for table, columns in duckdb_tables(duck, only).items():
        definition = ", ".join(f"{name} {kind}" for name, kind in columns)
        lite.execute(f"CREATE TABLE {table} ({definition})")
        marks = ", ".join("?" for _ in columns)
        rows = duck.execute(f"SELECT * FROM {table}").fetchall()
        lite.executemany(f"INSERT INTO {table} VALUES ({marks})", map(_sqlite_row, rows))
        _index_keys(lite, table, columns)
    lite.execute("ANALYZE")
    lite.commit()


def _index_keys(con: Any, table: str, columns: list[tuple[str, str]]) -> None:
    """An index per key column (``…key``), as a real schema has: without them the
    correlated TPC-H subqueries take tens of seconds on SQLite and PostgreSQL."""
    for name, _kind in columns:
        if name.endswith("key"):
            con.execute(f"CREATE INDEX {table}_{name} ON {table} ({name})")


def _sqlite_row(row: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(v.isoformat() if isinstance(v, datetime.date) else v for v in row)


def run_on(con: Any, sql: str) -> list[tuple[Any, ...]]:
    """All rows of ``sql`` (a DB-API connection with ``execute``), cells normalised."""
    return [normalise(row) for row in con.execute(sql).fetchall()]


def normalise(row: Iterable[Any]) -> tuple[Any, ...]:
    """Engine-neutral cells: dates as ISO text, DECIMAL as float, so engines compare."""
    cells: list[Any] = []
    for value in row:
        if isinstance(value, datetime.datetime):
            value = value.isoformat(sep=" ")
        elif isinstance(value, datetime.date):
            value = value.isoformat()
        elif isinstance(value, decimal.Decimal):
            value = float(value)
        cells.append(value)
    return tuple(cells)
