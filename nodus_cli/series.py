"""Facts about a numeric series that detection and forecasting both need.

The typical step between points, which calendar period (hour, day, week) repeats,
and a scale to compute in: values near the float limits (1e300) overflow as soon
as they are squared, so callers divide by ``power_of_two_scale`` first, which
changes no digit of an ordinary series.
"""

from __future__ import annotations

import math
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


def power_of_two_scale(values: Any) -> float:
    """The power of two nearest below the largest finite magnitude (1.0 when there is none).

    Dividing by it puts the series in [-2, 2] exactly: a power of two only moves the
    exponent, so sums, medians and ratios of the scaled values are those of the
    originals, scaled, without overflow in a square or underflow in a tiny series.
    """
    import numpy as np

    magnitudes = np.abs(np.asarray(values, dtype=float))
    finite = magnitudes[np.isfinite(magnitudes)]
    peak = float(finite.max()) if finite.size else 0.0
    return math.ldexp(1.0, math.frexp(peak)[1] - 1) if peak > 0 else 1.0


def detect_season(times_s: Any, values: Any, *, min_cycles: float = 2.0) -> int:
    """Season length in points (0 = none) chosen by autocorrelation at calendar periods.

    Only periods seen at least ``min_cycles`` times in the data are tried; the one
    with the highest autocorrelation above ``MIN_AUTOCORRELATION`` wins.
    """
    import numpy as np

    values = np.asarray(values, dtype=float)
    values = values / power_of_two_scale(values)
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
