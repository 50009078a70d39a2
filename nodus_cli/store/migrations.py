"""The store's schema registry: the ordered migrations that packages declare.

Each migration runs once, in order, inside the transaction that opens the store;
the ``meta`` table records the version reached. A package that needs tables
declares its ``Migration`` objects in its own ``schema.py``, and
``nodus_cli.schemas`` registers them here before any store is opened, so the store
knows no package above it. A new migration takes the next version (never edit a
released one) and lists the tables it creates, so that ``nodus load`` refuses to
clobber them, and names the tables ``--as-of`` can cut with the column it cuts on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Apply = Callable[[Any], None]  # receives a duckdb connection inside a transaction


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Apply
    tables: tuple[str, ...] = ()
    # (table, column) for each table of this migration that ``--as-of`` can read as of a
    # moment: ``committed_at`` (the commit time, see ``store.asof``) or a time of its own
    as_of: tuple[tuple[str, str], ...] = ()


class Registry:
    """Migrations by version; registering the same one again is a no-op."""

    def __init__(self, migrations: Iterable[Migration] = ()) -> None:
        self._by_version: dict[int, Migration] = {}
        self.register(migrations)

    def register(self, migrations: Iterable[Migration]) -> None:
        for migration in migrations:
            known = self._by_version.setdefault(migration.version, migration)
            if known != migration:
                raise ValueError(
                    f"migration {migration.version} declared twice: "
                    f"{known.description!r} and {migration.description!r}"
                )

    @property
    def migrations(self) -> tuple[Migration, ...]:
        """Every registered migration in the order it runs."""
        if not self._by_version:
            raise RuntimeError(
                "no store migration is registered: call nodus_cli.schemas.install() "
                "before opening a store"
            )
        return tuple(self._by_version[version] for version in sorted(self._by_version))

    @property
    def version(self) -> int:
        """The schema version a store reaches once every migration ran."""
        return self.migrations[-1].version

    @property
    def tables(self) -> frozenset[str]:
        """The tables nodus creates (``nodus load`` never replaces them)."""
        return frozenset(table for migration in self.migrations for table in migration.tables)

    def as_of_columns(self, before: int | None = None) -> dict[str, str]:
        """Table -> the column ``--as-of`` cuts it on, as declared by the migrations (those
        before version ``before`` only, when given)."""
        return {
            table: column
            for migration in self.migrations
            if before is None or migration.version < before
            for table, column in migration.as_of
        }


REGISTRY = Registry()
