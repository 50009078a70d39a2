"""The embedded DuckDB store: opening with a lock timeout, migrations, the journal."""

from nodus_cli.store.db import Invocation, Store, open_store
from nodus_cli.store.migrations import NODUS_TABLES, SCHEMA_VERSION

__all__ = ["NODUS_TABLES", "SCHEMA_VERSION", "Invocation", "Store", "open_store"]
