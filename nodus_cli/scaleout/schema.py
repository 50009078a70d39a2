"""Store tables that track what ``nodus export`` has written (migration 8).

``export_targets``: one row per exported table directory (``DIR/<table>``), with the
partitioning and columns it was written with. ``export_batches``: one row per export
run that wrote files; a batch whose staging directory still exists was interrupted
after its decision point and is finished by the next export. ``export_rows``: the
ledger, one fingerprint per exported row (a multiset), the high-water mark of tables
without commit times. ``export_commits`` (migration 14): for tables whose rows carry
``committed_at``, one row per commit time seen, with how many of its rows the table
held at the last export and how many were exported. ``table_loads`` (migration 15):
one row per ``nodus load`` of a user table, written in the load's transaction, with
the table's row count before and after it; ``export_loads``: per export of such a
table, the load and row position it covers (rows before the position are in the
export) and how many rows the export holds.
"""

from __future__ import annotations

from typing import Any

EXPORT_TABLES = ("export_targets", "export_batches", "export_rows")
COMMIT_LEDGER = "export_commits"
LOAD_LEDGER = "table_loads"
LOAD_MARKS = "export_loads"


def create_export_tables(con: Any) -> None:
    con.execute(
        """CREATE TABLE export_targets (
            target_id BIGINT NOT NULL,
            target VARCHAR NOT NULL,
            table_name VARCHAR NOT NULL,
            partition_by JSON NOT NULL,
            columns JSON NOT NULL,
            fingerprint VARCHAR NOT NULL,
            rows BIGINT NOT NULL,
            batches BIGINT NOT NULL,
            last_export TIMESTAMPTZ NOT NULL
        )"""
    )
    con.execute(
        """CREATE TABLE export_batches (
            batch_id VARCHAR NOT NULL,
            target_id BIGINT NOT NULL,
            mode VARCHAR NOT NULL,
            staging VARCHAR NOT NULL,
            rows BIGINT NOT NULL,
            files JSON NOT NULL,
            time TIMESTAMPTZ NOT NULL
        )"""
    )
    con.execute(
        """CREATE TABLE export_rows (
            target_id BIGINT NOT NULL,
            fingerprint UHUGEINT NOT NULL
        )"""
    )


def create_commit_ledger(con: Any) -> None:
    """Migration 14: the per-commit ledger of tables stamped with ``committed_at``."""
    con.execute(
        f"""CREATE TABLE {COMMIT_LEDGER} (
            target_id BIGINT NOT NULL,
            committed_at TIMESTAMPTZ,
            seen BIGINT NOT NULL,
            exported BIGINT NOT NULL
        )"""
    )


def create_load_ledger(con: Any) -> None:
    """Migration 15: what each ``nodus load`` did, and how far each export of it got."""
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
    con.execute(
        f"""CREATE TABLE {LOAD_MARKS} (
            target_id BIGINT NOT NULL,
            load_id BIGINT NOT NULL,
            position BIGINT NOT NULL,
            exported BIGINT NOT NULL
        )"""
    )


def record_load(con: Any, table: str, mode: str, rows_before: int, rows_after: int) -> None:
    """Add a load of ``table`` to the ledger; the caller owns the load's transaction."""
    con.execute(
        f"""INSERT INTO {LOAD_LEDGER} SELECT ?, coalesce(max(load_id), 0) + 1, ?, ?, ?, now()
        FROM {LOAD_LEDGER}""",
        [table, mode, rows_before, rows_after],
    )
