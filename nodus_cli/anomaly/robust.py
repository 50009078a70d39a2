"""Vectorised robust detectors whose whole state is a bounded window of past points.

Every statistic is an order statistic (median, percentile, maximum) over a window
of past points or an element-wise expression of them, so the score of a point is
a pure function of the points before it. Keeping the last ``BUFFER`` points as
state therefore makes an incremental run give bit-for-bit the scores of one long
run, and numpy/scipy filters keep it fast (well over 200,000 points per second).

Features, each a robust z-score (deviation over 1.4826 * MAD of recent deviations):

* ``local``: the value against the median of the last few points (spikes, dips);
* ``seasonal``: the value against the recent level plus the usual offset at this
  phase of the season (median over the last three seasons) -- once a season is
  learnt (missing peaks, shifted cycles);
* ``shift``, ``slide`` and ``drift``: the median of the last few (6), some (15)
  or several (40) points against the longer-run median, or, with a season,
  against the same phase in the last seasons (level shifts, slow drifts).
  Windows keep moving, so after a shift the detector learns the new level
  instead of alarming for ever;
* ``spread``: how far points stray from the level lately against how far they
  usually do (a series turning erratic, or suddenly flat);
* ``record``: how far the value leaves the range of the last RECORD_WINDOW points
  (a new high or low: a spike taller than any before, a fall to a new floor);
* ``hst``: the sparseness of the last few values under half-space trees (hst.py).

Each feature's strength is then turned into a tail probability against its own
history by the one calibration every method shares (calibrate.py), and the
features are combined by a rule fixed up front (the two or three most
surprising must agree: calibrate.combine).
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nodus_cli.anomaly import calibrate, hst

LEVEL_WINDOW = 8
SCALE_WINDOW = 400
SHIFT_WINDOW = 6
SPREAD_WINDOW = 60
DRIFT_WINDOW = 40
SLIDE_WINDOW = 15  # between shift and drift (their geometric mean): cross-validated
# Points in the recent median of each level-shift feature.
RECENT_WINDOWS = {"shift": SHIFT_WINDOW, "slide": SLIDE_WINDOW, "drift": DRIFT_WINDOW}
RECORD_WINDOW = 1000  # points whose range a new record leaves
SEASON_WARMUP = 600  # points seen before the season is learnt (once, from these points)
MAX_SEASON = SEASON_WARMUP // 2
SEASONS_REMEMBERED = 3
PHASE_WINDOW = 5
SPAN_FLOOR = 0.1  # a deviation is never measured against less than 10% of the 5-95% span
MAX_Z = 1e12
# Past points whose strengths are exact: every window of every feature is full.
STRENGTH_HISTORY = max(
    2 * SCALE_WINDOW
    + SPREAD_WINDOW
    + SEASONS_REMEMBERED * MAX_SEASON
    + PHASE_WINDOW
    + 2 * LEVEL_WINDOW,
    RECORD_WINDOW + SCALE_WINDOW,
    hst.HISTORY,
)
# Enough past points that every window of every new point is full and identical to
# the one a single long run would have used, calibration included.
BUFFER = STRENGTH_HISTORY + calibrate.DEFAULT.history + 64

FEATURE_NAMES = ("local", "seasonal", "shift", "spread", "drift", "slide", "record", "hst")
ROBUST_FEATURES = ("local",)
HST_FEATURES = ("hst",)
AUTO_FEATURES = FEATURE_NAMES[:-1]  # without hst: no CV gain beyond noise (tests/bench/nab.py)


@dataclass
class WindowState:
    """What a robust detector remembers: the last points and the season once learnt."""

    seen: int = 0
    season: int | None = None
    times_us: Any = None  # numpy int64, epoch microseconds
    values: Any = None  # numpy float64

    def to_bytes(self) -> bytes:
        import numpy as np

        header = json.dumps({"seen": self.seen, "season": self.season}).encode()
        buffer = io.BytesIO()
        np.savez(buffer, times=self._times(), values=self._values())
        return len(header).to_bytes(4, "big") + header + buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> WindowState:
        import numpy as np

        size = int.from_bytes(data[:4], "big")
        header = json.loads(data[4 : 4 + size])
        arrays = np.load(io.BytesIO(data[4 + size :]))
        return cls(header["seen"], header["season"], arrays["times"], arrays["values"])

    def _times(self) -> Any:
        import numpy as np

        return self.times_us if self.times_us is not None else np.zeros(0, dtype=np.int64)

    def _values(self) -> Any:
        import numpy as np

        return self.values if self.values is not None else np.zeros(0, dtype=float)


@dataclass
class Scores:
    """Per new point: calibrated score in [0, 1], whether it raises an alarm, and why."""

    score: Any
    log10_tail: Any  # log10 of the tail probability behind the score
    anomaly: Any  # bool: reaches the threshold, first in its incident
    z: Any  # the winning feature's signed strength
    expected: Any  # what that feature expected the value to be
    feature: Any  # index into FEATURE_NAMES


def _causal_percentile(x: Any, window: int, percentile: float, at_origin: bool = True) -> Any:
    """y[i] = percentile of x[i-window:i]; y[0] = x[0].

    At the origin of a series the first windows hold the fewer points there are;
    elsewhere those first positions are left approximate (callers never use them).
    """
    import bisect

    import numpy as np
    from scipy import ndimage

    n = len(x)
    out = np.zeros(n)
    if n == 0:
        return out
    if n > window:
        filtered = ndimage.percentile_filter(x, percentile, size=window, mode="nearest")
        out[window:] = filtered[window // 2 : n - window + window // 2]
    if at_origin:
        seen: list[float] = []
        for i, value in enumerate(x[: min(window, n - 1)].tolist(), start=1):
            bisect.insort(seen, value)
            out[i] = seen[int(np.floor((i - 1) * percentile / 100.0 + 1e-9))]
    out[0] = x[0]
    return out


def _causal_extremes(x: Any, window: int) -> tuple[Any, Any]:
    """(max, min) of x[i-window:i] per point; x[0] itself at the first point."""
    import numpy as np
    from scipy import ndimage

    origin = (window - 1) // 2
    previous = np.concatenate([x[:1], x[:-1]])
    highest = ndimage.maximum_filter1d(previous, window, origin=origin, mode="nearest")
    lowest = ndimage.minimum_filter1d(previous, window, origin=origin, mode="nearest")
    return highest, lowest


def _remembering(rank: Callable[..., Any]) -> Callable[..., Any]:
    """``rank`` computing each (array, window, percentile) once: the features share
    the 5-95% span and the long-run median of the values (half the filters of auto).

    The cache holds each input array, so no other array can take its id meanwhile.
    """
    cache: dict[tuple[int, int, float], tuple[Any, Any]] = {}

    def remembered(x: Any, window: int, percentile: float) -> Any:
        key = (id(x), window, percentile)
        if key not in cache:
            cache[key] = (x, rank(x, window, percentile))
        return cache[key][1]

    return remembered


def _robust_z(rank: Callable[..., Any], deviation: Any, values: Any, level: Any) -> Any:
    import numpy as np

    scale = 1.4826 * rank(np.abs(deviation), SCALE_WINDOW, 50)
    span = rank(values, SCALE_WINDOW, 95) - rank(values, SCALE_WINDOW, 5)
    floor = np.maximum(SPAN_FLOOR * span, 1e-9 * (1.0 + np.abs(level)))
    with np.errstate(over="ignore"):  # a deviation of 1e300 over a small scale: MAX_Z
        return np.clip(deviation / np.maximum(scale, floor), -MAX_Z, MAX_Z)


def _seasonal_expectation(
    rank: Callable[..., Any], x: Any, level: Any, season: int, start: int
) -> Any:
    """The recent level plus the typical offset at this phase over the last seasons.

    Each past offset is a median over a few neighbouring points and the seasons are
    combined by their median, so one spike or shift does not echo a season later.
    """
    import numpy as np

    offsets = rank(np.concatenate([x[1:] - level[1:], [0.0]]), PHASE_WINDOW, 50)
    half = PHASE_WINDOW // 2
    lagged = np.vstack(
        [np.roll(offsets, k * season - half) for k in range(1, SEASONS_REMEMBERED + 1)]
    )
    expected = level + np.median(lagged, axis=0)
    absolute = np.arange(start, start + len(x))
    usable = (absolute >= SEASON_WARMUP) & (
        np.arange(len(x)) >= SEASONS_REMEMBERED * season + PHASE_WINDOW
    )
    return np.where(usable, expected, level)


def _same_phase_before(recent: Any, fallback: Any, season: int, start: int) -> Any:
    """The median of ``recent`` at this phase over the last seasons (season-aware shift)."""
    import numpy as np

    lagged = np.vstack([np.roll(recent, k * season) for k in range(1, SEASONS_REMEMBERED + 1)])
    absolute = np.arange(start, start + len(recent))
    usable = (absolute >= SEASON_WARMUP) & (
        np.arange(len(recent)) >= SEASONS_REMEMBERED * season + SHIFT_WINDOW
    )
    return np.where(usable, np.median(lagged, axis=0), fallback)


def score_window(
    state: WindowState,
    times_us: Any,
    values: Any,
    features: tuple[str, ...] = AUTO_FEATURES,
) -> tuple[Scores, WindowState]:
    """Score new points (in time order) after those the state remembers."""
    import numpy as np

    new = len(values)
    all_times = np.concatenate([state._times(), np.asarray(times_us, dtype=np.int64)])
    x = np.concatenate([state._values(), np.asarray(values, dtype=float)])
    start = state.seen - len(state._values())  # absolute index of x[0]
    seen = state.seen + new
    season = state.season
    if season is None and seen >= SEASON_WARMUP and start == 0:
        season = learn_season(all_times, x)
    strength, signed, expectations = strengths(x, start, season, features)
    tails = calibrate.block_tails(strength, start, valid_from=valid_from(features))
    log10_p, winner = calibrate.combine(tails)
    score = calibrate.score(log10_p)
    anomaly = calibrate.first_alarms(score)

    tail = slice(len(x) - new, len(x))
    columns = np.arange(len(x))
    feature_index = np.array([FEATURE_NAMES.index(name) for name in features])
    scores = Scores(
        score=score[tail],
        log10_tail=log10_p[tail],
        anomaly=anomaly[tail],
        z=signed[winner, columns][tail],
        expected=expectations[winner, columns][tail],
        feature=feature_index[winner[tail]],
    )
    keep = slice(max(0, len(x) - BUFFER), len(x))
    return scores, WindowState(seen, season, all_times[keep].copy(), x[keep].copy())


def valid_from(features: tuple[str, ...]) -> list[int]:
    """Per feature, the first point whose strength is more than its warm-up.

    A robust z of the first points divides by the spread of one or two values
    (z near MAX_Z): as calibration history it would make every later strength
    of the series look ordinary.
    """
    return [hst.WINDOW if name == "hst" else LEVEL_WINDOW for name in features]


def learn_season(times_us: Any, x: Any) -> int:
    """The season in points, learnt once from the first SEASON_WARMUP points."""
    from nodus_cli.series import detect_season

    season = detect_season(times_us[:SEASON_WARMUP] / 1e6, x[:SEASON_WARMUP])
    return min(season, MAX_SEASON)


def strengths(
    x: Any, start: int, season: int | None, features: tuple[str, ...]
) -> tuple[Any, Any, Any]:
    """(unsigned strength, signed z, expected value) per feature and point of ``x``.

    ``x[0]`` is point ``start`` of the series; strengths of the first
    STRENGTH_HISTORY points are exact only when ``start`` is 0.
    """
    import numpy as np

    rank = _remembering(functools.partial(_causal_percentile, at_origin=start == 0))
    level = rank(x, LEVEL_WINDOW, 50)
    zs: list[Any] = []
    expectations: list[Any] = []
    for name in features:
        if name == "hst":
            zs.append(hst.strength(rank, x, start))
            expectations.append(level)
            continue
        if name == "record":
            highest, lowest = _causal_extremes(x, RECORD_WINDOW)
            bound = np.where(x > highest, highest, np.where(x < lowest, lowest, x))
            zs.append(_robust_z(rank, x - bound, x, level))
            expectations.append(bound)
            continue
        if name == "local":
            expected = level
        elif name == "seasonal":
            expected = level.copy()
            if season:
                expected = _seasonal_expectation(rank, x, level, season, start)
        elif name == "spread":
            wiggle = np.abs(x - level)
            wiggle_now = np.concatenate([wiggle[1:], wiggle[-1:]])
            recent = rank(wiggle_now, SPREAD_WINDOW, 50)
            longer = rank(recent, SCALE_WINDOW, 50)
            zs.append(_robust_z(rank, recent - longer, x, level))
            expectations.append(longer)
            continue
        else:
            shifted = np.concatenate([x[1:], x[-1:]])  # median of x[i-w+1..i]
            recent = rank(shifted, RECENT_WINDOWS[name], 50)
            longer = rank(x, SCALE_WINDOW, 50)
            if season:
                longer = _same_phase_before(recent, longer, season, start)
            zs.append(_robust_z(rank, recent - longer, x, level))
            expectations.append(longer)
            continue
        zs.append(_robust_z(rank, x - expected, x, level))
        expectations.append(expected)
    signed = np.vstack(zs)
    return np.abs(signed), signed, np.vstack(expectations)
