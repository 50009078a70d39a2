"""Forecast a series: river and autoregressive models against a seasonal baseline.

The history is put on a regular grid (the median step; gaps interpolated), the
season is detected from the data, and river's HoltWinters and SNARIMAX are
trained on standardised values; autoregressions (on the levels and on the
differences) forecast what a season profile leaves, for the detected season and
each calendar period the history holds three of, and the three candidates that
missed least are also combined. Each candidate is judged on the most recent
stretches of history it did not see (backtests). The baseline is seasonal naive
(the median of the last three seasons, phase by phase, once there are three, so a
one-off spike is not repeated); it is kept unless a model beats it there
stretch by stretch (a sign test, not a mean one spike can carry), and a model
whose forecast leaves a sane range is dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo
from typing import Any

from nodus_cli.anomaly.source import Source, one_label_set, read_points
from nodus_cli.errors import InputError
from nodus_cli.series import (
    CANDIDATE_PERIODS_S,
    detect_season,
    median_step_seconds,
    power_of_two_scale,
)
from nodus_cli.store.db import Store

MAX_TRAIN = 4000  # points of history a model learns from
MIN_POINTS = 8
BACKTESTS = 6  # stretches of recent history each candidate is judged on
SWITCH_P = 0.05  # a model replaces the baseline only when a sign test says it is better
Z95 = 1.959964
DIVERGENCE_SPANS = 3.0  # a forecast further than this many history spans away is discarded
SEASONAL_NAIVE = "seasonal-naive"
LINEAR_TREND = "linear-trend"  # offered only when the recent history is nearly a line
TREND_R2 = 0.9
SEASONAL_MEDIAN = "seasonal-median"  # seasonal naive from the median of the last seasons
BASELINE_SEASONS = 3  # one odd season (a spike, an outage) is not repeated
SEASONAL_AR = "seasonal-ar"  # the baseline plus its last error, decaying as an AR(1)
COMBINATION = "combination"  # the mean of the candidates that missed least in the backtests
COMBINED = 3  # how many (leave-one-series-out on the bench chose 3 of 1, 2, 3, 5)
AR_ORDER = 5  # the highest autoregressive order tried (AutoARIMA's own default)


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
    anomaly_method: str | None = None  # the detector whose anomalies these are
    window: tuple[datetime, datetime] | None = None  # first and last point read
    points: int = 0  # points read in that window
    host: str | None = None  # the series' host (or instance) label

    def localized(self, zone: tzinfo) -> ForecastResult:
        """The same forecast with every time shown in ``zone``."""

        def shift(times: list[datetime]) -> list[datetime]:
            return [t.astimezone(zone) for t in times]

        crossing = self.crossing
        if crossing is not None:
            crossing = replace(
                crossing,
                expected=crossing.expected.astimezone(zone),
                earliest=crossing.earliest.astimezone(zone),
                latest=crossing.latest.astimezone(zone) if crossing.latest else None,
            )
        return replace(
            self,
            history_times=shift(self.history_times),
            times=shift(self.times),
            crossing=crossing,
            anomalies=[(t.astimezone(zone), v) for t, v in self.anomalies],
            window=(
                (self.window[0].astimezone(zone), self.window[1].astimezone(zone))
                if self.window
                else None
            ),
        )

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
            "window": (
                {"start": self.window[0], "end": self.window[1], "points": self.points}
                if self.window
                else None
            ),
            "host": self.host,
            "anomaly_method": self.anomaly_method,
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


def seasonal_naive(train: Any, season: int, steps: int, seasons: int = 1) -> Any:
    """Repeat the last season (the median of the last ``seasons`` seasons, phase by phase).

    With no season this is the naive forecast: the last value, held.
    """
    import numpy as np

    if not season or len(train) < season:
        return np.full(steps, train[-1])
    count = min(seasons, len(train) // season)
    last = np.median(train[len(train) - count * season :].reshape(count, season), axis=0)
    return np.resize(last, steps)


def seasonal_ar(train: Any, season: int, steps: int) -> Any:
    """The seasonal baseline corrected by its current error, which fades out as an AR(1).

    The baseline (``seasonal_naive`` over ``BASELINE_SEASONS``) misses by an amount
    that persists from one point to the next (a busier day, a level shift); the
    lag-1 autocorrelation of its in-sample errors, estimated on the history, says
    how fast that miss fades. Without a season the baseline is the last value and
    the errors are the steps, which gives a damped trend.
    """
    import numpy as np

    train = np.asarray(train, dtype=float)
    seasons = min(BASELINE_SEASONS, len(train) // season) if season else 0
    if seasons:
        lags = [
            train[season * (seasons - k) : len(train) - season * k] for k in range(1, seasons + 1)
        ]
        errors = train[season * seasons :] - np.median(np.stack(lags), axis=0)
    else:
        errors = np.diff(train)
    errors = errors[-MAX_TRAIN:]
    base = seasonal_naive(train, season, steps, BASELINE_SEASONS)
    if len(errors) < MIN_POINTS or not np.any(errors):
        return base
    centred = errors - errors.mean()
    energy = float(centred @ centred)
    phi = float(centred[1:] @ centred[:-1]) / energy if energy > 0 else 0.0
    decay = np.clip(phi, 0.0, 0.99) ** np.arange(1, steps + 1)
    if seasons:
        return base + errors[-1] * decay
    return base + errors[-1] * np.cumsum(decay)


def season_profile(train: Any, season: int) -> Any:
    """The repeating shape of ``train``: each phase's mean once every season's own mean is off.

    Every full season in ``train`` counts (a mean over many is steadier than the
    baseline's median of three), and taking out each season's own mean first
    leaves a shape without the level, which the model of the remainder carries.
    Phase ``j`` is the ``j``-th point of a season that ends where ``train`` does.
    """
    import numpy as np

    count = len(train) // season
    seasons = np.asarray(train[len(train) - count * season :], dtype=float).reshape(count, season)
    return np.mean(seasons - seasons.mean(axis=1, keepdims=True), axis=0)


def autoregression(train: Any, steps: int, differenced: bool) -> Any:
    """An AR(p) forecast fitted by least squares, p up to ``AR_ORDER`` chosen by AIC.

    On the levels (with a mean) the forecast returns to the series' mean, as a
    latency between spikes does; on the differences (ARIMA(p, 1, 0), no drift)
    it settles at a level set by the last points, as a wandering temperature
    does. Which fits a series is for the backtests to say.
    """
    import numpy as np
    from scipy.signal import lfilter, lfiltic

    series = np.diff(train) if differenced else np.asarray(train, dtype=float)
    n = len(series)
    if n < 4 * AR_ORDER or np.ptp(series) == 0:
        return np.full(steps, train[-1], dtype=float)
    target = series[AR_ORDER:]
    lags = [series[AR_ORDER - k : n - k] for k in range(1, AR_ORDER + 1)]
    design = np.column_stack(lags if differenced else [np.ones(len(target)), *lags])
    gram, moment = design.T @ design, design.T @ target  # one pass over the data for every order
    first = 0 if differenced else 1  # the mean's column is in every fit
    best, coef = math.inf, np.zeros(first)
    for width in range(first, first + AR_ORDER + 1):
        fit = np.linalg.lstsq(gram[:width, :width], moment[:width], rcond=None)[0]
        residual = target - design[:, :width] @ fit
        aic = len(target) * math.log(max(float(residual @ residual), 1e-300)) + 2 * width
        if aic < best:
            best, coef = aic, fit
    constant = float(coef[0]) if first else 0.0
    # The recursion y[t] = c + w1 y[t-1] + ... is a filter run from the last points.
    feedback = np.concatenate([[1.0], -coef[first:]])
    state = lfiltic([1.0], feedback, series[::-1][: len(feedback) - 1])
    out = lfilter([1.0], feedback, np.full(steps, constant), zi=state)[0]
    return train[-1] + np.cumsum(out) if differenced else out


def decomposed(train: Any, season: int, steps: int, differenced: bool) -> Any:
    """``season_profile`` repeated plus an ``autoregression`` of what the profile leaves.

    statsforecast's MSTL does the same with STL: the season is taken out, a
    model without one forecasts the rest, and the season is put back. Without
    two seasons of history (or a season) the autoregression sees the values.
    """
    import numpy as np

    train = np.asarray(train, dtype=float)
    if not season or len(train) < 2 * season:
        return autoregression(train, steps, differenced)
    profile = season_profile(train, season)
    phase = (np.arange(len(train)) - len(train)) % season
    rest = autoregression(train - profile[phase], steps, differenced)
    return rest + profile[np.arange(steps) % season]


def _river_forecasts(make: Callable[[], Any], values: Any, origins: list[int], steps: int) -> Any:
    """Forecasts of ``steps`` points from each origin (the last one is ``len(values)``).

    One model learns the standardised values in a single pass and forecasts at
    every origin on its way (forecasting does not change a river model).
    """
    import numpy as np

    first = values[: origins[0]]
    centre = float(np.mean(first))
    spread = float(np.std(first))
    if not math.isfinite(spread) or spread <= 0:
        spread = 1.0
    scaled = ((values - centre) / spread).tolist()
    model = make()
    forecasts = []
    learnt = 0
    for origin in origins:
        for value in scaled[learnt:origin]:
            model.learn_one(value)
        learnt = origin
        predicted = np.asarray(model.forecast(horizon=steps), dtype=float)
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is checked later
            forecasts.append(predicted * spread + centre)
    return forecasts


def linear_trend(train: Any, steps: int, window: int) -> Any:
    """Extend the least-squares line through the last ``window`` points (disk filling up)."""
    import numpy as np

    recent = train[-window:]
    if len(recent) < 2:
        return np.full(steps, train[-1])
    index = np.arange(len(recent), dtype=float)
    slope, intercept = np.polyfit(index, recent, 1)
    return intercept + slope * (len(recent) - 1 + np.arange(1, steps + 1))


def _trend_explains(recent: Any) -> bool:
    """Whether a straight line explains most of the recent variation (R^2 >= TREND_R2)."""
    import numpy as np

    if len(recent) < MIN_POINTS or np.ptp(recent) == 0:
        return False
    index = np.arange(len(recent), dtype=float)
    correlation = np.corrcoef(index, recent)[0, 1]
    return bool(correlation**2 >= TREND_R2)


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


def _any_diverged(runs: list[Any], values: Any, origins: list[int]) -> bool:
    """Whether a forecast from any origin (then from the end) left the sane range."""
    ends = [*origins, len(values)]
    return any(_diverged(run, values[:end]) for run, end in zip(runs, ends, strict=True))


def _beats_baseline(errors: list[Any], baseline: list[Any]) -> bool:
    """Whether a candidate's backtest misses are smaller than the baseline's stretch by stretch.

    A mean won on one stretch with a spike or a level shift says little about the
    next ordinary one, and ties (a flat series the baseline repeats exactly) do
    not count for the model. The one-sided sign test (Diebold & Mariano's) over
    the stretches with a winner must reject "no better" at ``SWITCH_P``: with six
    stretches, five wins of five or six of six.
    """
    import numpy as np

    mine = [float(np.mean(np.abs(e))) for e in errors]
    theirs = [float(np.mean(np.abs(e))) for e in baseline]
    wins = sum(a < b for a, b in zip(mine, theirs, strict=True))
    trials = wins + sum(a > b for a, b in zip(mine, theirs, strict=True))
    chance = sum(math.comb(trials, k) for k in range(wins, trials + 1)) / 2**trials
    return trials > 0 and chance <= SWITCH_P


def step_variance(errors: list[Any], steps: int) -> Any:
    """The variance of a miss 1 .. ``steps`` points ahead, ``a + b h`` fitted to the backtests.

    A model at the right level of a noisy series misses by as much at the first
    step as at the last (``b = 0``); a random walk's misses grow with the step
    (``a = 0``); most series are in between. The mean squared miss of each step
    over the backtest stretches is fitted by least squares with ``a, b >= 0`` and
    extended past the stretch length.
    """
    import numpy as np

    if not errors:
        return np.zeros(steps)
    squared = np.mean(np.square(np.stack(errors)), axis=0)
    h = np.arange(1, len(squared) + 1, dtype=float)
    if len(squared) > 1:
        slope = float(np.cov(h, squared, bias=True)[0, 1] / np.var(h))
        level = float(np.mean(squared)) - slope * float(np.mean(h))
    else:
        slope, level = float(squared[0]), 0.0
    if slope < 0:
        slope, level = 0.0, float(np.mean(squared))
    elif level < 0:
        slope, level = float(h @ squared / (h @ h)), 0.0
    return level + slope * np.arange(1, steps + 1)


def candidate_forecasts(
    values: Any,
    season: int,
    steps: int,
    holdout: int,
    origins: list[int],
    baseline: str,
    periods: list[int],
) -> dict[str, list[Any]]:
    """Each candidate's ``holdout`` points from every origin, then ``steps`` from the end."""
    import numpy as np

    n = len(values)
    forecasts: dict[str, list[Any]] = {
        baseline: [seasonal_naive(values[:o], season, holdout, BASELINE_SEASONS) for o in origins]
        + [seasonal_naive(values, season, steps, BASELINE_SEASONS)]
    }
    forecasts[SEASONAL_AR] = [seasonal_ar(values[:o], season, holdout) for o in origins] + [
        seasonal_ar(values, season, steps)
    ]
    for period in sorted({season, *periods}):
        for differenced in (False, True):
            runs = [decomposed(values[:o], period, holdout, differenced) for o in origins]
            runs.append(decomposed(values, period, steps, differenced))
            if not _any_diverged(runs, values, origins):
                kind = "ar-differenced" if differenced else "ar"
                forecasts[kind + (f"+season-{period}" if period else "")] = runs
    trend_window = max(4 * holdout, 2 * season, MIN_POINTS)
    if _trend_explains(values[-trend_window:]):
        forecasts[LINEAR_TREND] = [
            linear_trend(values[:o], holdout, trend_window) for o in origins
        ] + [linear_trend(values, steps, trend_window)]
    if origins and np.ptp(values) > 0:
        # Seasonal models need two seasons before the first backtest; else go without.
        model_season = season if origins[0] >= 2 * season else 0
        for name, make in (
            ("holt-winters", _holt_winters(model_season)),
            ("snarimax", _snarimax(model_season)),
        ):
            runs = _river_forecasts(make, values, [*origins, n], max(steps, holdout))
            runs = [r[:holdout] for r in runs[:-1]] + [runs[-1][:steps]]
            if not _any_diverged(runs, values, origins):
                forecasts[name] = runs
    return forecasts


def calendar_periods(times_s: Any, n: int) -> list[int]:
    """Calendar periods (hour, day, week) in points that the history holds ``BASELINE_SEASONS`` of.

    ``detect_season`` keeps one period and only one that stands out; a daily shape
    under a slow wander, or a week under a day, can still forecast better, and
    the backtests are there to say so.
    """
    step = median_step_seconds(times_s)
    lengths = [round(p / step) for p in CANDIDATE_PERIODS_S] if step > 0 else []
    return [length for length in lengths if length >= 4 and BASELINE_SEASONS * length <= n]


@dataclass
class Backtest:
    """Every candidate's runs and backtest misses on one history, and the one chosen.

    ``values`` is the history learnt from divided by ``unit``, and so is everything
    else here; ``forecasts`` holds per candidate a run from every backtest origin,
    then the forecast from the end.
    """

    values: Any
    unit: float
    season: int
    forecasts: dict[str, list[Any]]
    errors: dict[str, list[Any]]
    mae: dict[str, float]
    chosen: str


def backtest(
    values: Any, steps: int, *, times_s: Any = None, season: int | None = None
) -> Backtest:
    """Judge every candidate on ``BACKTESTS`` stretches of ``steps`` points at the end.

    Each stretch is forecast from the points before it; the seasonal baseline is
    kept unless a model beats it consistently (``_beats_baseline``), then the
    lowest mean absolute error wins. The combination's members are the
    ``COMBINED`` best on those same backtests, so its own backtest flatters it a
    little; the sign test against the baseline is what keeps it honest.
    """
    import numpy as np

    values = np.asarray(values, dtype=float)[-MAX_TRAIN:]
    unit = power_of_two_scale(values)  # squares of 1e300 overflow; the forecast is scaled back
    values = values / unit
    n = len(values)
    if season is None:
        season = detect_season(times_s[-n:], values) if times_s is not None else 0
    holdout = max(1, min(steps, n // (2 * BACKTESTS)))
    origins = [n - k * holdout for k in range(BACKTESTS, 0, -1)]
    origins = [o for o in origins if o >= MIN_POINTS]
    baseline = SEASONAL_MEDIAN if season and n >= BASELINE_SEASONS * season else SEASONAL_NAIVE
    periods = calendar_periods(times_s[-n:], n) if times_s is not None else []
    forecasts = candidate_forecasts(values, season, steps, holdout, origins, baseline, periods)
    errors: dict[str, list[Any]] = {
        name: [runs[i] - values[o : o + holdout] for i, o in enumerate(origins)]
        for name, runs in forecasts.items()
    }
    mae = {name: float(np.mean(np.abs(e))) for name, e in errors.items() if e}
    members = sorted(mae, key=mae.__getitem__)[:COMBINED]
    if len(members) > 1:
        # The mean of a few models misses less than its members on most series (M3, M4).
        for table in (forecasts, errors):
            runs = zip(*(table[k] for k in members), strict=True)
            table[COMBINATION] = [np.mean(run, axis=0) for run in runs]
        mae[COMBINATION] = float(np.mean(np.abs(errors[COMBINATION])))
    chosen = baseline
    for name, error in mae.items():
        if error < mae.get(chosen, math.inf) and _beats_baseline(errors[name], errors[baseline]):
            chosen = name
    return Backtest(values, unit, season, forecasts, errors, mae, chosen)


def fit_forecast(
    values: Any, steps: int, *, times_s: Any = None, season: int | None = None
) -> Fitted:
    """Forecast ``steps`` points after regular ``values``, with the per-step 1-sigma:
    the candidate ``backtest`` chooses, its interval from its own backtest misses."""
    import numpy as np

    judged = backtest(values, steps, times_s=times_s, season=season)
    unit = judged.unit
    mean = judged.forecasts[judged.chosen][-1]
    variance = step_variance(judged.errors[judged.chosen], steps)
    floor = 1e-9 * (1.0 / unit + float(np.max(np.abs(judged.values))))
    sigma = np.maximum(np.sqrt(variance), floor)
    mae = {k: v * unit for k, v in judged.mae.items()}
    return Fitted(judged.chosen, judged.season, mean * unit, sigma * unit, mae)


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

    if source.sql is None:
        source = one_label_set(store, source)
    times_us, values = read_points(store, source, until=until)
    if len(values) < MIN_POINTS:
        raise InputError(
            f"cannot forecast {source.key}: {len(values)} points, need at least {MIN_POINTS}"
        )
    times_s = times_us / 1e6
    recent = slice(-2 * MAX_TRAIN, None)  # older history is never learnt from
    step, grid, regular = regular_grid(times_s[recent], values[recent])
    steps = max(1, math.ceil(horizon.total_seconds() / step))
    fitted = fit_forecast(regular, steps, times_s=grid)
    future = [to_datetime(round((grid[-1] + step * (i + 1)) * 1e6)) for i in range(steps)]
    mean, lower, upper = clip_to_range(
        values, fitted.mean, fitted.mean - Z95 * fitted.sigma, fitted.mean + Z95 * fitted.sigma
    )
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
    method = method_in_use(store, source.key)
    anomalies = store.con.execute(
        "SELECT epoch_us(time), any_value(value) FROM anomalies WHERE series = ? "
        "AND method = ? AND time >= ? AND time <= ? GROUP BY time ORDER BY time",
        [source.key, method, history_times[0], history_times[-1]],
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
        anomaly_method=method,
        window=(to_datetime(int(times_us[0])), to_datetime(int(times_us[-1]))),
        points=len(values),
        host=_host_label(source),
    )


def clip_to_range(history: Any, mean: Any, lower: Any, upper: Any) -> tuple[Any, Any, Any]:
    """Keep the forecast where the series can go: never below zero if it never was.

    A count, a size or a utilisation that was never negative in its history does
    not become negative in the future; a symmetric interval would say it might.
    """
    import numpy as np

    if len(history) and float(np.min(history)) >= 0:
        mean, lower, upper = (np.maximum(np.asarray(a, float), 0.0) for a in (mean, lower, upper))
    return mean, lower, upper


def interval_coverage(actual: Any, lower: Any, upper: Any) -> float:
    """The share of actual values inside their interval (how honest a 95% interval is)."""
    import numpy as np

    actual = np.asarray(actual, dtype=float)
    if not len(actual):
        return math.nan
    inside = (actual >= np.asarray(lower, float)) & (actual <= np.asarray(upper, float))
    return float(np.mean(inside))


def method_in_use(store: Store, series: str) -> str | None:
    """The detector last run on ``series`` (its anomalies are the ones to show)."""
    row = store.con.execute(
        "SELECT method FROM detector_state WHERE series = ? ORDER BY updated DESC, method LIMIT 1",
        [series],
    ).fetchone()
    return str(row[0]) if row else None


def _host_label(source: Source) -> str | None:
    labels = dict(source.labels)  # a resolved source carries its whole label set
    return labels.get("host") or labels.get("instance")
