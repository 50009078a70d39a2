"""Rolling-origin MASE of `nodus forecast` against seasonal naive, AutoETS and AutoARIMA.

Run: python tests/bench/forecast.py [--origins N] [--reference-train N] [--horizon 3h]
(required: nodus's geometric-mean MASE no worse than the better of AutoETS and
AutoARIMA and at most 0.8 times seasonal naive at 3 h; no series more than 10%
worse than seasonal naive; 95% intervals covering 90-97% of the actual values)

Series: shared/data/nab/data/realKnownCause/*.csv. The cut-offs are spread evenly
over the last 30% of each series and are the same for every model and both
horizons (3 hours and 1 day). At every cut-off each model sees only the history
before it: nodus detects the season and chooses its model there; seasonal naive
uses that same season (naive when there is none); statsforecast's AutoETS and
AutoARIMA get the same season length and the last ``--reference-train`` points;
for a season longer than 24 points (statsforecast's ETS ignores one, and its
seasonal ARIMA at lag 336 did not finish a fit in 10 minutes) each runs inside
statsforecast's MSTL, which takes the season out first. MASE divides each
cut-off's MAE by the in-sample seasonal-naive MAE of its history. Coverage is the
share of actual values inside nodus's 95% interval after clipping to the range
the series can take.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))

from nodus_cli.forecast.model import (  # noqa: E402
    MAX_TRAIN,
    Z95,
    clip_to_range,
    fit_forecast,
    interval_coverage,
    regular_grid,
    seasonal_naive,
)
from nodus_cli.series import detect_season  # noqa: E402
from tests.conftest import shared_path  # noqa: E402

HORIZONS = {"3h": 3 * 3600, "1d": 86400}
MODELS = ("nodus", "seasonal-naive", "AutoETS", "AutoARIMA")
LONG_SEASON = 24  # the longest season statsforecast's ETS models itself


def read_series(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with path.open() as handle:
        rows = list(csv.reader(handle))[1:]
    times = np.array([datetime.fromisoformat(r[0]).timestamp() for r in rows])
    return times, np.array([float(r[1]) for r in rows])


def mase_scale(history: np.ndarray, season: int) -> float:
    lag = season if season and len(history) > season else 1
    scale = float(np.mean(np.abs(history[lag:] - history[:-lag])))
    return scale if scale > 0 else 1.0


def reference_models(length: int) -> dict[str, Any]:
    """statsforecast's AutoETS and AutoARIMA for a season of ``length`` points."""
    from statsforecast.models import MSTL, AutoARIMA, AutoETS

    if length > LONG_SEASON:
        # ETS drops such a season and a seasonal ARIMA at lag 336 did not finish one
        # fit in 10 minutes: statsforecast's own answer is MSTL, the season taken out
        # by STL and each model forecasting the rest
        return {
            "AutoETS": MSTL(season_length=length, trend_forecaster=AutoETS(model="ZZN")),
            "AutoARIMA": MSTL(season_length=length, trend_forecaster=AutoARIMA()),
        }
    return {"AutoETS": AutoETS(season_length=length), "AutoARIMA": AutoARIMA(season_length=length)}


def reference_length(recent: np.ndarray, season: int) -> int:
    """The season statsforecast is given: the detected one when two fit in its history."""
    return season if season and len(recent) >= 2 * season else 1


def statsforecast_mean(model: Any, recent: np.ndarray, steps: int) -> np.ndarray:
    """A statsforecast model's point forecast (its fitting chatter silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(model.forecast(y=recent, h=steps)["mean"], dtype=float)


def references(history: np.ndarray, season: int, steps: int, train: int) -> dict[str, np.ndarray]:
    """statsforecast's AutoETS and AutoARIMA forecasts of ``steps`` points."""
    recent = history[-train:]
    out = {}
    for name, model in reference_models(reference_length(recent, season)).items():
        try:
            out[name] = statsforecast_mean(model, recent, steps)
        except Exception:  # a reference that fails falls back to naive, and says so
            print(f"  {name} failed; naive used", file=sys.stderr)
            out[name] = np.full(steps, recent[-1], dtype=float)
    return out


def horizon_steps(step: float) -> dict[str, int]:
    """Each horizon in points of a series sampled every ``step`` seconds."""
    return {name: max(1, round(seconds / step)) for name, seconds in HORIZONS.items()}


