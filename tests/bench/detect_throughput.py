"""End-to-end `nodus detect` throughput: store read, score, store write, in points/s.

Run: python tests/bench/detect_throughput.py [--points N] [--chunks K]
(required: >= 50,000 points/s; aim 100,000)

A synthetic series (daily cycle, noise, spikes, a level shift) is written to the
metrics table of a fresh workspace. Three figures, measured in the same run:
the reference is a bare read of the same points from the store; then one
`detect` call over the whole series; then the same series scored incrementally
in K runs (each one loads the saved state, reads only newer points, scores,
saves anomalies and state, like a cron job catching up).
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

from nodus_cli.anomaly.detect import detect  # noqa: E402
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

            started = time.perf_counter()
            whole = detect(store, source)
            whole_s = time.perf_counter() - started

            step = timedelta(minutes=1) * (args.points // args.chunks)
            started = time.perf_counter()
            scored = 0
            found = 0
            for chunk in range(1, args.chunks + 1):
                until = START + step * chunk if chunk < args.chunks else None
                part = detect(store, source, until=until, from_scratch=chunk == 1)
                scored += part.scored
                found += len(part.anomalies)
            chunks_s = time.perf_counter() - started
    print(f"points: {len(times):,}")
    print(f"reference, bare store read: {len(times) / read_s:12,.0f} points/s ({read_s:.2f} s)")
    print(
        f"detect auto, one run:       {whole.scored / whole_s:12,.0f} points/s ({whole_s:.2f} s, "
        f"{len(whole.anomalies)} anomalies; {whole_s / read_s:.1f}x the bare read)"
    )
    print(
        f"detect auto, {args.chunks} runs:       {scored / chunks_s:12,.0f} points/s "
        f"({chunks_s:.2f} s, {found} anomalies; {chunks_s / read_s:.1f}x the bare read)"
    )


if __name__ == "__main__":
    main()
