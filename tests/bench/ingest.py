"""`nodus ingest` throughput as a ratio of DuckDB's own readers, measured in the same run.

Generates a JSON-lines file and a combined access log (1,000,000 lines each by
default), then times, each in a fresh subprocess writing a fresh store file:

- reference: ``CREATE TABLE t AS SELECT * FROM read_json_auto(file)`` for JSON lines, and
  ``read_csv`` of the raw lines + ``regexp_extract`` + ``strptime`` for the access log;
- nodus: ``nodus ingest FILE`` (exactly-once on: windowed commits with the checkpoint).

Ratio = reference seconds / nodus seconds (1.0 = as fast as DuckDB alone; required
>= 0.5). The best of ``--runs`` alternating runs is kept for each side, after one
untimed run of each (it fills the file cache and compiles nodus's bytecode into a
cache under the temporary folder: an installed nodus has its bytecode compiled at
install time, while a source checkout under PYTHONDONTWRITEBYTECODE=1 would compile
every module again in each run, about 0.05 s). The median ratio of the pairs of
runs is printed next to the best-of ratio. The CPU-time
ratio (user + system seconds of each child) is printed too: on a busy machine it is
steadier than wall time. Peak memory
(max RSS of the child) is reported for nodus at full size and at twice that (the
file twice over, so both span several windows): it must not grow with the file.

Run: python tests/bench/ingest.py [--lines N] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))

from nodus_cli.ingest.formats import ACCESS, ACCESS_FIELDS  # noqa: E402

LEVELS = ("debug", "info", "info", "info", "warn", "error")
PATHS = ("/", "/cart", "/login", "/api/orders", "/static/app.js", "/health")
AGENTS = ("curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0")


def generate(directory: Path, lines: int) -> tuple[Path, Path]:
    rng = random.Random(7)
    jsonl = directory / f"app-{lines}.jsonl"
    access = directory / f"access-{lines}.log"
    base = 1_763_424_000
    with jsonl.open("w") as out:
        for i in range(lines):
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(base + i))
            record = {
                "ts": f"{stamp}.{i % 1000:03d}Z",
                "level": rng.choice(LEVELS),
                "service": "checkout",
                "msg": f"order placed {i}",
                "user": f"user{rng.randrange(100)}@example.com",
                "latency_ms": round(rng.random() * 300, 1),
                "order_id": i,
            }
            out.write(json.dumps(record) + "\n")
    with access.open("w") as out:
        for i in range(lines):
            stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(base + i))
            out.write(
                f"10.0.{rng.randrange(256)}.{rng.randrange(256)} - - [{stamp}] "
                f'"GET {rng.choice(PATHS)} HTTP/1.1" {rng.choice((200, 200, 304, 404, 500))} '
                f'{rng.randrange(50_000)} "-" "{rng.choice(AGENTS)}"\n'
            )
    return jsonl, access


REFERENCE_JSON = """
import duckdb, sys
con = duckdb.connect(sys.argv[1])
con.execute("CREATE TABLE t AS SELECT * FROM read_json_auto(?)", [sys.argv[2]])
con.close()
"""

REFERENCE_ACCESS = """
import duckdb, sys
con = duckdb.connect(sys.argv[1])
names = sys.argv[4]
con.execute(f'''CREATE TABLE t AS SELECT a.*, strptime(a.ts, '%d/%b/%Y:%H:%M:%S %z') AS time
  FROM (SELECT regexp_extract(line, ?, {names}) AS a FROM read_csv(?, columns={{'line': 'VARCHAR'}},
        delim='\\x01', quote='', escape='', header=false, auto_detect=false))''',
  [sys.argv[3], sys.argv[2]])
con.close()
"""


def run_child(cmd: list[str], env: dict[str, str]) -> tuple[float, int, float]:
    """Wall seconds, peak RSS (KiB) and CPU seconds (user + system) of one child."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed ({proc.returncode}): {stderr}")
    return elapsed, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def fresh(path: Path) -> Path:
    for suffix in ("", ".wal"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT), env.get("PYTHONPATH")]))
    nodus = [sys.executable, "-m", "nodus_cli"]
    names = "[" + ", ".join(f"'{f}'" for f in ACCESS_FIELDS) + "]"
    with tempfile.TemporaryDirectory(prefix="nodus-bench-") as tmp:
        work = Path(tmp)
        env["PYTHONPYCACHEPREFIX"] = str(work / "bytecode")
        full = generate(work, args.lines)
        double = [work / f"double-{path.name}" for path in full]
        for path, twice in zip(full, double, strict=True):
            # Streamed: a child's peak RSS counts the parent's at fork time.
            with twice.open("wb") as out:
                for _ in range(2):
                    with path.open("rb") as copy:
                        shutil.copyfileobj(copy, out, 1 << 20)
        print(
            f"{args.lines:,} lines: {full[0].stat().st_size >> 20} MiB JSON lines, "
            f"{full[1].stat().st_size >> 20} MiB access log"
        )
        results = {}
        for label, data, reference in (
            ("jsonl", full[0], [sys.executable, "-c", REFERENCE_JSON]),
            ("combined", full[1], [sys.executable, "-c", REFERENCE_ACCESS]),
        ):
            ref_times, ref_cpu, ours_times, ours_cpu, ours_rss = [], [], [], [], []
            for run in range(args.runs + 1):  # run 0 is the untimed warm-up
                db = fresh(work / "ref.duckdb")
                extra = [ACCESS, names] if label == "combined" else []
                ref_seconds, _, ref_cpu_seconds = run_child(
                    [*reference, str(db), str(data), *extra], env
                )
                home = work / "home"
                if home.exists():
                    for item in home.iterdir():
                        if item.is_file():
                            item.unlink()
                seconds, rss, cpu = run_child(
                    [*nodus, "--home", str(home), "-q", "ingest", str(data)], env
                )
                if run == 0:
                    continue
                ref_times.append(ref_seconds)
                ref_cpu.append(ref_cpu_seconds)
                ours_times.append(seconds)
                ours_cpu.append(cpu)
                ours_rss.append(rss)
            big_home = work / f"double-{label}"
            big = double[0] if label == "jsonl" else double[1]
            big_cmd = [*nodus, "--home", str(big_home), "-q", "ingest", str(big)]
            _, big_rss, _ = run_child(big_cmd, env)
            ref, ours = min(ref_times), min(ours_times)
            results[label] = (ref, ours, max(ours_rss), big_rss)
            paired = statistics.median(r / o for r, o in zip(ref_times, ours_times, strict=True))
            print(
                f"{label:9} reference {ref:6.2f} s   nodus ingest {ours:6.2f} s   "
                f"ratio {ref / ours:4.2f} (median of pairs {paired:4.2f})   "
                f"({args.lines / ours:,.0f} lines/s)   "
                f"CPU-time ratio {min(ref_cpu) / min(ours_cpu):4.2f} "
                f"({min(ref_cpu):.2f} s / {min(ours_cpu):.2f} s)   "
                f"peak RSS {max(ours_rss) / 1024:.0f} MiB at {args.lines:,} lines, "
                f"{big_rss / 1024:.0f} MiB at {2 * args.lines:,} lines"
            )
        worst = min(ref / ours for ref, ours, _, _ in results.values())
        print(f"worst ratio {worst:.2f} (required >= 0.5, aim 0.8)")


if __name__ == "__main__":
    main()
