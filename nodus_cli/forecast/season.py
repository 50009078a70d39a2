"""Season detection from the data: which calendar period (hour, day, week) repeats."""

from __future__ import annotations

from typing import Any

CANDIDATE_PERIODS_S = (3600, 86400, 7 * 86400)
MIN_AUTOCORRELATION = 0.3
MIN_POINTS = 48


def median_step_seconds(times_s: Any) -> float:
    """The typical spacing of a series, robust to a few gaps."""
    import numpy as np

    if len(times_s) < 2:
        return 0.0
    return float(np.median(np.diff(times_s)))


def detect_season(times_s: Any, values: Any, *, min_cycles: float = 2.0) -> int:
    """Season length in points (0 = none) chosen by autocorrelation at calendar periods.

    Only periods seen at least ``min_cycles`` times in the data are tried; the one
    with the highest autocorrelation above ``MIN_AUTOCORRELATION`` wins.
    """
    import numpy as np

    values = np.asarray(values, dtype=float)
    n = len(values)
    step = median_step_seconds(times_s)
    if n < MIN_POINTS or step <= 0:
        return 0
    index = np.arange(n, dtype=float)
    slope, intercept = np.polyfit(index, values, 1)
    centred = values - (slope * index + intercept)  # a trend is not a season
    energy = float(centred @ centred)
    if not np.isfinite(energy) or energy <= 1e-12 * max(1.0, float(values @ values)):
        return 0

    def correlation(lag: int) -> float:
        return float(centred[lag:] @ centred[:-lag]) / energy

    best, best_period = MIN_AUTOCORRELATION, 0
    for period_s in CANDIDATE_PERIODS_S:
        lag = round(period_s / step)
        if lag < 4 or lag * min_cycles > n:
            continue
        # A cycle is in phase after a full period and out of phase after half of it.
        at_period = correlation(lag)
        if at_period > best and at_period - correlation(lag // 2) >= MIN_AUTOCORRELATION:
            best, best_period = at_period, lag
    return best_period
