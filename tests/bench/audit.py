"""`nodus audit` speed and size, against references measured in the same run.

Run: python tests/bench/audit.py [--gib 1.0] [--rows 1000000] [--runs 3]

* build over files: throughput as a ratio of plain hashlib SHA-256 over the same
  files (target >= 0.8);
* seal store rows: entries/s (target >= 300,000 for 1,000,000 rows), and the peak
  memory of sealing a quarter of the rows versus all of them (flat apart from the
  32 bytes per entry the Merkle tree needs);
* verify that rows bundle: CPU seconds (target <= 3 s);
* inclusion proof size against 32 * ceil(log2 n) bytes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import math
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))

from nodus_cli import schemas  # noqa: E402
from nodus_cli.audit.seal import build_files, seal_rows  # noqa: E402
from nodus_cli.audit.verify import prove, verify_bundle  # noqa: E402
from nodus_cli.keys.signing import SigningKey  # noqa: E402
from nodus_cli.store import Store, open_store  # noqa: E402
from nodus_cli.workspace import Workspace  # noqa: E402

FILE_SIZE = 16 << 20


def make_files(root: Path, total: int) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    block = os.urandom(1 << 20)
    paths = []
    for i in range(max(1, total // FILE_SIZE)):
        path = root / f"part-{i:04d}.bin"
        with path.open("wb") as handle:
            for j in range(FILE_SIZE >> 20):
                handle.write(block[j:] + block[:j])
        paths.append(path)
    return paths


def plain_hashlib(paths: list[Path]) -> float:
    start = time.perf_counter()
    for path in paths:
        digest = hashlib.sha256()
        with open(path, "rb", buffering=0) as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        digest.digest()
    return time.perf_counter() - start


def bench_files(base: Path, gib: float, runs: int, key: SigningKey) -> None:
    total = int(gib * (1 << 30))
    paths = make_files(base / "files", total)
    size = sum(p.stat().st_size for p in paths)
    plain_hashlib(paths)  # warm the page cache for both
    plain, build = [], []
    for _ in range(runs):  # interleaved so drift hits both
        plain.append(plain_hashlib(paths))
        start = time.perf_counter()
        build_files([base / "files"], base / "files.bundle", root=base, key=key)
        build.append(time.perf_counter() - start)
    p, b = statistics.median(plain), statistics.median(build)
    print(f"files: {len(paths)} files, {size / (1 << 30):.2f} GiB, {runs} runs (median)")
    print(f"  hashlib sha256   {p:7.2f} s  {size / p / (1 << 20):8.0f} MiB/s")
    print(f"  nodus audit build{b:7.2f} s  {size / b / (1 << 20):8.0f} MiB/s")
    print(f"  throughput ratio build/hashlib = {p / b:.2f}  (target >= 0.8)")


def fill_store(workspace: Workspace, rows: int) -> None:
    with open_store(workspace) as store:
        store.con.execute(
            """INSERT INTO logs (time, level, host, app, pid, message, attrs, source, file_id,
                 line_no, byte_offset)
               SELECT TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_seconds(i),
                 CASE WHEN i % 10 = 0 THEN 'error' ELSE 'info' END, 'host' || (i % 7), 'api',
                 i % 1000, 'request ' || i || ' served', '{"status":200}', 'bench', 1, i, i * 80
               FROM range(?) t(i)""",
            [rows],
        )


def in_child(workspace: Workspace, work: Callable[[Store], None]) -> tuple[float, int]:
    """Run ``work`` on a freshly opened store in a forked child: (seconds, peak RSS KiB)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read)
        with open_store(workspace) as store:
            start = time.perf_counter()
            work(store)
            elapsed = time.perf_counter() - start
        os.write(write, f"{elapsed}".encode())
        os._exit(0)
    os.close(write)
    elapsed = float(os.read(read, 64).decode())
    os.close(read)
    _, _, usage = os.wait4(pid, 0)
    return elapsed, usage.ru_maxrss


def reference_fetch_and_hash(store: Store) -> None:
    """The floor for sealing: DuckDB renders the same rows as JSON, hashlib hashes each."""
    cursor = store.con.execute("SELECT to_json(t)::VARCHAR FROM logs t ORDER BY rowid")
    sha = hashlib.sha256
    for row in next(iter(cursor.fetchnumpy().values())).tolist():
        sha(b"\x00" + row.encode()).digest()


def bench_rows(base: Path, rows: int, key: SigningKey) -> None:
    workspace = Workspace(base / "ws", "--home").ensure()
    fill_store(workspace, rows)
    bundle = base / "rows.bundle"
    until = dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=rows // 4)
    _, quarter_rss = in_child(
        workspace, lambda store: seal_rows(store, "logs", base / "q.bundle", key=key, until=until)
    )
    reference, _ = in_child(workspace, reference_fetch_and_hash)
    seal_time, seal_rss = in_child(
        workspace, lambda store: seal_rows(store, "logs", bundle, key=key)
    )
    size = bundle.stat().st_size
    print(f"rows: {rows} log rows, bundle {size / (1 << 20):.0f} MiB")
    print(f"  seal {seal_time:6.2f} s = {rows / seal_time:,.0f} entries/s  (target >= 300,000)")
    print(
        f"  reference (DuckDB to_json + hashlib per row, no file, no tree) {reference:.2f} s "
        f"= {rows / reference:,.0f} rows/s; seal/reference throughput = {reference / seal_time:.2f}"
    )
    print(
        f"  peak RSS: {rows // 4} rows {quarter_rss / 1024:.0f} MiB, {rows} rows "
        f"{seal_rss / 1024:.0f} MiB (+{(seal_rss - quarter_rss) / 1024:.0f} MiB for "
        f"{rows - rows // 4} more entries; the Merkle leaves alone are "
        f"{32 * (rows - rows // 4) / (1 << 20):.0f} MiB)"
    )
    public = [key.public()]
    before = time.process_time()
    report = verify_bundle(bundle, public)
    cpu = time.process_time() - before
    assert report.exit_code == 0, report.to_json()
    print(f"  verify CPU {cpu:.2f} s  (target <= 3 s)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"  (bench process peak RSS {peak / 1024:.0f} MiB)")
    proof = prove(bundle, str(rows // 3), base / "entry.proof")
    bound = 32 * math.ceil(math.log2(rows))
    print(f"  inclusion proof: {proof['proof_bytes']} bytes of hashes, bound {bound} bytes")


def main() -> None:
    schemas.install()
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=1.0, help="GiB of files to build over")
    parser.add_argument("--rows", type=int, default=1_000_000, help="store rows to seal")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    key = SigningKey.generate()
    with tempfile.TemporaryDirectory(prefix="nodus-bench-audit-") as tmp:
        base = Path(tmp)
        bench_files(base, args.gib, args.runs, key)
        bench_rows(base, args.rows, key)


if __name__ == "__main__":
    main()
