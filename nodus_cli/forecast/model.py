"""Forecast a series: river models against seasonal naive, intervals, threshold crossing.

The history is put on a regular grid (the median step; gaps interpolated), the
season is detected from the data, and river's HoltWinters and SNARIMAX are
trained on standardised values. Each candidate is judged on the most recent
stretch of history it did not see; seasonal naive wins unless a model is strictly
better there, and any forecast that leaves a sane range falls back to it too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from nodus_cli.anomaly.source import Source, read_points
from nodus_cli.errors import InputError
from nodus_cli.forecast.season import detect_season, median_step_seconds
from nodus_cli.store.db import Store

MAX_TRAIN = 4000  # points of history a model learns from
MIN_POINTS = 8
Z95 = 1.959964
DIVERGENCE_SPANS = 3.0  # a forecast further than this many history spans away is discarded
SEASONAL_NAIVE = "seasonal-naive"


@dataclass
class Crossing:
    expected: datetime
    earliest: datetime
    latest: datetime | None  # None: the lower bound does not cross within the horizon
    already: bool = False


@dataclass
class ForecastResult:
    series: str
    model: str
    season_points: int
    step_seconds: float
    horizon: timedelta
    history_times: list[datetime]
    history_values: list[float]
    times: list[datetime]
    mean: list[float]
    lower: list[float]
    upper: list[float]
    holdout_mae: dict[str, float]
    threshold: float | None = None
    direction: str = "above"
    crossing: Crossing | None = None
    anomalies: list[tuple[datetime, float]] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        return [
            {"time": t, "forecast": _round(m), "lower": _round(lo), "upper": _round(hi)}
            for t, m, lo, hi in zip(self.times, self.mean, self.lower, self.upper, strict=True)
        ]

    def summary(self) -> str:
        if self.threshold is None:
            return (
                f"{self.series}: {self.model} forecast for {_duration(self.horizon)} "
                f"({len(self.times)} steps)"
            )
        limit = f"{self.direction} {self.threshold:g}"
        if self.crossing is None:
            return f"{self.series}: not {limit} within {_duration(self.horizon)}"
        if self.crossing.already:
            return f"{self.series}: already {limit} at {self.crossing.expected.isoformat()}"
        latest = self.crossing.latest.isoformat() if self.crossing.latest else "after horizon"
        return (
            f"{self.series}: expected {limit} at {self.crossing.expected.isoformat()} "
            f"(between {self.crossing.earliest.isoformat()} and {latest})"
        )

    def document(self) -> dict[str, Any]:
        crossing = None
        if self.crossing is not None:
            crossing = {
                "expected": self.crossing.expected,
                "earliest": self.crossing.earliest,
                "latest": self.crossing.latest,
                "already": self.crossing.already,
            }
        return {
            "series": self.series,
            "model": self.model,
            "season_points": self.season_points,
            "step_seconds": self.step_seconds,
            "horizon_seconds": self.horizon.total_seconds(),
            "history_end": self.history_times[-1] if self.history_times else None,
            "holdout_mae": {k: _round(v) for k, v in sorted(self.holdout_mae.items())},
            "threshold": self.threshold,
            "direction": self.direction if self.threshold is not None else None,
            "crossing": crossing,
            "summary": self.summary(),
            "interval": 0.95,
            "forecast": self.rows(),
        }


def _round(value: float) -> float:
    return float(f"{value:.6g}")


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass
class Fitted:
    """A forecast on a regular grid: model name, mean and 1-sigma per step ahead."""

    model: str
    season: int
    mean: Any
    sigma: Any
    holdout_mae: dict[str, float]


def regular_grid(times_s: Any, values: Any) -> tuple[float, Any, Any]:
    """(step, grid times, values) with duplicates averaged and gaps interpolated."""
    import numpy as np

    step = median_step_seconds(times_s)
    if step <= 0:
        raise InputError("cannot forecast: the series needs at least two distinct times")
    slots = np.rint((times_s - times_s[0]) / step).astype(np.int64)
    size = int(slots[-1]) + 1
    sums = np.bincount(slots, weights=values, minlength=size)
    counts = np.bincount(slots, minlength=size)
    grid = times_s[0] + step * np.arange(size)
    present = counts > 0
    filled = np.interp(grid, grid[present], sums[present] / counts[present])
    return step, grid, filled


def _seasonal_naive(train: Any, season: int, steps: int) -> Any:
    import numpy as np

    period = season if season and len(train) >= season else 1
    last = train[-period:]
    return np.resize(last, steps) if period > 1 else np.full(steps, train[-1])


def _river_forecast(make: Callable[[], Any], train: Any, steps: int) -> Any:
    """Train a river forecaster on standardised values and forecast ``steps`` ahead."""
    import numpy as np

    centre = float(np.mean(train))
    spread = float(np.std(train))
    if not math.isfinite(spread) or spread <= 0:
        return np.full(steps, train[-1])
    model = make()
    for value in ((train - centre) / spread).tolist():
        model.learn_one(value)
    predicted = np.asarray(model.forecast(horizon=steps), dtype=float)
    return predicted * spread + centre


def _holt_winters(season: int) -> Callable[[], Any]:
    def make() -> Any:
        from river import time_series

        if season >= 2:
            return time_series.HoltWinters(
                alpha=0.3, beta=0.01, gamma=0.3, seasonality=season, multiplicative=False
            )
        return time_series.HoltWinters(alpha=0.3, beta=0.01)

    return make


def _snarimax(season: int) -> Callable[[], Any]:
    def make() -> Any:
        from river import linear_model, optim, preprocessing, time_series

        regressor = preprocessing.StandardScaler() | linear_model.LinearRegression(
            intercept_init=0.0, optimizer=optim.SGD(0.005), intercept_lr=0.005
        )
        return time_series.SNARIMAX(
            p=3,
            d=0,
            q=1,
            m=max(season, 1),
            sp=1 if season >= 2 else 0,
            sq=0,
            regressor=regressor,
        )

    return make


def _diverged(forecast: Any, train: Any) -> bool:
    import numpy as np

    if not np.all(np.isfinite(forecast)):
        return True
    low, high = float(np.min(train)), float(np.max(train))
    span = max(high - low, 1e-9 * max(1.0, abs(high)))
    margin = DIVERGENCE_SPANS * span
    return bool(np.any(forecast < low - margin) or np.any(forecast > high + margin))


def fit_forecast(
    values: Any, steps: int, *, times_s: Any = None, season: int | None = None
) -> Fitted:
    """Forecast ``steps`` points after regular ``values``, with the per-step 1-sigma."""
    import numpy as np

    values = np.asarray(values, dtype=float)[-MAX_TRAIN:]
    if season is None:
        season = detect_season(times_s[-len(values) :], values) if times_s is not None else 0
    candidates: dict[str, Callable[[Any, int], Any]] = {
        SEASONAL_NAIVE: lambda train, n: _seasonal_naive(train, season, n),
        "holt-winters": lambda train, n: _river_forecast(_holt_winters(season), train, n),
        "snarimax": lambda train, n: _river_forecast(_snarimax(season), train, n),
    }
    holdout = max(1, min(steps, len(values) // 4))
    train, actual = values[:-holdout], values[-holdout:]
    errors: dict[str, float] = {}
    for name, predict in candidates.items():
        if len(train) < MIN_POINTS or (
            name != SEASONAL_NAIVE and season >= 2 and len(train) < 2 * season
        ):
            continue
        guess = predict(train, holdout)
        if name != SEASONAL_NAIVE and _diverged(guess, train):
            continue
        errors[name] = float(np.mean(np.abs(guess - actual)))
    chosen = SEASONAL_NAIVE
    for name, error in errors.items():
        if error < errors.get(chosen, math.inf):
            chosen = name
    mean = candidates[chosen](values, steps)
    if chosen != SEASONAL_NAIVE and _diverged(mean, values):
        chosen, mean = SEASONAL_NAIVE, candidates[SEASONAL_NAIVE](values, steps)
    guess = candidates[chosen](train, holdout) if len(train) >= MIN_POINTS else actual
    rmse = float(np.sqrt(np.mean((guess - actual) ** 2)))
    growth = 2.0 * rmse**2 / (holdout + 1)  # error variance grows about linearly with h
    floor = 1e-9 * (1.0 + float(np.max(np.abs(values))))
    sigma = np.maximum(np.sqrt(growth * np.arange(1, steps + 1)), floor)
    return Fitted(chosen, season, mean, sigma, errors)


def find_crossing(
    times: list[datetime], mean: Any, lower: Any, upper: Any, threshold: float, direction: str
) -> Crossing | None:
    """When the forecast (and its interval) first crosses the threshold, if it does."""

    def first(series: Any) -> int | None:
        for index, value in enumerate(series):
            if (value >= threshold) if direction == "above" else (value <= threshold):
                return index
        return None

    expected = first(mean)
    if expected is None:
        return None
    early = first(upper if direction == "above" else lower)
    late = first(lower if direction == "above" else upper)
    return Crossing(
        times[expected],
        times[early if early is not None else expected],
        times[late] if late is not None else None,
    )


def forecast_source(
    store: Store,
    source: Source,
    *,
    horizon: timedelta,
    until: datetime | None = None,
    threshold: float | None = None,
    direction: str = "above",
) -> ForecastResult:
    """Read a series up to ``until`` and forecast ``horizon`` past its last point."""
    import numpy as np

    from nodus_cli.anomaly.detect import to_datetime

    times_us, values = read_points(store, source, until=until)
    if len(values) < MIN_POINTS:
        raise InputError(
            f"cannot forecast {source.key}: {len(values)} points, need at least {MIN_POINTS}"
        )
    times_s = times_us / 1e6
    step, grid, regular = regular_grid(times_s, values)
    steps = max(1, math.ceil(horizon.total_seconds() / step))
    fitted = fit_forecast(regular, steps, times_s=grid)
    future = [to_datetime(round((grid[-1] + step * (i + 1)) * 1e6)) for i in range(steps)]
    mean = fitted.mean
    lower = mean - Z95 * fitted.sigma
    upper = mean + Z95 * fitted.sigma
    keep = max(3 * steps, 2 * fitted.season, 48)
    history_times = [to_datetime(int(t)) for t in times_us[-keep:].tolist()]
    history_values = [float(v) for v in values[-keep:].tolist()]
    crossing = None
    if threshold is not None:
        last = float(values[-1])
        breached = last >= threshold if direction == "above" else last <= threshold
        if breached:
            crossing = Crossing(history_times[-1], history_times[-1], history_times[-1], True)
        else:
            crossing = find_crossing(future, mean, lower, upper, threshold, direction)
    anomalies = store.con.execute(
        "SELECT epoch_us(time), any_value(value) FROM anomalies WHERE series = ? "
        "AND time >= ? AND time <= ? GROUP BY time ORDER BY time",
        [source.key, history_times[0], history_times[-1]],
    ).fetchall()
    return ForecastResult(
        series=source.key,
        model=fitted.model,
        season_points=fitted.season,
        step_seconds=step,
        horizon=horizon,
        history_times=history_times,
        history_values=history_values,
        times=future,
        mean=[float(v) for v in np.asarray(mean).tolist()],
        lower=[float(v) for v in lower.tolist()],
        upper=[float(v) for v in upper.tolist()],
        holdout_mae=fitted.holdout_mae,
        threshold=threshold,
        direction=direction,
        crossing=crossing,
        anomalies=[(to_datetime(int(t)), float(v)) for t, v in anomalies],
    )
