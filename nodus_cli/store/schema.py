"""The store's own migrations: the core tables (1), commit times (13), loads (15).

``logs``, ``metrics``, ``quarantine`` and ``ingest_files`` are created here because
several packages write or read them; ingest adds its bookkeeping columns later.
"""

from __future__ import annotations

from typing import Any

from nodus_cli.store.asof import COMMITTED_AT, add_committed_at
from nodus_cli.store.loads import LOAD_LEDGER, create_load_ledger
from nodus_cli.store.migrations import Apply, Migration


def _sql(*statements: str) -> Apply:
    def apply(con: Any) -> None:
        for statement in statements:
            con.execute(statement)

    return apply


CORE_V1 = _sql(
    """CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)""",
    "CREATE SEQUENCE journal_id_seq START 1",
    """CREATE TABLE journal (
        id BIGINT PRIMARY KEY DEFAULT nextval('journal_id_seq'),
        time TIMESTAMPTZ NOT NULL,
        command VARCHAR NOT NULL,
        args JSON NOT NULL,
        "user" VARCHAR,
        host VARCHAR,
        outcome VARCHAR NOT NULL,
        summary JSON
    )""",
    """CREATE TABLE logs (
        time TIMESTAMPTZ,
        level VARCHAR,
        host VARCHAR,
        app VARCHAR,
        pid BIGINT,
        message VARCHAR,
        attrs JSON,
        source VARCHAR,
        file_id BIGINT,
        line_no BIGINT,
        byte_offset BIGINT
    )""",
    """CREATE TABLE metrics (
        time TIMESTAMPTZ NOT NULL,
        series VARCHAR NOT NULL,
        labels JSON,
        value DOUBLE,
        source VARCHAR
    )""",
    """CREATE TABLE quarantine (
        file_id BIGINT,
        line_no BIGINT,
        byte_offset BIGINT,
        raw VARCHAR,
        reason VARCHAR
    )""",
    """CREATE TABLE ingest_files (
        file_id BIGINT PRIMARY KEY,
        path VARCHAR NOT NULL,
        fingerprint VARCHAR NOT NULL,
        size BIGINT,
        byte_offset BIGINT NOT NULL DEFAULT 0,
        line_no BIGINT NOT NULL DEFAULT 0,
        head_hash VARCHAR,
        format VARCHAR,
        rows BIGINT NOT NULL DEFAULT 0,
        quarantined BIGINT NOT NULL DEFAULT 0,
        source VARCHAR,
        first_ingested TIMESTAMPTZ,
        last_ingested TIMESTAMPTZ
    )""",
)

MIGRATIONS = (
    Migration(
        1,
        "core: meta, journal, logs, metrics, quarantine, ingest_files",
        CORE_V1,
        ("meta", "journal", "logs", "metrics", "quarantine", "ingest_files"),
        as_of=(
            ("logs", COMMITTED_AT),
            ("metrics", COMMITTED_AT),
            ("quarantine", COMMITTED_AT),
            ("journal", "time"),
        ),
    ),
    Migration(13, "store: committed_at on logs, metrics, quarantine, anomalies", add_committed_at),
    Migration(15, "store: ledger of nodus load", create_load_ledger, (LOAD_LEDGER,)),
)
