"""Time the 22 TPC-H queries on DuckDB (store), DuckDB over the Parquet export, and Spark.

For each scale factor: tpchgen-cli generates the tables, ``nodus load`` puts them in
a store, ``nodus export`` writes the Parquet export (timed, and timed again with no
new rows: tables loaded with ``nodus load`` are tracked by row fingerprints, which
rehash the table; ``tests/bench/export.py`` times tracking by commit), then every
query runs on the three engines. Times are ratios to DuckDB over the store,
measured in the same run. Spark start-up (a new SparkSession, and a whole ``nodus
query --engine spark`` process) is reported apart, so a reader can see where it
stops dominating; the Spark time of each query includes registering the tables it
reads as views, as every ``nodus query --engine spark`` does.

Run: python tests/bench/scaleout.py [--scales 0.1,1] [--master local[*]] [--runs 1]
Needs: pip install tpchgen-cli, the spark extra, Java 17+, ../shared/data/tpch (queries).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))

from nodus_cli import schemas  # noqa: E402
from nodus_cli.scaleout import QueryEngine  # noqa: E402
from nodus_cli.scaleout.dataset import exported_tables  # noqa: E402
from nodus_cli.scaleout.engines import (  # noqa: E402
    query_export,
    referenced_tables,
    register_spark_views,
    run_spark,
    start_spark,
    transpile_for_spark,
)
from nodus_cli.scaleout.export import export_tables  # noqa: E402
from nodus_cli.sqltools.transpile import TranspileResult  # noqa: E402
from nodus_cli.store import open_store  # noqa: E402
from nodus_cli.store.query import load_file, run_query  # noqa: E402
from nodus_cli.workspace import Workspace  # noqa: E402

TABLES = ("customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier")


def _timed(action: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _generate(scale: float, folder: Path) -> None:
    tool = shutil.which("tpchgen-cli") or str(Path(sys.executable).with_name("tpchgen-cli"))
    subprocess.run(
        [tool, "parquet", "-s", str(scale), f"--output-dir={folder}"],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _cold_spark_process(export: Path, master: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    command = [sys.executable, "-m", "nodus_cli", "query", "SELECT count(*) FROM region"]
    start = time.perf_counter()
    run = subprocess.run(
        [*command, "--engine", "spark", "--master", master, "--data", str(export)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode:
        return f"failed (exit {run.returncode}): {run.stderr.strip().splitlines()[-1:]}"
    return f"{time.perf_counter() - start:.1f} s"


def bench_scale(scale: float, args: argparse.Namespace, queries: dict[int, str]) -> None:
    work = Path(args.work) / f"sf{scale:g}"
    shutil.rmtree(work, ignore_errors=True)
    raw, export = work / "raw", work / "export"
    start = time.perf_counter()
    _generate(scale, raw)
    print(
        f"\n== TPC-H scale factor {scale:g} ==  (generated in {time.perf_counter() - start:.1f} s)"
    )
    with open_store(Workspace(work / "ws", "--home")) as store:
        start = time.perf_counter()
        for table in TABLES:
            load_file(store, raw / f"{table}.parquet", table)
        rows = store.con.execute("SELECT count(*) FROM lineitem").fetchone()[0]
        print(f"nodus load: {time.perf_counter() - start:.1f} s (lineitem {rows:,} rows)")
        start = time.perf_counter()
        export_tables(store, list(TABLES), export)
        first = time.perf_counter() - start
        start = time.perf_counter()
        export_tables(store, list(TABLES), export)
        again = time.perf_counter() - start
        print(f"nodus export: {first:.1f} s; again with no new rows: {again:.1f} s")

        from pyspark import SparkContext

        warm = " (JVM already running)" if SparkContext._gateway is not None else ""
        start = time.perf_counter()
        conf = {"spark.driver.memory": args.driver_memory}
        spark = start_spark(args.master, conf=conf)
        print(f"Spark session start-up ({args.master}){warm}: {time.perf_counter() - start:.1f} s")
        tables = exported_tables(export)

        def on_spark(translated: TranspileResult) -> None:
            """What one ``nodus query --engine spark`` pays once its JVM runs."""
            wanted = referenced_tables(translated)
            read = [t for t in tables if wanted is None or t.name.lower() in wanted]
            json_columns = register_spark_views(spark, read)
            list(run_spark(spark, translated, json_columns=json_columns).rows)

        def on_parquet(sql: str) -> None:
            with query_export(sql, QueryEngine.duckdb, export) as result:
                list(result.rows)

        names = ("duckdb", "parquet", "spark", "parquet/x", "spark/x")
        print(f"{'query':>5} " + " ".join(f"{name:>9}" for name in names))
        totals = [0.0, 0.0, 0.0]
        for number, sql in queries.items():
            translated = transpile_for_spark(sql)
            times = [
                _timed(lambda sql=sql: list(run_query(store, sql).rows), args.runs),
                _timed(lambda sql=sql: on_parquet(sql), args.runs),
                _timed(lambda translated=translated: on_spark(translated), args.runs),
            ]
            totals = [t + s for t, s in zip(totals, times, strict=True)]
            print(
                f"{f'q{number:02d}':>5} {times[0]:8.3f}s {times[1]:8.3f}s {times[2]:8.3f}s "
                f"{times[1] / times[0]:9.2f} {times[2] / times[0]:9.2f}"
            )
        print(
            f"{'all':>5} {totals[0]:8.2f}s {totals[1]:8.2f}s {totals[2]:8.2f}s "
            f"{totals[1] / totals[0]:9.2f} {totals[2] / totals[0]:9.2f}"
        )
        spark.stop()
    cold = _cold_spark_process(export, args.master)
    print(f"one 'nodus query --engine spark' process (JVM start, trivial query): {cold}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    schemas.install()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="0.1,1", help="comma-separated TPC-H scale factors")
    parser.add_argument("--master", default="local[*]")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--runs", type=int, default=1, help="runs per query (median)")
    parser.add_argument("--work", default=None, help="working folder (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    shared = Path(os.environ.get("NODUS_SHARED") or PROJECT.parent / "shared")
    parser.add_argument(
        "--queries", default=str(shared / "data" / "tpch"), help="folder with q01..q22.sql"
    )
    args = parser.parse_args()
    args.work = args.work or tempfile.mkdtemp(prefix="nodus-scaleout-")
    queries = {n: (Path(args.queries) / f"q{n:02d}.sql").read_text() for n in range(1, 23)}
    print(f"cpus: {os.cpu_count()}; times are medians of {args.runs} run(s); x = DuckDB store")
    for scale in (float(s) for s in args.scales.split(",")):
        bench_scale(scale, args, queries)


if __name__ == "__main__":
    main()
