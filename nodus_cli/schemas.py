"""Which packages own store tables, collected into the store's registry.

The store knows no package above it: each package declares its migrations in its
``schema.py`` (``MIGRATIONS``) and ``install`` registers them all before the CLI,
or any program using the library, opens a store. A package with new tables adds
its module to ``SCHEMA_MODULES``. A schema module imports no heavy library (the
store imports duckdb when it opens).
"""

from __future__ import annotations

from nodus_cli.anomaly import schema as anomaly_schema
from nodus_cli.audit import schema as audit_schema
from nodus_cli.confops import schema as confops_schema
from nodus_cli.ingest import schema as ingest_schema
from nodus_cli.patterns import schema as patterns_schema
from nodus_cli.scaleout import schema as scaleout_schema
from nodus_cli.sqltools import schema as sqltools_schema
from nodus_cli.store import schema as store_schema
from nodus_cli.store.migrations import REGISTRY, Migration

SCHEMA_MODULES = (store_schema, audit_schema, confops_schema, sqltools_schema, scaleout_schema)

# Declared here for packages whose schema.py does not declare them yet.
DECLARED_HERE = (
    Migration(2, "ingest: checkpoint bookkeeping on ingest_files", ingest_schema.apply_ingest_v2),
    Migration(
        3,
        "detect: anomalies, detector_state",
        anomaly_schema.create_tables,
        anomaly_schema.TABLES,
    ),
    Migration(9, "ingest: zstd for logs.message and logs.attrs", ingest_schema.apply_logs_zstd),
    Migration(
        10,
        "ingest: quarantine.raw_bytes, a line's bytes as read",
        ingest_schema.apply_quarantine_bytes,
    ),
    Migration(11, "ingest: logs.pattern_id (each row's shape)", ingest_schema.add_pattern_id),
    Migration(
        12,
        "patterns: patterns, patterns_learned",
        patterns_schema.create_tables,
        patterns_schema.TABLES,
    ),
)


def install() -> None:
    """Register every package's migrations with the store (idempotent)."""
    for module in SCHEMA_MODULES:
        REGISTRY.register(module.MIGRATIONS)
    REGISTRY.register(DECLARED_HERE)
