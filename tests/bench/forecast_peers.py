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
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))

from nodus_cli.forecast.model import MAX_TRAIN, backtest, regular_grid, seasonal_naive  # noqa: E402
from nodus_cli.series import detect_season  # noqa: E402
from tests.bench.forecast import (  # noqa: E402
    HORIZONS,
    LONG_SEASON,
    cut_offs,
    geometric_mean,
    horizon_steps,
    mase_scale,
    read_series,
    reference_length,
    reference_models,
    statsforecast_mean,
)
from tests.conftest import shared_path  # noqa: E402

CALENDAR = {3600: "hour", 86400: "day", 7 * 86400: "week"}


def nodus_candidates(
    history: np.ndarray, steps: int, times_s: np.ndarray, season: int, step: float
) -> dict[str, np.ndarray]:
    """Every candidate ``fit_forecast`` weighs, and the one it chooses."""
    judged = backtest(history, steps, times_s=times_s, season=season)
    out = {"nodus": judged.forecasts[judged.chosen][-1] * judged.unit}
    for name, runs in judged.forecasts.items():
        # the period in a name is the detected season or a calendar one; name it so
        # the same candidate has one name on every series
        label = name
        if "+season-" in name:
            kind, period = name.split("+season-")
            seconds = round(int(period) * step)
            label = f"{kind}+{CALENDAR.get(seconds, f'{seconds}s')}"
        out[f"nodus:{label}"] = runs[-1] * judged.unit
    return out


def peers(history: np.ndarray, season: int, steps: int, train: int, step: float) -> dict[str, Any]:
    """statsforecast's models, each given the detected season (and the day where it fits)."""
    from statsforecast.models import (
        MSTL,
        AutoARIMA,
        AutoCES,
        AutoTheta,
        HistoricAverage,
        Naive,
        RandomWalkWithDrift,
        SeasonalNaive,
        SeasonalWindowAverage,
        WindowAverage,
    )

    recent = history[-train:]
    length = reference_length(recent, season)
    day = round(86400 / step)
    models: dict[str, Any] = {
        "Naive": Naive(),
        "HistoricAverage": HistoricAverage(),
        "WindowAverage(h)": WindowAverage(window_size=steps),
        "RandomWalkWithDrift": RandomWalkWithDrift(),
        "SeasonalNaive": SeasonalNaive(season_length=length),
        **reference_models(length),  # as tests/bench/forecast.py: MSTL for a long season
        "AutoTheta": AutoTheta(season_length=length),
        "AutoCES": AutoCES(season_length=length),
    }
    if length > 1:
        models["SeasonalWindowAverage(3)"] = SeasonalWindowAverage(
            season_length=length, window_size=3
        )
        models["MSTL"] = MSTL(season_length=length)
    if length > LONG_SEASON:
        models["AutoCES"] = MSTL(season_length=length, trend_forecaster=AutoCES())
    if day != length and day >= 4 and len(recent) >= 2 * day:
        models["SeasonalNaive(day)"] = SeasonalNaive(season_length=day)
        models["MSTL(day)"] = MSTL(season_length=day)
        models["MSTL(day)+AutoARIMA"] = MSTL(season_length=day, trend_forecaster=AutoARIMA())
        models["AutoTheta(day)"] = AutoTheta(season_length=day)
    out = {}
    for name, model in models.items():
        try:
            forecast = statsforecast_mean(model, recent, steps)
        except Exception as error:  # a model that fails is left out at that cut-off
            print(f"  {name} failed: {error}", file=sys.stderr)
            continue
        if np.all(np.isfinite(forecast)):  # one with too short a history gives NaN
            out[name] = forecast
    return out


def evaluate(path: Path, origins: int, train: int, horizon: str) -> list[dict[str, float]]:
    """Per cut-off: each model's MASE."""
    times, values = read_series(path)
    step, grid, regular = regular_grid(times, values)
    n = len(regular)
    count = horizon_steps(step)[horizon]
    rows = []
    for origin in cut_offs(n, step, origins):
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
