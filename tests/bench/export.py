"""Incremental ``nodus export``: what a second run costs, with no new rows and with 1%.

Builds a store whose ``logs`` holds ``--rows`` rows (default 6,001,215, the rows of
TPC-H lineitem at scale factor 1) written in ``--commits`` transactions, as ingest
writes them, and a copy of it as a user table (``logs_copy``, no commit tracking:
the row-fingerprint ledger). Then times, in one process:

- the first export of ``logs`` (full), a second one with no new rows, and one after
  1% new rows in one more commit (tracked by commit);
- the same three for ``logs_copy`` (tracked by row fingerprints), with ``--rows-too``;
- by commit, an export after one record grew as ingest grows it when a continuation
  line arrives (the row gets a new ``committed_at``, so its old commit's count
  changed and is settled row by row against the files);
- reference: DuckDB's own ``COPY`` of the same 1% rows to partitioned Parquet, the
  least an export of them can cost.

With ``--lineitem``, TPC-H lineitem at scale factor 1 (``tpchgen-cli``) loaded with
``nodus load`` (tracked by load): the first export, a second with no new rows, one
after a ``nodus load --append`` of 1% more rows, and DuckDB's ``COPY`` of those rows.

Last, a whole ``nodus export logs`` process with no new rows, against ``nodus tables``
and a process that only imports DuckDB and opens the store (what any command pays);
with ``--lineitem`` also ``nodus export lineitem`` with no new rows.

Ratios: the 1% export / the reference COPY, and the second export by commit / by row.

Run: python tests/bench/export.py [--rows N] [--commits N] [--rows-too] [--lineitem]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))

from nodus_cli import schemas  # noqa: E402
from nodus_cli.scaleout.export import ExportResult, export_tables  # noqa: E402
from nodus_cli.store import Store, open_store  # noqa: E402
from nodus_cli.store.query import load_file  # noqa: E402
from nodus_cli.workspace import Workspace  # noqa: E402

ROWS = """INSERT INTO logs (time, level, host, app, pid, message, attrs, source, file_id,
    line_no, byte_offset)
