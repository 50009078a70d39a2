"""The 22 TPC-H queries agree on DuckDB over the store, DuckDB over Parquet and Spark.

All Spark tests live here and share one session-scoped SparkSession (``local[2]``,
two shuffle partitions, no UI); the 22 queries are one test, so that one worker's
JVM runs them. They run in CI: ``.ci/run`` installs the ``spark`` extra.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from nodus_cli.scaleout import QueryEngine
from nodus_cli.scaleout.dataset import exported_tables
from nodus_cli.scaleout.engines import (
    query_export,
    register_spark_views,
    run_spark,
    start_spark,
    transpile_for_spark,
)
from nodus_cli.scaleout.export import export_tables
from nodus_cli.store import Store, open_store
from nodus_cli.store.db import open_user_sql
from nodus_cli.store.query import load_file, run_query
from nodus_cli.workspace import Workspace

TPCH_TABLES = ("customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier")


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    session = start_spark(
        "local[2]",
        conf={"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"},
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def tpch(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Path]]:
    """A store with the small TPC-H tables (nodus load) and their Parquet export."""
    root = tmp_path_factory.mktemp("tpch")
    workspace = Workspace(root / "ws", "--home")
    with open_store(workspace) as store:
        for table in TPCH_TABLES:
            load_file(store, shared / "data" / "tpch" / f"{table}.csv.gz", table)
        export_tables(store, list(TPCH_TABLES), root / "export")
    with open_user_sql(workspace) as sandbox:  # the queries run where user SQL runs
        yield sandbox, root / "export"


def _comparable(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def _sort_key(row: Sequence[Any]) -> tuple:
    return tuple(
        (0, f"{v:.6g}") if isinstance(v, float) else (1, str(v)) if v is not None else (2, "")
        for v in row
    )


def assert_same_rows(expected: list[tuple], actual: list[tuple], *, ordered: bool) -> None:
    """Row lists agree: as a multiset unless ordered, numbers within a relative 1e-9."""
    left = [tuple(_comparable(v) for v in row) for row in expected]
    right = [tuple(_comparable(v) for v in row) for row in actual]
    if not ordered:
        left, right = sorted(left, key=_sort_key), sorted(right, key=_sort_key)
    assert len(left) == len(right)
    for a, b in zip(left, right, strict=True):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            if isinstance(x, float) or isinstance(y, float):
                assert x is not None and y is not None, (a, b)
                assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9), (a, b)
            else:
                assert x == y, (a, b)


def _is_ordered(sql: str) -> bool:
    import sqlglot

    return sqlglot.parse_one(sql, read="duckdb").args.get("order") is not None


def test_tpch_queries_agree_on_three_engines(
    shared: Path, tpch: tuple[Store, Path], spark: Any
) -> None:
    """One test for all 22 queries, so that one worker's JVM runs them all."""
    store, export = tpch
    json_columns = register_spark_views(spark, exported_tables(export))
    mismatches = []
    for number in range(1, 23):
        sql = (shared / "data" / "tpch" / f"q{number:02d}.sql").read_text()
        on_store = list(run_query(store, sql).rows)
        with query_export(sql, QueryEngine.duckdb, export) as result:
            on_parquet = list(result.rows)
        translated = transpile_for_spark(sql)
        on_spark = list(run_spark(spark, translated, json_columns=json_columns).rows)
        ordered = _is_ordered(sql)
        for engine, rows in (("duckdb over parquet", on_parquet), ("spark", on_spark)):
            try:
                assert_same_rows(on_store, rows, ordered=ordered)
            except AssertionError as exc:
                mismatches.append(f"q{number:02d} on {engine}: {exc}")
    assert mismatches == []


def test_spark_through_the_cli(cli, spark: Any, tmp_path: Path) -> None:
    """Timestamps, JSON attributes, NULLs, structs, formats, --limit and errors."""
    with open_store(Workspace(Path(_home()), "--home")) as store, store.change({"test": 1}):
        store.con.execute(
            """INSERT INTO logs (time, level, message, attrs, source, line_no)
            SELECT TIMESTAMPTZ '2026-03-01 23:59:59.25+00' + to_hours(i::BIGINT), 'info',
                   'm' || i, to_json({'i': i, 'tags': ['a', 'b']}),
                   CASE WHEN i % 2 = 0 THEN 'syslog' END, i FROM range(6) t(i)"""
        )
    out = tmp_path / "out"
    assert cli("export", "logs", "--to", str(out)).exit_code == 0
    spark_args = ("--engine", "spark", "--data", str(out))
    sql = "SELECT *, {'n': line_no, 'ok': true} AS s, [line_no] AS l FROM logs ORDER BY line_no"
    on_store = cli("query", sql, "--json")
    on_spark = cli("query", sql, "--json", *spark_args)
    assert on_spark.exit_code == 0, on_spark.stderr
    assert on_spark.json() == on_store.json()
    assert on_store.json()[0]["attrs"] == {"i": 0, "tags": ["a", "b"]}
    grouped = "SELECT level, count(*) AS n FROM logs GROUP BY level"
    assert cli("query", grouped, "-f", "csv", *spark_args).stdout == "level,n\ninfo,6\n"
    limited = cli(
        "query", "SELECT line_no FROM logs ORDER BY 1", "--limit", "2", "--json", *spark_args
    )
    assert limited.json() == [{"line_no": 0}, {"line_no": 1}]
    missing = cli("query", "SELECT nosuch FROM logs", *spark_args)
    assert missing.exit_code == 2
    assert missing.stderr.startswith("nodus: error: Spark SQL error:")
    assert "nosuch" in missing.stderr and len(missing.stderr.splitlines()) == 1


