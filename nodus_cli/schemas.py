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
from nodus_cli.store.migrations import REGISTRY

SCHEMA_MODULES = (
    store_schema,
    ingest_schema,
    anomaly_schema,
    audit_schema,
    confops_schema,
    sqltools_schema,
    patterns_schema,
    scaleout_schema,
)


def install() -> None:
    """Register every package's migrations with the store (idempotent)."""
    for module in SCHEMA_MODULES:
        REGISTRY.register(module.MIGRATIONS)
