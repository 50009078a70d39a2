"""`nodus timeline --around T --window 1h` as a ratio of the one DuckDB query it must beat.

Builds a store with ``--lines`` log rows (default 1,000,000, ingested by ``nodus
ingest`` so patterns are learned), 500,000 metric points, 1,000 anomalies and 100
configuration generations, then times, each as a whole process, alternating:

- reference: a Python process that opens the store read-only with DuckDB and selects
  the window's warn-and-above log rows (``SELECT * FROM logs WHERE time BETWEEN ? AND
  ? AND level IN (...)``);
- nodus: ``nodus timeline --around T --window 1h --format csv``.

Ratio = nodus seconds / reference seconds (required <= 2). Best of ``--runs``, after
one untimed run of each (it fills the file cache and compiles nodus's bytecode into a
cache under the temporary folder, as an installed nodus has it; with
``PYTHONDONTWRITEBYTECODE`` every run would compile nodus's sources again). The
median of the paired ratios is printed too: it is steadier on a busy machine.

Run: python tests/bench/timeline.py [--lines N] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
BASE = 1_763_424_000  # 2025-11-18T00:00:00Z
LEVELS = ("info", "info", "info", "debug", "warn", "error")


def build(work: Path, lines: int) -> tuple[Path, str]:
    rng = random.Random(5)
    data = work / "app.jsonl"
    with data.open("w") as out:
        for i in range(lines):
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(BASE + i // 5))
            kind = rng.randrange(40)
            user, took = rng.randrange(1000), rng.randrange(900)
            msg = f"event{chr(97 + kind % 26)}{kind} handled for user{user} in {took} ms"
            out.write(
                json.dumps({"ts": stamp + "Z", "level": rng.choice(LEVELS), "msg": msg}) + "\n"
            )
    home = work / "home"
    env = {**os.environ, "NODUS_HOME": str(home), "PYTHONPATH": str(PROJECT)}
    subprocess.run(
        [sys.executable, "-m", "nodus_cli", "-q", "ingest", str(data)], check=True, env=env
    )
    import duckdb

    con = duckdb.connect(str(home / "store.duckdb"))
    span = lines // 5
    con.execute(
        "INSERT INTO metrics (time, series, labels, value, source)"
        " SELECT to_timestamp(? + i * ?), 'cpu', NULL, random() * 100, 'bench'"
        " FROM range(500000) AS r(i)",
        [BASE, span / 500_000],
    )
    con.execute(
        "INSERT INTO anomalies (series, time, value, score, method, reason)"
        " SELECT 'cpu', to_timestamp(? + i * ?), 99, 0.999, 'auto', 'spike'"
        " FROM range(1000) AS r(i)",
        [BASE, span / 1000],
    )
    con.execute(
        """INSERT INTO config_generations (target, generation, time, source, status, sha256,
               size, content, diff)
           SELECT '/etc/app.toml', i, to_timestamp(? + i * ?), 'apply', 'committed', 'x', 1,
               'a', '[1]' FROM range(100) AS r(i)""",
        [BASE, span / 100],
    )
    con.close()
    middle = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(BASE + span // 2))
    return home, middle


REFERENCE = """
import duckdb, sys
con = duckdb.connect(sys.argv[1], read_only=True)
rows = con.execute(
    "SELECT * FROM logs WHERE time BETWEEN CAST(? AS TIMESTAMPTZ) - INTERVAL 1 HOUR "
    "AND CAST(? AS TIMESTAMPTZ) + INTERVAL 1 HOUR AND level IN ('warn', 'error', 'fatal')",
    [sys.argv[2], sys.argv[2]],
).fetchall()
print(len(rows))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nodus-bench-timeline-") as tmp:
        home, middle = build(Path(tmp), args.lines)
        env = {**os.environ, "NODUS_HOME": str(home), "PYTHONPATH": str(PROJECT)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "bytecode")
        reference = [sys.executable, "-c", REFERENCE, str(home / "store.duckdb"), middle]
        nodus = [
            sys.executable,
            "-m",
            "nodus_cli",
            "timeline",
            "--around",
            middle,
            "--window",
            "1h",
            "--format",
            "csv",
        ]
        for command in (reference, nodus):  # untimed: file cache and bytecode
            subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
        best = {"reference": float("inf"), "nodus": float("inf")}
        paired = []
        for _ in range(args.runs):
            took = {}
            for name, command in (("reference", reference), ("nodus", nodus)):
                started = time.perf_counter()
                subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
                took[name] = time.perf_counter() - started
                best[name] = min(best[name], took[name])
            paired.append(took["nodus"] / took["reference"])
        print(f"{args.lines:,} log rows; window 1h around {middle}")
        print(f"reference (DuckDB, warn+ rows of the window): {best['reference']:.2f} s")
        print(f"nodus timeline: {best['nodus']:.2f} s")
        print(f"ratio nodus/reference: {best['nodus'] / best['reference']:.2f} (required <= 2)")
        print(f"median of the paired ratios: {statistics.median(paired):.2f}")


if __name__ == "__main__":
    main()
