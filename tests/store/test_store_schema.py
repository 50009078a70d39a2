"""Existing workspaces migrate exactly as before the schema registry.

The fixtures are stores the old code left at schema versions 1, 8 and 12, and what
that code made of each once migrated (``tests/fixtures/old_stores.py``): today's
code must reach the same catalog and rows from each, and build the same fresh store.
Migrations added since the fixtures were made may only add tables of their own (and
raise the schema version): the released part of the schema stays as it was.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from nodus_cli.store import open_store
from nodus_cli.workspace import init_workspace
from tests.fixtures.old_stores import EXPECTED, START_VERSIONS, catalog, fixture_path

OLD = json.loads(EXPECTED.read_text())
RELEASED = OLD["migrations"][-1][0]


def _newer_migrations() -> list:  # type: ignore[type-arg]
    from nodus_cli.store.migrations import REGISTRY

    return [m for m in REGISTRY.migrations if m.version > RELEASED]


def _released_part(found: dict) -> dict:  # type: ignore[type-arg]
    """The catalog without the tables of newer migrations, at the released version."""
    newer = {table for m in _newer_migrations() for table in m.tables}
    rows = {name: cells for name, cells in found["rows"].items() if name not in newer}
    rows["meta"] = [
        [key, str(RELEASED) if key == "schema_version" else value] for key, value in rows["meta"]
    ]
    rows["journal"] = [_released_migrate_row(row) for row in rows["journal"]]
    tables = [entry for entry in found["tables"] if entry[0] not in newer]
    return {**found, "rows": rows, "tables": tables}


def _released_migrate_row(row: list[str]) -> list[str]:
    """A journal row of a migration, as if it had stopped at the released version."""
    if row[1] != "migrate":
        return row
    newer = {m.description for m in _newer_migrations()}
    summary = json.loads(row[4])
    summary["migrated_to"] = min(summary["migrated_to"], RELEASED)
    summary["migrations"] = [d for d in summary["migrations"] if d not in newer]
    return [*row[:4], json.dumps(summary), *row[5:]]


def test_released_migrations_keep_their_numbers_order_and_tables() -> None:
    from nodus_cli.store.migrations import REGISTRY

    now = [[m.version, m.description, list(m.tables)] for m in REGISTRY.migrations]
    assert now[: len(OLD["migrations"])] == OLD["migrations"]
    assert all(m.tables for m in _newer_migrations())  # newer ones only add tables


def test_a_fresh_store_has_the_schema_the_old_code_built(tmp_path: Path) -> None:
    ws, _ = init_workspace(tmp_path)
    with open_store(ws) as store:
        assert _released_part(catalog(store.con)) == OLD["fresh"]


@pytest.mark.parametrize("version", START_VERSIONS)
def test_an_old_store_migrates_to_what_the_old_code_made_of_it(
    tmp_path: Path, version: int
) -> None:
    ws, _ = init_workspace(tmp_path)
    with gzip.open(fixture_path(version), "rb") as packed, ws.store_path.open("wb") as raw:
        shutil.copyfileobj(packed, raw)
    with open_store(ws) as store:
        assert _released_part(catalog(store.con)) == OLD["migrated"][str(version)]
