"""The store as it was known at a moment: ``--as-of T`` on ``query`` and ``timeline``.

Rows of the tables nodus appends to carry ``committed_at``, the start of the
transaction that committed them (a column default, so every writer sets it without
naming it). Reading as of T shadows each such table with a temporary view of the rows
committed by T, so any SQL sees yesterday's store unchanged. Tables with a time of
their own (the journal, configuration generations, audit checkpoints, learned
patterns) are cut on it. Rows written before schema version 13 have no
``committed_at`` and count as committed before any moment. Other tables (detector
state, export bookkeeping, tables loaded with ``nodus load``) are read as they are
now: ``as_of_column`` says which tables can be read as of a time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

COMMITTED_AT = "committed_at"
# Tables nodus appends to, whose rows get the commit time.
STAMPED = ("logs", "metrics", "quarantine", "anomalies")
# Tables whose own column says when a row came to be.
OWN_TIME = {
    "journal": "time",
    "config_generations": "time",
    "audit_checkpoints": "sealed_at",
    "patterns": "learned_at",
}


def add_committed_at(con: Any) -> None:
    """Migration 13: the column, empty for the rows already there, then its default."""
    for table in STAMPED:
        con.execute(f"ALTER TABLE {table} ADD COLUMN {COMMITTED_AT} TIMESTAMPTZ")
        con.execute(f"ALTER TABLE {table} ALTER COLUMN {COMMITTED_AT} SET DEFAULT now()")


def as_of_column(table: str) -> str | None:
    """The column ``--as-of`` cuts ``table`` on, or None when it cannot be read so."""
    return COMMITTED_AT if table in STAMPED else OWN_TIME.get(table)


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
        keep = f"{column} <= $1" if table not in STAMPED else f"coalesce({column} <= $1, true)"
        literal = "TIMESTAMPTZ '" + when.isoformat() + "'"
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT * FROM {quoted}.main.{table} "
            f"WHERE {keep.replace('$1', literal)}"
        )
        cut.append(table)
    return cut