def cut_offs(n: int, step: float, origins: int) -> list[int]:
    """``origins`` cut-offs over the last 30% of ``n`` points, leaving room for the
    longest horizon whichever horizons are measured (so every run has the same ones)."""
    longest = max(horizon_steps(step).values())
    return np.linspace(int(n * 0.7), n - longest, origins).astype(int).tolist()


def evaluate(
    path: Path, origins: int, train: int, horizons: list[str]
) -> dict[str, dict[str, Any]]:
    """Per horizon: mean MASE of each model, and nodus's interval coverage."""
    times, values = read_series(path)
    step, grid, regular = regular_grid(times, values)
    n = len(regular)
    steps = {name: horizon_steps(step)[name] for name in horizons}
    longest = max(steps.values())
    errors: dict[str, dict[str, list[float]]] = {h: {m: [] for m in MODELS} for h in horizons}
    inside: dict[str, list[float]] = {h: [] for h in horizons}
    for origin in cut_offs(n, step, origins):
        history = regular[:origin]
        season = detect_season(grid[:origin][-MAX_TRAIN:], history[-MAX_TRAIN:])
        scale = mase_scale(history, season)
        others = references(history, season, longest, train)
        others["seasonal-naive"] = seasonal_naive(history, season, longest)
        for name, count in steps.items():
            actual = regular[origin : origin + count]
            fitted = fit_forecast(history, count, times_s=grid[:origin], season=season)
            mean, lower, upper = clip_to_range(
                history,
                fitted.mean,
                fitted.mean - Z95 * fitted.sigma,
                fitted.mean + Z95 * fitted.sigma,
            )
            inside[name].append(interval_coverage(actual, lower, upper))
            errors[name]["nodus"].append(float(np.mean(np.abs(mean - actual))) / scale)
            for model, forecast in others.items():
                mae = float(np.mean(np.abs(forecast[:count] - actual)))
                errors[name][model].append(mae / scale)
    return {
        h: {
            **{m: float(np.mean(errors[h][m])) for m in MODELS},
            "coverage": float(np.mean(inside[h])),
        }
        for h in horizons
    }


def geometric_mean(numbers: list[float]) -> float:
    return math.exp(float(np.mean(np.log(numbers))))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--origins", type=int, default=10)
    parser.add_argument("--reference-train", type=int, default=1000)
    parser.add_argument("--series", help="only series whose name contains this")
    parser.add_argument(
        "--horizon", action="append", choices=sorted(HORIZONS), help="only this horizon"
    )
    args = parser.parse_args()
    horizons = args.horizon or list(HORIZONS)
    os.environ.setdefault("NIXTLA_ID_AS_COL", "1")
    folder = shared_path() / "data" / "nab" / "data" / "realKnownCause"
    started = time.perf_counter()
    table: dict[str, dict[str, list[float]]] = {
        h: {key: [] for key in (*MODELS, "coverage")} for h in horizons
    }
    names = []
    print(f"{'series':40s} {'horizon':>7s} " + " ".join(f"{m:>14s}" for m in MODELS) + " coverage")
    for path in sorted(folder.glob("*.csv")):
        if args.series and args.series not in path.stem:
            continue
        names.append(path.stem)
        result = evaluate(path, args.origins, args.reference_train, horizons)
        for horizon, scores in result.items():
            for key, value in scores.items():
                table[horizon][key].append(value)
            cells = " ".join(f"{scores[m]:14.3f}" for m in MODELS)
            print(f"{path.stem:40s} {horizon:>7s} {cells} {scores['coverage']:8.3f}", flush=True)
    for horizon, columns in table.items():
        geo = {m: geometric_mean(columns[m]) for m in MODELS}
        ratios = [a / b for a, b in zip(columns["nodus"], columns["seasonal-naive"], strict=True)]
        worst = max(range(len(ratios)), key=ratios.__getitem__)
        print(
            f"horizon {horizon}: geometric-mean MASE "
            + ", ".join(f"{m} {geo[m]:.3f}" for m in MODELS)
            + f"; nodus / seasonal naive {geometric_mean(ratios):.3f} "
            f"(worst {names[worst]} {ratios[worst]:.3f}); "
            f"95% interval coverage {np.mean(columns['coverage']):.3f} "
            f"(series range {min(columns['coverage']):.3f}-{max(columns['coverage']):.3f})"
        )
    print(f"elapsed {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
