"""The store's schema registry: the ordered migrations that packages declare.

Each migration runs once, in order, inside the transaction that opens the store;
the ``meta`` table records the version reached. A package that needs tables
declares its ``Migration`` objects in its own ``schema.py``, and
``nodus_cli.schemas`` registers them here before any store is opened, so the store
knows no package above it. A new migration takes the next version (never edit a
released one) and lists the tables it creates, so that ``nodus load`` refuses to
clobber them.
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


REGISTRY = Registry()
