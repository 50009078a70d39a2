"""Existing workspaces migrate exactly as before the schema registry.

The fixtures are stores the old code left at schema versions 1, 8 and 12, and what
that code made of each once migrated (``tests/fixtures/old_stores.py``): today's
code must reach the same catalog and rows from each, and build the same fresh store.
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


def test_released_migrations_keep_their_numbers_order_and_tables() -> None:
    from nodus_cli.store.migrations import REGISTRY

    now = [[m.version, m.description, list(m.tables)] for m in REGISTRY.migrations]
    assert now == OLD["migrations"]


def test_a_fresh_store_has_the_schema_the_old_code_built(tmp_path: Path) -> None:
    ws, _ = init_workspace(tmp_path)
    with open_store(ws) as store:
        assert catalog(store.con) == OLD["fresh"]


@pytest.mark.parametrize("version", START_VERSIONS)
def test_an_old_store_migrates_to_what_the_old_code_made_of_it(
    tmp_path: Path, version: int
) -> None:
    ws, _ = init_workspace(tmp_path)
    with gzip.open(fixture_path(version), "rb") as packed, ws.store_path.open("wb") as raw:
        shutil.copyfileobj(packed, raw)
    with open_store(ws) as store:
        assert catalog(store.con) == OLD["migrated"][str(version)]
