"""End-to-end `nodus detect` throughput: store read, score, store write, in points/s.

Run: nice -n 10 python tests/bench/detect_throughput.py [--points N] [--chunks K]
(required: every method >= 200,000 points/s end to end on 1M points)

A synthetic series (daily cycle, noise, spikes, a level shift) is written to the
metrics table of a fresh workspace. Measured in the same run: the reference is
a bare read of the same points from the store; then, per method, one `detect`
call over the whole series, the same series scored incrementally in K runs
(each one loads the saved state, reads only newer points, scores, saves
anomalies and state, like a cron job catching up), and the real CLI in a
subprocess (`nodus detect load --method M --from-scratch --format csv`, output
to /dev/null) with its peak resident memory. The one-run line also gives the CPU
seconds of the process (the store's own threads included), which a loaded
machine does not inflate as it does wall time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))

from nodus_cli import schemas  # noqa: E402
from nodus_cli.anomaly.detect import detect  # noqa: E402
from nodus_cli.anomaly.methods import METHODS  # noqa: E402
from nodus_cli.anomaly.source import parse_series, read_points  # noqa: E402
from nodus_cli.store import open_store  # noqa: E402
from nodus_cli.workspace import Workspace  # noqa: E402

START = datetime(2026, 1, 1, tzinfo=UTC)


def fill(store, points: int) -> None:
    store.con.execute(
        """INSERT INTO metrics
        SELECT ?::TIMESTAMPTZ + INTERVAL 1 MINUTE * i, 'load', '{}',
               50 + 20 * sin(2 * pi() * i / 1440) + 3 * (random() - 0.5)
                 + CASE WHEN i % 9973 = 0 THEN 60 ELSE 0 END
                 + CASE WHEN i > ? THEN 25 ELSE 0 END,
               'bench'
        FROM range(?) AS t(i)""",
        [START, points * 2 // 3, points],
    )


def main() -> None:
    schemas.install()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--chunks", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        workspace = Workspace(Path(folder) / "ws", "bench")
        with open_store(workspace) as store:
            fill(store, args.points)
            source = parse_series("load")

            started = time.perf_counter()
            times, _values = read_points(store, source)
            read_s = time.perf_counter() - started

        print(f"points: {len(times):,}")
        print(f"reference, bare store read: {len(times) / read_s:12,.0f} points/s ({read_s:.2f} s)")
        for method in METHODS:
            with open_store(workspace) as store:
                started = time.perf_counter()
                cpu_started = time.process_time()
                whole = detect(store, source, method_name=method, from_scratch=True)
                whole_s = time.perf_counter() - started
                whole_cpu = time.process_time() - cpu_started

                step = timedelta(minutes=1) * (args.points // args.chunks)
                started = time.perf_counter()
                scored = 0
                found = 0
                for chunk in range(1, args.chunks + 1):
                    until = START + step * chunk if chunk < args.chunks else None
                    part = detect(
                        store, source, method_name=method, until=until, from_scratch=chunk == 1
                    )
                    scored += part.scored
                    found += part.found
                chunks_s = time.perf_counter() - started
            cli_s, peak_mib = run_cli(workspace.root, method)
            print(
                f"{method:6s} one run: {whole.scored / whole_s:10,.0f} points/s "
                f"({whole_s:.2f} s wall, {whole_cpu:.2f} s CPU, {whole.found} anomalies); "
                f"{args.chunks} runs: "
                f"{scored / chunks_s:10,.0f} points/s ({found} anomalies); CLI end to end: "
                f"{args.points / cli_s:10,.0f} points/s ({cli_s:.2f} s, peak {peak_mib:.0f} MiB)"
            )


def run_cli(home: Path, method: str) -> tuple[float, float]:
    """Wall time and peak RSS of the real CLI scoring the whole series."""
    import resource
    import subprocess

    from tests.conftest import nodus_command

    command = [*nodus_command(), "--home", str(home), "detect", "load", "--method", method]
    command += ["--from-scratch", "--format", "csv"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run(
        command,
        stdout=subprocess.DEVNULL,
        check=True,
        env={"PYTHONPATH": str(PROJECT), "PATH": "/usr/bin:/bin"},
    )
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(peak, before) / 1024


if __name__ == "__main__":
    main()
