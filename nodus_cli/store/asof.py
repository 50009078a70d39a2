"""The store as it was known at a moment: ``--as-of T`` on ``query`` and ``timeline``.

Rows of the tables nodus appends to carry ``committed_at``, the start of the
transaction that committed them (a column default, so every writer sets it without
naming it). Reading as of T shadows each such table with a temporary view of the rows
committed by T, so any SQL sees yesterday's store unchanged. Tables with a time of
their own (the journal, configuration generations, audit checkpoints, learned
patterns) are cut on it. Rows written before schema version 13 have no
``committed_at`` and count as committed before any moment. Other tables (detector
state, export bookkeeping, tables loaded with ``nodus load``) are read as they are
now: ``as_of_column`` says which tables can be read as of a time, as each package's
migrations declare them (``Migration.as_of``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from nodus_cli.store.migrations import REGISTRY

COMMITTED_AT = "committed_at"
ADDED_IN = 13  # the migration that gave the tables nodus appends to their commit time


def add_committed_at(con: Any) -> None:
    """Migration 13: the column, empty for the rows already there, then its default, on
    every table an earlier migration declared cut on ``committed_at`` (a later table that
    wants it creates the column with its default itself)."""
    for table, column in REGISTRY.as_of_columns(before=ADDED_IN).items():
        if column == COMMITTED_AT:
            con.execute(f"ALTER TABLE {table} ADD COLUMN {COMMITTED_AT} TIMESTAMPTZ")
            con.execute(f"ALTER TABLE {table} ALTER COLUMN {COMMITTED_AT} SET DEFAULT now()")


def as_of_column(table: str) -> str | None:
    """The column ``--as-of`` cuts ``table`` on, or None when it cannot be read so."""
    return REGISTRY.as_of_columns().get(table)


def is_stamped(table: str) -> bool:
    """Whether ``table``'s rows carry their commit time."""
    return as_of_column(table) == COMMITTED_AT


def shadow_as_of(con: Any, when: dt.datetime) -> list[str]:
    """Temporary views that show each table as of ``when``; returns the tables cut."""
    database = con.execute("SELECT current_database()").fetchone()[0]
    quoted = '"' + database.replace('"', '""') + '"'
    present = {
        row[0]
        for row in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND NOT temporary",
            [database],
        ).fetchall()
    }
    cut = []
    for table in sorted(present):
        column = as_of_column(table)
        if column is None:
            continue
        keep = f"coalesce({column} <= $1, true)" if column == COMMITTED_AT else f"{column} <= $1"
        literal = "TIMESTAMPTZ '" + when.isoformat() + "'"
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT * FROM {quoted}.main.{table} "
            f"WHERE {keep.replace('$1', literal)}"
        )
        cut.append(table)
    return cut