def test_spark_stages_reach_the_progress(spark: Any, tpch: tuple[Store, Path]) -> None:
    """``query --engine spark`` shows its stage (issue 15 item 5): starting, then the
    stages the status tracker reports, polled from a thread stopped with the block."""
    from tests.cli.test_progress import Recorder

    _, export = tpch
    recorder = Recorder()
    sql = "SELECT l_returnflag, count(*) AS n FROM lineitem GROUP BY 1"
    with query_export(sql, QueryEngine.spark, export, on_progress=recorder) as result:
        assert len(list(result.rows)) == 3
    assert recorder.stages[:2] == ["starting Spark", "reading the export"]
    assert all(re.fullmatch(r"(stage \d+: \d+/\d+ tasks(, )?)+", s) for s in recorder.stages[2:])


def test_spark_runs_only_queries_that_stay_inside_the_data(
    spark: Any, tpch: tuple[Store, Path], tmp_path: Path
) -> None:
    """Issue 23.1 on Spark: Spark's parser decides what a query is, files are no tables,
    and functions that reach outside the data (by the registry's groups) are refused."""
    from nodus_cli.errors import NodusError
    from nodus_cli.sqltools.transpile import TranspileResult

    _, export = tpch
    register_spark_views(spark, exported_tables(export))
    written = tmp_path / "written"
    hostile = [
        f"INSERT OVERWRITE DIRECTORY '{written}' USING csv SELECT * FROM region",
        f"CACHE TABLE cached OPTIONS ('path' '{written}') AS SELECT * FROM region",
        f"ADD JAR {written}.jar",
        "SET spark.sql.runSQLOnFiles=true",
        "CREATE TEMPORARY VIEW v AS SELECT 1",
        "DROP VIEW region",
        "EXPLAIN SELECT 1",
        "SELECT * FROM csv.`/etc/passwd`",
        "SELECT reflect('java.lang.System', 'getenv', 'HOME')",
        "SELECT r_name FROM region WHERE r_name IN "
        "(SELECT java_method('java.lang.System', 'getProperty', 'user.home'))",
        "WITH c AS (SELECT try_reflect('java.lang.System', 'getenv', 'HOME') AS e) SELECT * FROM c",
        "SELECT input_file_name() FROM region",
        "SELECT * FROM region LATERAL VIEW explode(array(input_file_block_start())) x AS y",
        "SELECT * FROM python_worker_logs()",
    ]
    accepted = []
    for sql in hostile:
        try:
            list(run_spark(spark, TranspileResult(sql)).rows)
        except NodusError as exc:
            assert exc.exit_code == 2 and "\n" not in exc.message, (sql, exc.message)
        else:
            accepted.append(sql)
    assert accepted == []
    assert not written.exists() and not Path(f"{written}.jar").exists()
    assert spark.conf.get("spark.sql.runSQLOnFiles") == "false"
    assert spark.catalog.tableExists("region")  # the DROP never ran
    fine = "SELECT r_name, rand() < 2 AS r, typeof(r_name) AS t FROM region ORDER BY 1 LIMIT 1"
    assert list(run_spark(spark, TranspileResult(fine)).rows) == [("AFRICA", True, "string")]


@pytest.mark.slow
def test_spark_in_a_fresh_process(run_nodus, tpch: tuple[Store, Path]) -> None:
    """The real command line: its own JVM, quiet stderr, the same answer as DuckDB."""
    _, export = tpch
    sql = (
        "SELECT r_name, count(*) AS nations FROM region "
        "JOIN nation ON n_regionkey = r_regionkey GROUP BY r_name"
    )
    spark_run = run_nodus(
        "query", sql, "--json", "--engine", "spark", "--master", "local[1]", "--data", str(export)
    )
    duck_run = run_nodus("query", sql, "--json", "--data", str(export))
    assert spark_run.returncode == 0, spark_run.stderr
    assert sorted(json.dumps(r) for r in json.loads(spark_run.stdout)) == sorted(
        json.dumps(r) for r in json.loads(duck_run.stdout)
    )
    noise = [line for line in spark_run.stderr.splitlines() if "incubator" not in line]
    assert noise == []


def _home() -> str:
    import os

    return os.environ["NODUS_HOME"]
