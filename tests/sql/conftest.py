"""The small TPC-H tables loaded once per worker into a store, copied for each test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

TPCH_TABLES = ("customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier")


@pytest.fixture(scope="session")
def tpch_store_file(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A nodus store holding the eight sample TPC-H tables, built through ``load_file``."""
    from nodus_cli.store import open_store
    from nodus_cli.store.query import load_file
    from nodus_cli.workspace import Workspace

    workspace = Workspace(tmp_path_factory.mktemp("tpch") / "ws", "--home")
    with open_store(workspace) as store:
        for table in TPCH_TABLES:
            load_file(store, shared / "data" / "tpch" / f"{table}.csv.gz", table)
    return workspace.store_path


@pytest.fixture
def tpch_home(tpch_store_file: Path, nodus_home: Path) -> Path:
    """This test's workspace (``NODUS_HOME``) with a private copy of the TPC-H store."""
    nodus_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(tpch_store_file, nodus_home / "store.duckdb")
    return nodus_home


@pytest.fixture
def tpch_con(tpch_home: Path):
    """A read-only DuckDB connection to this test's TPC-H store."""
    from nodus_cli.sqltools.catalog import connect_database

    con = connect_database(tpch_home / "store.duckdb")
    yield con
    con.close()


@pytest.fixture(scope="session")
def tpch_queries(shared: Path) -> dict[str, str]:
    return {
        path.stem: path.read_text() for path in sorted((shared / "data" / "tpch").glob("q*.sql"))
    }
