"""Rolling-origin MASE of `nodus forecast`'s model against seasonal naive, same origins.

Run: python tests/bench/forecast.py [--origins N]
(required: geometric-mean ratio < 1.0 at both horizons, no series above 1.2)

Series: shared/data/nab/data/realKnownCause/*.csv. Origins are spread evenly over
the last 30% of each series; horizons are 3 hours and 1 day. At every origin the
library forecasts from the history before it (season detected from that history,
models chosen on it); the reference is seasonal naive with the same detected
season (naive when there is none), and a second reference uses a daily season.
MASE divides each origin's MAE by the in-sample seasonal-naive MAE of its history.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))

from nodus_cli.forecast.model import fit_forecast, regular_grid, seasonal_naive  # noqa: E402
from nodus_cli.forecast.season import detect_season  # noqa: E402
from tests.conftest import shared_path  # noqa: E402

HORIZONS = {"3h": 3 * 3600, "1d": 86400}


def read_series(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with path.open() as handle:
        rows = list(csv.reader(handle))[1:]
    times = np.array([datetime.fromisoformat(r[0]).timestamp() for r in rows])
    return times, np.array([float(r[1]) for r in rows])


def mase_scale(history: np.ndarray, season: int) -> float:
    lag = season if season and len(history) > season else 1
    scale = float(np.mean(np.abs(history[lag:] - history[:-lag])))
    return scale if scale > 0 else 1.0


def evaluate(path: Path, origins: int) -> dict[str, tuple[float, float, float]]:
    times, values = read_series(path)
    step, grid, regular = regular_grid(times, values)
    n = len(regular)
    daily = round(86400 / step)
    out = {}
    for name, seconds in HORIZONS.items():
        steps = max(1, round(seconds / step))
        first, last = int(n * 0.7), n - steps
        model, reference, daily_reference = [], [], []
        for origin in np.linspace(first, last, origins).astype(int).tolist():
            history, actual = regular[:origin], regular[origin : origin + steps]
            season = detect_season(grid[:origin][-4000:], history[-4000:])
            fitted = fit_forecast(history, steps, times_s=grid[:origin], season=season)
            scale = mase_scale(history, season)
            model.append(np.mean(np.abs(fitted.mean - actual)) / scale)
            naive = seasonal_naive(history, season, steps)
            reference.append(np.mean(np.abs(naive - actual)) / scale)
            daily_naive = seasonal_naive(history, daily, steps)
            daily_reference.append(np.mean(np.abs(daily_naive - actual)) / scale)
        out[name] = (
            float(np.mean(model)),
            float(np.mean(model) / np.mean(reference)),
            float(np.mean(model) / np.mean(daily_reference)),
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--origins", type=int, default=10)
    args = parser.parse_args()
    folder = shared_path() / "data" / "nab" / "data" / "realKnownCause"
    started = time.perf_counter()
    ratios: dict[str, list[float]] = {name: [] for name in HORIZONS}
    daily_ratios: dict[str, list[float]] = {name: [] for name in HORIZONS}
    print(f"{'series':45s} " + " ".join(f"{h:>22s}" for h in HORIZONS))
    print(f"{'':45s} " + " ".join(f"{'MASE  ratio  ratio(1d)':>22s}" for _ in HORIZONS))
    for path in sorted(folder.glob("*.csv")):
        result = evaluate(path, args.origins)
        cells = []
        for name, (mase, ratio, daily_ratio) in result.items():
            ratios[name].append(ratio)
            daily_ratios[name].append(daily_ratio)
            cells.append(f"{mase:6.3f} {ratio:6.3f} {daily_ratio:9.3f}")
        print(f"{path.stem:45s} " + " ".join(f"{c:>22s}" for c in cells), flush=True)
    for name in HORIZONS:
        geo = math.exp(np.mean(np.log(ratios[name])))
        geo_daily = math.exp(np.mean(np.log(daily_ratios[name])))
        print(
            f"horizon {name}: geometric-mean MASE ratio vs seasonal naive {geo:.3f} "
            f"(worst series {max(ratios[name]):.3f}); vs daily seasonal naive {geo_daily:.3f} "
            f"(worst {max(daily_ratios[name]):.3f})"
        )
    print(f"elapsed {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
