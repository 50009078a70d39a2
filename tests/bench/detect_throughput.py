"""End-to-end `nodus detect` throughput per method, in points/s, with peak memory.

Run: nice -n 10 python tests/bench/detect_throughput.py [--points N] [--repeats R]
(required: every method >= 200,000 points/s end to end on 1M points)

A synthetic series (daily cycle, deterministic noise, spikes, a level shift) is
written to the metrics table of a fresh workspace. Then, alternating the methods
R times, the installed CLI scores the whole series in a subprocess
(`nodus detect load --method M --from-scratch --format csv`, output to
/dev/null): store read, scoring, anomalies and state saved, output written.
Per method the median wall time gives points/s; the CPU seconds of that process
(user + system, its threads included: a loaded machine does not inflate them as
it does wall time) and its own peak resident memory come from its rusage. The
bar is checked on both clocks: on a shared machine wall time says more about the
load (the river reference shows how much) than about nodus.
`--points all` streams every scored point as CSV: its line measures the output.
With `--baseline DIR` the nodus of another checkout (say /work/main) runs too,
alternating with this one, for a before/after under the same load.

References, measured in the same run: a bare read of the points from the store
(the floor under any method), and a plain loop of river's HalfSpaceTrees over
the same lagged, scaled values (`--reference-points` of them: it runs at about
50,000 points/s), the per-point Python loop the numpy half-space trees replace.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))

from nodus_cli.anomaly.methods import METHODS  # noqa: E402
from nodus_cli.anomaly.source import parse_series, read_points  # noqa: E402
from nodus_cli.store import open_store  # noqa: E402
from nodus_cli.workspace import Workspace  # noqa: E402
from tests.conftest import nodus_command  # noqa: E402

START = datetime(2026, 1, 1, tzinfo=UTC)
REQUIRED = 200_000  # points/s end to end, every method


def fill(store, points: int) -> None:
    """A minute series over ``points`` minutes; the same values in every run."""
    store.con.execute(
        """INSERT INTO metrics (time, series, labels, value, source)
        SELECT ?::TIMESTAMPTZ + INTERVAL 1 MINUTE * i, 'load', '{}',
               50 + 20 * sin(2 * pi() * i / 1440) + 3 * (hash(i) % 1000000 / 1e6 - 0.5)
                 + CASE WHEN i % 9973 = 0 THEN 60 ELSE 0 END
                 + CASE WHEN i > ? THEN 25 ELSE 0 END,
               'bench'
        FROM range(?) AS t(i)""",
        [START, points * 2 // 3, points],
    )


@dataclass
class Run:
    wall_s: float
    cpu_s: float
    peak_mib: float


def run_cli(tree: Path, home: Path, method: str, *extra: str) -> Run:
    """Wall time, CPU time and peak RSS of the real CLI of ``tree`` scoring the whole series."""
    command = [*nodus_command(), "--home", str(home), "detect", "load", "--method", method]
    command += ["--from-scratch", "--format", "csv", *extra]
    env = {"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _pid, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {child.returncode}")
    return Run(elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def river_reference(values, points: int) -> float:
    """Points/s of a plain river HalfSpaceTrees loop (score, then learn) on lagged values."""
    from river import anomaly

    x = values[:points]
    low, high = float(x.min()), float(x.max())
    scaled = ((x - low) / (high - low)).tolist()
    model = anomaly.HalfSpaceTrees(n_trees=10, height=8, window_size=250, seed=42)
    started = time.perf_counter()
    for i in range(3, len(scaled)):
        features = {"lag0": scaled[i], "lag1": scaled[i - 1], "lag2": scaled[i - 2]}
        model.score_one(features)
        model.learn_one(features)
    return (len(scaled) - 3) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-points", type=int, default=100_000)
    parser.add_argument("--baseline", type=Path, help="another checkout to measure alike")
    args = parser.parse_args()
    trees = [("", PROJECT)] + ([("baseline ", args.baseline.resolve())] if args.baseline else [])
    cases = [
        (label, tree, method, extra)
        for method, extra in [(method, ()) for method in METHODS]
        + [("robust", ("--points", "all"))]
        for label, tree in trees
    ]
    with tempfile.TemporaryDirectory() as folder:
        workspace = Workspace(Path(folder) / "ws", "bench")
        with open_store(workspace) as store:
            fill(store, args.points)
        runs: dict[int, list[Run]] = {case: [] for case in range(len(cases))}
        reads: list[float] = []
        rivers: list[float] = []
        for _repeat in range(args.repeats):
            with open_store(workspace) as store:
                started = time.perf_counter()
                times, values = read_points(store, parse_series("load"))
                reads.append(time.perf_counter() - started)
            rivers.append(river_reference(values, args.reference_points))
            for case, (_label, tree, method, extra) in enumerate(cases):
                runs[case].append(run_cli(tree, workspace.root, method, *extra))
    read_s = statistics.median(reads)
    river = statistics.median(rivers)
    print(f"points: {len(times):,}; {args.repeats} alternating runs, medians; load {load()}")
    print(f"{'reference, bare store read':29s}  {len(times) / read_s:10,.0f} points/s")
    print(f"{'reference, river HST loop':29s}  {river:10,.0f} points/s")
    below: dict[str, list[str]] = {"wall": [], "CPU": []}
    for case, (label, _tree, method, extra) in enumerate(cases):
        wall = statistics.median(run.wall_s for run in runs[case])
        cpu = statistics.median(run.cpu_s for run in runs[case])
        peak = max(run.peak_mib for run in runs[case])
        rate = args.points / wall
        name = label + " ".join([method, *extra])
        print(
            f"{name:29s}  {rate:10,.0f} points/s end to end ({wall:5.2f} s wall, "
            f"{cpu:5.2f} s CPU = {args.points / cpu:10,.0f} points/s of CPU), "
            f"peak {peak:4.0f} MiB, {rate / river:5.1f}x river"
        )
        if not label and not extra:
            for clock, seconds in (("wall", wall), ("CPU", cpu)):
                if args.points / seconds < REQUIRED:
                    below[clock].append(name)
    for clock, names in below.items():
        verdict = f"below: {', '.join(names)}" if names else "every method ok"
        print(f"required >= {REQUIRED:,} points/s per method, {clock} time: {verdict}")


def load() -> str:
    return " ".join(f"{one:.1f}" for one in os.getloadavg())


if __name__ == "__main__":
    main()
