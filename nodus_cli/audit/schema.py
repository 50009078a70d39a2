"""Audit tables (migration 5): the last checkpoint sealed per origin, for chaining."""

from __future__ import annotations

from typing import Any

from nodus_cli.store.migrations import Migration

TABLES = ("audit_checkpoints",)


def create_audit_tables(con: Any) -> None:
    con.execute(
        """CREATE TABLE audit_checkpoints (
            origin VARCHAR PRIMARY KEY,
            size BIGINT NOT NULL,
            root VARCHAR NOT NULL,
            digest VARCHAR NOT NULL,
            checkpoint VARCHAR NOT NULL,
            bundle VARCHAR,
            sealed_at TIMESTAMPTZ NOT NULL
        )"""
    )


MIGRATIONS = (
    Migration(
        5,
        "audit: last checkpoint per origin",
        create_audit_tables,
        TABLES,
        as_of=(("audit_checkpoints", "sealed_at"),),
    ),
)
