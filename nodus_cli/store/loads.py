"""The ledger of ``nodus load`` (migration 15): one row per load of a user table.

Each load writes its row in its own transaction, with the table's row count before and
after, so a reader (``nodus export``) can tell appended rows from replaced ones
without fingerprinting the table.
"""

from __future__ import annotations

from typing import Any

LOAD_LEDGER = "table_loads"


def create_load_ledger(con: Any) -> None:
    """Migration 15: what each ``nodus load`` did."""
    con.execute(
        f"""CREATE TABLE {LOAD_LEDGER} (
            table_name VARCHAR NOT NULL,
            load_id BIGINT NOT NULL,
            mode VARCHAR NOT NULL,
            rows_before BIGINT NOT NULL,
            rows_after BIGINT NOT NULL,
            loaded_at TIMESTAMPTZ NOT NULL
        )"""
    )


def record_load(con: Any, table: str, mode: str, rows_before: int, rows_after: int) -> None:
    """Add a load of ``table`` to the ledger; the caller owns the load's transaction."""
    con.execute(
        f"""INSERT INTO {LOAD_LEDGER} SELECT ?, coalesce(max(load_id), 0) + 1, ?, ?, ?, now()
        FROM {LOAD_LEDGER}""",
        [table, mode, rows_before, rows_after],
    )
