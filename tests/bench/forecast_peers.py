"""How far below seasonal naive any known univariate model gets at 3 h: the ceiling.

Run: python tests/bench/forecast_peers.py [--origins N] [--reference-train N] [--horizon 3h]

Same series, cut-offs, seasons and MASE as tests/bench/forecast.py. At every
cut-off this forecasts with every candidate nodus chooses among (what
``fit_forecast`` would choose, and each candidate on its own) and with
statsforecast's models, then reports per model the geometric mean over the
series of its mean MASE divided by seasonal naive's, and two hindsight oracles
over all of them: the best model per series (chosen knowing every cut-off's
actual values) and the best model per cut-off. An oracle above a bar is a
measurement that no choice among these models reaches it.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))

from nodus_cli.forecast.model import (  # noqa: E402
    BACKTESTS,
    BASELINE_SEASONS,
    COMBINATION,
    COMBINED,
    MAX_TRAIN,
    MIN_POINTS,
    SEASONAL_MEDIAN,
    SEASONAL_NAIVE,
    _beats_baseline,
    calendar_periods,
    candidate_forecasts,
    regular_grid,
    seasonal_naive,
)
from nodus_cli.series import detect_season, power_of_two_scale  # noqa: E402
from tests.bench.forecast import (  # noqa: E402
    HORIZONS,
    LONG_SEASON,
    geometric_mean,
    mase_scale,
    read_series,
)
from tests.conftest import shared_path  # noqa: E402

CALENDAR = {3600: "hour", 86400: "day", 7 * 86400: "week"}


def nodus_candidates(
    history: np.ndarray, steps: int, times_s: np.ndarray, season: int, step: float
) -> dict[str, np.ndarray]:
    """Every candidate ``fit_forecast`` weighs (as it builds them), and the one it chooses."""
    values = np.asarray(history, dtype=float)[-MAX_TRAIN:]
    unit = power_of_two_scale(values)
    values = values / unit
    n = len(values)
    holdout = max(1, min(steps, n // (2 * BACKTESTS)))
    origins = [o for o in (n - k * holdout for k in range(BACKTESTS, 0, -1)) if o >= MIN_POINTS]
    baseline = SEASONAL_MEDIAN if season and n >= BASELINE_SEASONS * season else SEASONAL_NAIVE
    periods = calendar_periods(times_s[-n:], n)
    forecasts = candidate_forecasts(values, season, steps, holdout, origins, baseline, periods)
    errors = {
        name: [runs[i] - values[o : o + holdout] for i, o in enumerate(origins)]
        for name, runs in forecasts.items()
    }
    mae = {name: float(np.mean(np.abs(e))) for name, e in errors.items() if e}
    members = sorted(mae, key=mae.__getitem__)[:COMBINED]
    if len(members) > 1:
        for table in (forecasts, errors):
            table[COMBINATION] = [
                np.mean(run, axis=0) for run in zip(*(table[k] for k in members), strict=True)
            ]
        mae[COMBINATION] = float(np.mean(np.abs(errors[COMBINATION])))
    chosen = baseline
    for name, error in mae.items():
        if error < mae.get(chosen, math.inf) and _beats_baseline(errors[name], errors[baseline]):
            chosen = name
    out = {"nodus": forecasts[chosen][-1] * unit}
    for name, runs in forecasts.items():
        # the period in a name is the detected season or a calendar one; name it so
        # the same candidate has one name on every series
        label = name
        if "+season-" in name:
            kind, period = name.split("+season-")
            seconds = round(int(period) * step)
            label = f"{kind}+{CALENDAR.get(seconds, f'{seconds}s')}"
        out[f"nodus:{label}"] = runs[-1] * unit
    return out


def peers(history: np.ndarray, season: int, steps: int, train: int, step: float) -> dict[str, Any]:
    """statsforecast's models, each given the detected season (and the day where it fits)."""
    from statsforecast.models import (
        MSTL,
        AutoARIMA,
        AutoCES,
        AutoETS,
        AutoTheta,
        HistoricAverage,
        Naive,
        RandomWalkWithDrift,
        SeasonalNaive,
        SeasonalWindowAverage,
        WindowAverage,
    )

    recent = history[-train:]
    length = season if season and len(recent) >= 2 * season else 1
    day = round(86400 / step)
    models: dict[str, Any] = {
        "Naive": Naive(),
        "HistoricAverage": HistoricAverage(),
        "WindowAverage(h)": WindowAverage(window_size=steps),
        "RandomWalkWithDrift": RandomWalkWithDrift(),
        "SeasonalNaive": SeasonalNaive(season_length=length),
        "AutoETS": AutoETS(season_length=length),
        "AutoARIMA": AutoARIMA(season_length=length),
        "AutoTheta": AutoTheta(season_length=length),
        "AutoCES": AutoCES(season_length=length),
    }
    if length > 1:
        models["SeasonalWindowAverage(3)"] = SeasonalWindowAverage(
            season_length=length, window_size=3
        )
        models["MSTL"] = MSTL(season_length=length)
    if length > LONG_SEASON:  # as tests/bench/forecast.py: the season taken out by STL
        models["AutoETS"] = MSTL(season_length=length, trend_forecaster=AutoETS(model="ZZN"))
        models["AutoARIMA"] = MSTL(season_length=length, trend_forecaster=AutoARIMA())
        models["AutoCES"] = MSTL(season_length=length, trend_forecaster=AutoCES())
    if day != length and day >= 4 and len(recent) >= 2 * day:
        models["SeasonalNaive(day)"] = SeasonalNaive(season_length=day)
        models["MSTL(day)"] = MSTL(season_length=day)
        models["MSTL(day)+AutoARIMA"] = MSTL(season_length=day, trend_forecaster=AutoARIMA())
        models["AutoTheta(day)"] = AutoTheta(season_length=day)
    out = {}
    for name, model in models.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                forecast = model.forecast(y=recent, h=steps)["mean"]
            except Exception as error:  # a model that fails is left out at that cut-off
                print(f"  {name} failed: {error}", file=sys.stderr)
                continue
        forecast = np.asarray(forecast, dtype=float)
        if np.all(np.isfinite(forecast)):  # one with too short a history gives NaN
            out[name] = forecast
    return out


