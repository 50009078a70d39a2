"""Ordered schema migrations.

Each migration runs once, in order, inside the transaction that opens the store;
the ``meta`` table records the version reached. A package that needs tables adds
one ``Migration`` at the end of ``MIGRATIONS`` (never edit a released one) and
lists the tables it creates, so that ``nodus load`` refuses to clobber them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nodus_cli.anomaly import schema as anomaly_schema
from nodus_cli.audit.schema import TABLES as AUDIT_TABLES
from nodus_cli.audit.schema import create_audit_tables
from nodus_cli.confops.schema import CONFIG_TABLES, create_config_tables
from nodus_cli.ingest.schema import (
    add_pattern_id,
    apply_ingest_v2,
    apply_logs_zstd,
    apply_quarantine_bytes,
)
from nodus_cli.patterns import schema as patterns_schema
from nodus_cli.scaleout.schema import (
    COMMIT_LEDGER,
    EXPORT_TABLES,
    LOAD_LEDGER,
    LOAD_MARKS,
    create_commit_ledger,
    create_export_tables,
    create_load_ledger,
)
from nodus_cli.sqltools.schema import create_query_log
from nodus_cli.store.asof import add_committed_at

Apply = Callable[[Any], None]  # receives a duckdb connection inside a transaction


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Apply
    tables: tuple[str, ...] = ()


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

MIGRATIONS: list[Migration] = [
    Migration(
        1,
        "core: meta, journal, logs, metrics, quarantine, ingest_files",
        CORE_V1,
        ("meta", "journal", "logs", "metrics", "quarantine", "ingest_files"),
    ),
    Migration(2, "ingest: checkpoint bookkeeping on ingest_files", apply_ingest_v2),
    Migration(
        3,
        "detect: anomalies, detector_state",
        anomaly_schema.create_tables,
        anomaly_schema.TABLES,
    ),
    Migration(5, "audit: last checkpoint per origin", create_audit_tables, AUDIT_TABLES),
    Migration(
        6,
        "config: config_generations, config_intents",
        create_config_tables,
        CONFIG_TABLES,
    ),
    Migration(7, "sql: query_log", create_query_log, ("query_log",)),
    Migration(8, "scaleout: export state tracking", create_export_tables, EXPORT_TABLES),
    Migration(9, "ingest: zstd for logs.message and logs.attrs", apply_logs_zstd),
    Migration(10, "ingest: quarantine.raw_bytes, a line's bytes as read", apply_quarantine_bytes),
    Migration(11, "ingest: logs.pattern_id (each row's shape)", add_pattern_id),
    Migration(
        12,
        "patterns: patterns, patterns_learned",
        patterns_schema.create_tables,
        patterns_schema.TABLES,
    ),
    Migration(13, "store: committed_at on logs, metrics, quarantine, anomalies", add_committed_at),
    Migration(14, "scaleout: export ledger per commit", create_commit_ledger, (COMMIT_LEDGER,)),
    Migration(
        15,
        "scaleout: ledger of nodus load, export marks per load",
        create_load_ledger,
        (LOAD_LEDGER, LOAD_MARKS),
    ),
]

SCHEMA_VERSION = MIGRATIONS[-1].version
NODUS_TABLES = frozenset(table for migration in MIGRATIONS for table in migration.tables)
