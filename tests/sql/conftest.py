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


@pytest.fixture(scope="session")
def postgres_available() -> None:
    """PostgreSQL from .ci/run (socket dir in NODUS_PG_HOST): missing fails under CI."""
    import os

    from tests.sql.engines import PG_HOST_ENV

    if os.environ.get(PG_HOST_ENV):
        return
    if os.environ.get("NODUS_CI"):
        pytest.fail(f"PostgreSQL is required in CI: .ci/run must start it and set {PG_HOST_ENV}")
    pytest.skip(f"no PostgreSQL ({PG_HOST_ENV} unset; .ci/run starts one)")


def _database_name(kind: str, worker_id: str) -> str:
    return f"nodus_{kind}_{worker_id}".lower()


@pytest.fixture(scope="session")
def tpch_duckdb(tpch_store_file: Path):
    from nodus_cli.sqltools.catalog import connect_database

    con = connect_database(tpch_store_file)
    yield con
    con.close()


@pytest.fixture(scope="session")
def tpcds_duckdb():
    """The 24 TPC-DS tables, empty: the TPC-DS queries are checked for running, not rows."""
    import duckdb

    con = duckdb.connect()
    con.execute((Path(__file__).parent / "tpcds_schema.sql").read_text())
    yield con
    con.close()


def _tables(kind: str) -> tuple[str, ...] | None:
    return TPCH_TABLES if kind == "tpch" else None


def _postgres_copy(duck, kind: str, worker_id: str):
    from tests.sql.engines import copy_to_postgres, pg_drop_database, pg_fresh_database

    name = _database_name(kind, worker_id)
    con = pg_fresh_database(name)
    copy_to_postgres(duck, con, _tables(kind))
    return con, lambda: (con.close(), pg_drop_database(name))


@pytest.fixture(scope="session")
def tpch_postgres(postgres_available: None, tpch_duckdb, worker_id: str):
    con, close = _postgres_copy(tpch_duckdb, "tpch", worker_id)
    yield con
    close()


@pytest.fixture(scope="session")
def tpcds_postgres(postgres_available: None, tpcds_duckdb, worker_id: str):
    con, close = _postgres_copy(tpcds_duckdb, "tpcds", worker_id)
    yield con
    close()


def _sqlite_copy(duck, kind: str):
    import sqlite3

    from tests.sql.engines import copy_to_sqlite

    con = sqlite3.connect(":memory:")
    copy_to_sqlite(duck, con, _tables(kind))
    return con


@pytest.fixture(scope="session")
def tpch_sqlite(tpch_duckdb):
    con = _sqlite_copy(tpch_duckdb, "tpch")
    yield con
    con.close()


@pytest.fixture(scope="session")
def tpcds_sqlite(tpcds_duckdb):
    con = _sqlite_copy(tpcds_duckdb, "tpcds")
    yield con
    con.close()


@pytest.fixture(scope="session")
def tpcds_queries(shared: Path) -> dict[str, str]:
    return {
        path.stem: path.read_text() for path in sorted((shared / "data" / "tpcds").glob("q*.sql"))
    }
