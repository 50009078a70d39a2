"""The embedded DuckDB store: opening with a lock timeout, migrations, the journal."""

from nodus_cli.store.db import Invocation, Store, open_store

__all__ = ["Invocation", "Store", "open_store"]
