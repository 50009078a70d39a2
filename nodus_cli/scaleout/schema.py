"""Store tables that track what ``nodus export`` has written (migration 8).

``export_targets``: one row per exported table directory (``DIR/<table>``), with the
partitioning and columns it was written with. ``export_batches``: one row per export
run that wrote files; a batch whose staging directory still exists was interrupted
after its decision point and is finished by the next export. ``export_rows``: the
ledger, one fingerprint per exported row (a multiset), the high-water mark of tables
without commit times. ``export_commits`` (migration 14): for tables whose rows carry
``committed_at``, one row per commit time seen, with how many of its rows the table
held at the last export and how many were exported. ``export_loads`` (migration 16): per
export of a table written by ``nodus load`` (the store keeps each load in
``table_loads``, migration 15), the load and row position it covers (rows before the
position are in the export) and how many rows the export holds.
"""

from __future__ import annotations

from typing import Any

from nodus_cli.store.migrations import Migration

EXPORT_TABLES = ("export_targets", "export_batches", "export_rows")
COMMIT_LEDGER = "export_commits"
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


def create_load_marks(con: Any) -> None:
    """Migration 16: how far each export of a loaded table got."""
    con.execute(
        f"""CREATE TABLE {LOAD_MARKS} (
            target_id BIGINT NOT NULL,
            load_id BIGINT NOT NULL,
            position BIGINT NOT NULL,
            exported BIGINT NOT NULL
        )"""
    )


MIGRATIONS = (
    Migration(8, "scaleout: export state tracking", create_export_tables, EXPORT_TABLES),
    Migration(14, "scaleout: export ledger per commit", create_commit_ledger, (COMMIT_LEDGER,)),
    Migration(16, "scaleout: export marks per load", create_load_marks, (LOAD_MARKS,)),
)
