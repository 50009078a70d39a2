"""nodus query --engine/--data/--master: DuckDB over Parquet and the error paths (no JVM)."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from nodus_cli.scaleout.export import export_tables
from nodus_cli.store import open_store
from nodus_cli.workspace import Workspace


@pytest.fixture
def export_dir(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    with open_store(Workspace(Path(os.environ["NODUS_HOME"]), "--home")) as store:
        store.con.execute(
            "CREATE TABLE hosts AS SELECT 'h' || i AS name, i % 3 AS rack FROM range(7) t(i)"
        )
        export_tables(store, ["hosts", "logs"], out)
    return out


def test_duckdb_over_parquet_matches_the_store(cli, export_dir: Path) -> None:
    sql = "SELECT rack, count(*) AS n, list(name ORDER BY name) AS names FROM hosts GROUP BY ALL"
    on_store = cli("query", sql, "--json")
    on_parquet = cli("query", sql, "--json", "--data", str(export_dir))
    assert on_parquet.exit_code == 0, on_parquet.stderr
    key = lambda r: r["rack"]  # noqa: E731
    assert sorted(on_parquet.json(), key=key) == sorted(on_store.json(), key=key)
    empty = cli("query", "SELECT count(*) AS n FROM logs", "--json", "--data", str(export_dir))
    assert empty.json() == [{"n": 0}]


def test_parquet_that_nodus_did_not_write_is_readable(cli, tmp_path: Path) -> None:
    (tmp_path / "lake" / "events").mkdir(parents=True)
    duckdb.sql(
        f"COPY (SELECT 1 AS id, 'boot' AS what) TO '{tmp_path / 'lake' / 'events' / 'a.parquet'}'"
    )
    result = cli("query", "SELECT * FROM events", "--json", "--data", str(tmp_path / "lake"))
    assert result.json() == [{"id": 1, "what": "boot"}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "spark"], "pass --data DIR"),
        (["--master", "local[2]"], "--master goes with --engine spark"),
        (["--data", "/nonexistent/lake"], "no such export directory"),
        (["--engine", "flink"], "Invalid value for '--engine'"),
    ],
)
def test_option_errors_exit_2(cli, args: list[str], message: str) -> None:
    result = cli("query", "SELECT 1", *args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_empty_export_directory_is_not_found(cli, tmp_path: Path) -> None:
    result = cli("query", "SELECT 1", "--data", str(tmp_path))
    assert result.exit_code == 2 and "no exported tables" in result.stderr


def test_spark_refuses_before_starting_a_jvm(cli, export_dir: Path) -> None:
    """Unsupported constructs and writes fail in the transpiler, naming the construct."""
    data = ["--engine", "spark", "--data", str(export_dir)]
    asof = cli("query", "SELECT * FROM hosts a ASOF JOIN hosts b ON a.rack >= b.rack", *data)
    assert asof.exit_code == 2 and "ASOF JOIN" in asof.stderr
    write = cli("query", "DELETE FROM hosts", *data)
    assert write.exit_code == 2 and "read-only" in write.stderr


def test_spark_without_pyspark_says_how_to_install(
    run_nodus, export_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shadow = tmp_path / "shadow" / "pyspark"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('pyspark is not installed')\n")
    monkeypatch.setenv("PYTHONPATH", str(shadow.parent))
    result = run_nodus("query", "SELECT 1", "--engine", "spark", "--data", str(export_dir))
    assert result.returncode == 2
    assert "pip install 'nodus[spark]'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("java_script", "message"),
    [
        (None, "needs a Java runtime 17 or newer and none was found"),
        ("echo 'openjdk version \"11.0.22\" 2024-01-16' >&2", "found Java 11"),
        ("echo 'java version \"1.8.0_401\"' >&2", "found Java 8"),
    ],
)
def test_spark_without_java_17_says_so(
    run_nodus,
    export_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    java_script: str | None,
    message: str,
) -> None:
    java_home = tmp_path / "jdk"
    if java_script is not None:
        (java_home / "bin").mkdir(parents=True)
        (java_home / "bin" / "java").write_text(f"#!/bin/sh\n{java_script}\n")
        (java_home / "bin" / "java").chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(java_home))
    result = run_nodus("query", "SELECT 1", "--engine", "spark", "--data", str(export_dir))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


def test_spark_registers_only_the_tables_a_query_reads() -> None:
    from nodus_cli.scaleout.engines import referenced_tables, transpile_for_spark

    sql = "WITH r AS (SELECT rack FROM hosts) SELECT * FROM r JOIN logs ON true"
    assert referenced_tables(transpile_for_spark(sql)) == {"hosts", "logs", "r"}
    assert referenced_tables(transpile_for_spark("SELECT 1")) == set()