SELECT TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds((i // 5)::BIGINT),
       ['info', 'info', 'warn', 'error', 'debug'][i % 5 + 1], 'host' || (i % 7),
       'app', 1000 + i % 50, 'request ' || i || ' handled for user' || (i % 997),
       to_json({'took': i % 900}), 'src' || (i % 3), 1, i, i * 80
FROM range(?, ?) t(i)"""


def _timed(action: Callable[[], ExportResult]) -> tuple[float, ExportResult]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def _add(store: Store, start: int, stop: int, commits: int) -> None:
    step = max(1, (stop - start) // commits)
    for lo in range(start, stop, step):
        with store.change({"bench": "rows"}):
            store.con.execute(ROWS, [lo, min(lo + step, stop)])


def _runs(store: Store, table: str, out: Path, grow: Callable[[], None]) -> list[float]:
    first, done = _timed(lambda: export_tables(store, [table], out)[0])
    again, same = _timed(lambda: export_tables(store, [table], out)[0])
    assert same.mode == "unchanged", same
    grow()
    more, grown = _timed(lambda: export_tables(store, [table], out)[0])
    print(
        f"{table} (tracked by {done.tracking}): first export {first:.2f} s "
        f"({done.rows:,} rows); again, no new rows: {again:.3f} s; "
        f"after {grown.rows:,} new rows: {more:.2f} s"
    )
    return [first, again, more]


def _lineitem(store: Store, work: Path) -> None:
    """``nodus load`` of TPC-H lineitem (SF1), then its exports: first, again, after 1%."""
    tpch = work / "tpch"
    subprocess.run(
        ["tpchgen-cli", "parquet", "-s", "1", "--tables=lineitem", f"--output-dir={tpch}"],
        check=True,
        capture_output=True,
    )
    data = tpch / "lineitem.parquet"
    start = time.perf_counter()
    load_file(store, data, "lineitem")
    print(
        f"lineitem: nodus load of {data.stat().st_size >> 20} MiB Parquet: "
        f"{time.perf_counter() - start:.1f} s"
    )
    more = work / "lineitem-more.parquet"
    store.con.execute(
        f"COPY (SELECT * FROM read_parquet('{data}') USING SAMPLE 1 PERCENT (reservoir, 7)) "
        f"TO '{more}' (FORMAT parquet)"
    )
    times = _runs(
        store, "lineitem", work / "out", lambda: load_file(store, more, "lineitem", mode="append")
    )
    start = time.perf_counter()
    store.con.execute(
        f"COPY (SELECT * FROM read_parquet('{more}')) TO '{work / 'copy-li'}' (FORMAT parquet)"
    )
    reference = time.perf_counter() - start
    print(
        f"reference: DuckDB COPY of the same rows: {reference:.2f} s; "
        f"ratio 1% export / reference COPY = {times[2] / reference:.2f}"
    )


def _time_processes(work: Path, lineitem: bool) -> None:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    store = work / "ws" / "store.duckdb"
    opening = f"import duckdb; duckdb.connect({str(store)!r}).execute('SELECT 1')"
    nodus = ["-m", "nodus_cli", "--home", str(work / "ws")]
    times = []
    commands = [
        ["-c", opening],
        [*nodus, "tables"],
        [*nodus, "export", "logs", "--to", str(work / "out")],
    ]
    if lineitem:
        commands.append([*nodus, "export", "lineitem", "--to", str(work / "out")])
    for command in commands:
        start = time.perf_counter()
        subprocess.run([sys.executable, *command], env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    print(
        f"process: nodus export logs, no new rows: {times[2]:.2f} s; nodus tables: "
        f"{times[1]:.2f} s; python + duckdb opening the store: {times[0]:.2f} s"
    )
    if lineitem:
        print(f"process: nodus export lineitem (tracked by load), no new rows: {times[3]:.2f} s")


def main() -> None:
    schemas.install()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=6_001_215)
    parser.add_argument("--commits", type=int, default=60, help="transactions writing --rows")
    parser.add_argument("--rows-too", action="store_true", help="also time row fingerprints")
    parser.add_argument(
        "--lineitem", action="store_true", help="also TPC-H SF1 lineitem from nodus load"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nodus-export-bench-"))
    new = args.rows // 100
    try:
        with open_store(Workspace(work / "ws", "--home")) as store:
            start = time.perf_counter()
            _add(store, 0, args.rows, args.commits)
            print(
                f"logs: {args.rows:,} rows in {args.commits} commits "
                f"({time.perf_counter() - start:.1f} s to insert)"
            )
            by_commit = _runs(
                store,
                "logs",
                work / "out",
                lambda: _add(store, args.rows, args.rows + new, 1),
            )
            with store.change({"bench": "grow a record"}):
                store.con.execute(
                    "UPDATE logs SET message = message || chr(10) || 'more', "
                    "committed_at = now() WHERE line_no = ?",
                    [args.rows // 2],
                )
            grew, grown = _timed(lambda: export_tables(store, ["logs"], work / "out")[0])
            print(f"after one record grew: {grew:.2f} s ({grown.rows} row)")
            copy_to = work / "copy"
            start = time.perf_counter()
            store.con.execute(
                f"COPY (SELECT *, CAST(time AS DATE) AS day FROM logs WHERE line_no >= "
                f"{args.rows}) TO '{copy_to}' (FORMAT parquet, PARTITION_BY (day, source))"
            )
            reference = time.perf_counter() - start
            print(f"reference: DuckDB COPY of the same {new:,} rows: {reference:.2f} s")
            print(f"ratio: 1% export / reference COPY = {by_commit[2] / reference:.2f}")
            if args.rows_too:
                store.con.execute("CREATE TABLE logs_copy AS SELECT * FROM logs")
                by_row = _runs(
                    store,
                    "logs_copy",
                    work / "out",
                    lambda: store.con.execute(
                        "INSERT INTO logs_copy SELECT * FROM logs USING SAMPLE 1 PERCENT"
                    ),
                )
                print(f"ratio: second export by commit / by row = {by_commit[1] / by_row[1]:.4f}")
            if args.lineitem:
                _lineitem(store, work)
        _time_processes(work, args.lineitem)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
