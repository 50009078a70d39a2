"""NAB score of `nodus detect --method auto` over every series in shared/data/nab.

Run: python tests/bench/nab.py [--jobs N]     (required: standard >= 55)

Each series goes into the metrics table of a fresh workspace and is scored by the
real CLI (`nodus detect NAME --method auto --points all --format csv`, one
subprocess per series). The scorer follows shared/data/nab/README.md: the first
min(15% of rows, 750) rows are a probation period and not scored; the best
detection in a window earns the scaled sigmoid of its position (earlier is
better, normalised so the window's first row earns the full weight); a window
with no detection costs A_FN; a detection outside every window costs A_FP times
the sigmoid of its distance past the previous window (-A_FP when there is none).
One threshold for the whole corpus is chosen by sweeping every score, and the
result is normalised so that flagging nothing is 0 and a perfect detector 100.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))

from nodus_cli.anomaly.detect import ANOMALY_THRESHOLD  # noqa: E402
from nodus_cli.store import open_store  # noqa: E402
from nodus_cli.workspace import Workspace  # noqa: E402
from tests.conftest import nodus_command, shared_path  # noqa: E402

PROFILES = {
    "standard": {"tp": 1.0, "fp": 0.11, "fn": 1.0},
    "reward_low_FP_rate": {"tp": 1.0, "fp": 0.22, "fn": 1.0},
}
PROBATION_SHARE = 0.15
PROBATION_MAX = 750


def scaled_sigmoid(position: float) -> float:
    """+0.987 at a window's left edge, 0 at its right edge, towards -1 after it."""
    if position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


@dataclass
class Scored:
    """One series: detector scores and, per row, its window (-1: none) and reward."""

    name: str
    scores: np.ndarray
    window: np.ndarray
    reward: np.ndarray
    scored: np.ndarray  # False inside the probation period
    windows: int


def rewards(times: list[str], windows: list[list[str]], profile: dict[str, float]):
    rows = len(times)
    index = {t: i for i, t in enumerate(times)}
    spans = [(index[start], index[end]) for start, end in windows]
    window = np.full(rows, -1)
    reward = np.empty(rows)
    best_tp = scaled_sigmoid(-1.0)
    previous_right: int | None = None
    previous_width = 0
    current = 0
    for i in range(rows):
        if current < len(spans) and spans[current][0] <= i <= spans[current][1]:
            left, right = spans[current]
            width = right - left + 1
            reward[i] = scaled_sigmoid(-(right - i + 1) / width) * profile["tp"] / best_tp
            window[i] = current
            if i == right:
                previous_right, previous_width = right, width
                current += 1
        else:
            if previous_right is None:
                position = 3.0
            else:
                position = abs(previous_right - i) / max(previous_width - 1, 1)
            reward[i] = scaled_sigmoid(position) * profile["fp"]
    probation = int(min(math.floor(PROBATION_SHARE * rows), PROBATION_MAX))
    return window, reward, np.arange(rows) >= probation


def sweep(series: list[Scored], profile: dict[str, float]) -> tuple[float, float]:
    """The corpus-wide threshold with the best raw score, and that score."""
    best_in_window: dict[tuple[int, int], float] = {}
    entries = []
    for k, one in enumerate(series):
        for w in set(one.window[one.scored & (one.window >= 0)].tolist()):
            best_in_window[(k, w)] = -profile["fn"]
        for i in np.nonzero(one.scored)[0].tolist():
            entries.append((float(one.scores[i]), k, int(one.window[i]), float(one.reward[i])))
    entries.sort(key=lambda entry: -entry[0])
    false_positives = 0.0
    windows_total = sum(best_in_window.values())
    best = (math.inf, windows_total)
    i = 0
    while i < len(entries):
        threshold = entries[i][0]
        while i < len(entries) and entries[i][0] == threshold:
            _score, k, w, reward = entries[i]
            if w < 0:
                false_positives += reward
            elif reward > best_in_window[(k, w)]:
                windows_total += reward - best_in_window[(k, w)]
                best_in_window[(k, w)] = reward
            i += 1
        if false_positives + windows_total > best[1]:
            best = (threshold, false_positives + windows_total)
    return best


def raw_at(series: list[Scored], profile: dict[str, float], threshold: float) -> float:
    total = 0.0
    for one in series:
        flagged = one.scored & (one.scores >= threshold)
        total += float(one.reward[flagged & (one.window < 0)].sum())
        for w in set(one.window[one.scored & (one.window >= 0)].tolist()):
            hits = one.reward[flagged & (one.window == w)]
            total += float(hits.max()) if len(hits) else -profile["fn"]
    return total


def normalise(raw: float, series: list[Scored], profile: dict[str, float]) -> float:
    null = raw_at(series, profile, math.inf)
    perfect = sum(one.windows for one in series) * profile["tp"]
    return 100.0 * (raw - null) / (perfect - null)


def detect_scores(csv_path: Path, name: str) -> tuple[list[str], np.ndarray]:
    """Load one NAB file into a fresh workspace's metrics and score it with the CLI."""
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder) / "ws"
        with open_store(Workspace(home, "bench")) as store:
            store.con.execute(
                "INSERT INTO metrics (time, series, labels, value, source)"
                " SELECT timestamp::TIMESTAMPTZ, ?, '{}', value, 'nab' "
                "FROM read_csv(?, header = true)",
                [name, str(csv_path)],
            )
        proc = subprocess.run(
            [
                *nodus_command(),
                "--home",
                str(home),
                "detect",
                name,
                "--method",
                "auto",
                "--points",
                "all",
                "--format",
                "csv",
            ],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONPATH": str(PROJECT), "PATH": "/usr/bin:/bin"},
        )
    rows = list(csv.reader(proc.stdout.splitlines()))[1:]
    return [r[0] for r in rows], np.array([float(r[2]) for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    root = shared_path() / "data" / "nab"
    labels = json.loads((root / "labels" / "combined_windows.json").read_text())
    names = sorted(labels)
    started = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda n: detect_scores(root / "data" / n, Path(n).stem), names))
    elapsed = time.perf_counter() - started
    points = 0
    per_profile: dict[str, list[Scored]] = {p: [] for p in PROFILES}
    for name, (times, scores) in zip(names, results, strict=True):
        with (root / "data" / name).open() as handle:
            nab_times = [row[0] for row in list(csv.reader(handle))[1:]]
        # Rows that share a timestamp are one point to nodus (their mean): map back.
        by_time = dict(zip((t[:19].replace("T", " ") for t in times), scores, strict=True))
        scores = np.array([by_time[t] for t in nab_times])
        points += len(times)
        windows = [[start.split(".")[0], end.split(".")[0]] for start, end in labels[name]]
        for profile_name, profile in PROFILES.items():
            window, reward, scored = rewards(nab_times, windows, profile)
            per_profile[profile_name].append(
                Scored(name, scores, window, reward, scored, len(windows))
            )
    print(f"{len(names)} series, {points:,} points scored by the CLI in {elapsed:.1f} s")
    for profile_name, profile in PROFILES.items():
        series = per_profile[profile_name]
        threshold, raw = sweep(series, profile)
        fixed = raw_at(series, profile, ANOMALY_THRESHOLD)
        print(
            f"{profile_name:20s} score {normalise(raw, series, profile):6.2f} "
            f"(swept threshold {threshold:.3f}); at the CLI's anomaly threshold "
            f"{ANOMALY_THRESHOLD}: {normalise(fixed, series, profile):6.2f}"
        )


if __name__ == "__main__":
    main()