def evaluate(path: Path, origins: int, train: int, horizon: str) -> list[dict[str, float]]:
    """Per cut-off: each model's MASE."""
    times, values = read_series(path)
    step, grid, regular = regular_grid(times, values)
    n = len(regular)
    steps = {name: max(1, round(seconds / step)) for name, seconds in HORIZONS.items()}
    count = steps[horizon]
    rows = []
    for origin in np.linspace(int(n * 0.7), n - max(steps.values()), origins).astype(int).tolist():
        history = regular[:origin]
        season = detect_season(grid[:origin][-MAX_TRAIN:], history[-MAX_TRAIN:])
        scale = mase_scale(history, season)
        actual = regular[origin : origin + count]
        forecasts = nodus_candidates(history, count, grid[:origin], season, step)
        forecasts.update(peers(history, season, count, train, step))
        forecasts["seasonal-naive"] = seasonal_naive(history, season, count)
        rows.append(
            {m: float(np.mean(np.abs(f[:count] - actual))) / scale for m, f in forecasts.items()}
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--origins", type=int, default=10)
    parser.add_argument("--reference-train", type=int, default=1000)
    parser.add_argument("--horizon", choices=sorted(HORIZONS), default="3h")
    parser.add_argument("--series", help="only series whose name contains this")
    args = parser.parse_args()
    os.environ.setdefault("NIXTLA_ID_AS_COL", "1")
    folder = shared_path() / "data" / "nab" / "data" / "realKnownCause"
    started = time.perf_counter()
    runs: dict[str, list[dict[str, float]]] = {}
    for path in sorted(folder.glob("*.csv")):
        if args.series and args.series not in path.stem:
            continue
        runs[path.stem] = evaluate(path, args.origins, args.reference_train, args.horizon)
        print(f"{path.stem}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    # a model counts on a series only where it forecast at every cut-off; a model
    # missing on a series (a candidate nodus did not offer there) is left out of the table
    mean: dict[str, dict[str, float]] = {}
    for series, rows in runs.items():
        common = set.intersection(*(set(r) for r in rows))
        mean[series] = {m: float(np.mean([r[m] for r in rows])) for m in common}
    models = sorted(set.union(*(set(m) for m in mean.values())))
    ratio = {series: {m: s[m] / s["seasonal-naive"] for m in s} for series, s in mean.items()}
    print(f"{'model':34s} {'series':>6s} {'geo MASE/SN':>11s}   per series")
    names = list(runs)
    lines = []
    for model in models:
        have = [s for s in names if model in ratio[s]]
        geo = geometric_mean([ratio[s][model] for s in have])
        cells = " ".join(
            f"{ratio[s][model]:6.3f}" if model in ratio[s] else "     -" for s in names
        )
        lines.append(
            (len(have) < len(names), geo, f"{model:34s} {len(have):6d} {geo:11.3f}   {cells}")
        )
    for _, _, line in sorted(lines):
        print(line)
    print("series: " + ", ".join(f"{i + 1} {s}" for i, s in enumerate(names)))
    by_series = {s: min(ratio[s], key=ratio[s].__getitem__) for s in names}
    print(
        f"per-series hindsight oracle (all models): "
        f"{geometric_mean([ratio[s][by_series[s]] for s in names]):.3f} ("
        + ", ".join(f"{s} {by_series[s]} {ratio[s][by_series[s]]:.3f}" for s in names)
        + ")"
    )
    for label, keep in (
        ("all models", lambda m: True),
        ("nodus candidates", lambda m: m.startswith("nodus:")),
        ("statsforecast", lambda m: not m.startswith("nodus")),
    ):
        series_best = [min(v for m, v in ratio[s].items() if keep(m)) for s in names]
        cut = []
        for s in names:
            rows = runs[s]
            best = [min(v for m, v in r.items() if keep(m)) for r in rows]
            cut.append(float(np.mean(best)) / mean[s]["seasonal-naive"])
        print(
            f"{label}: per-series oracle {geometric_mean(series_best):.3f}; "
            f"per-cut-off oracle {geometric_mean(cut):.3f}"
        )
    print(f"elapsed {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
