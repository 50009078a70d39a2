"""The ``query_log`` table (migration 7): one row per query ``nodus query`` ran."""

from __future__ import annotations

from typing import Any

from nodus_cli.store.migrations import Migration

QUERY_LOG_DDL = """CREATE TABLE query_log (
    time TIMESTAMPTZ NOT NULL,
    fingerprint VARCHAR NOT NULL,
    normalized VARCHAR NOT NULL,
    sql VARCHAR NOT NULL,
    duration_ms DOUBLE NOT NULL,
    rows BIGINT,
    batch VARCHAR NOT NULL
)"""


def create_query_log(con: Any) -> None:
    con.execute(QUERY_LOG_DDL)


MIGRATIONS = (Migration(7, "sql: query_log", create_query_log, ("query_log",)),)
