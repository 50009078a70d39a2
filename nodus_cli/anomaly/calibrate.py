"""One calibration for every detector: raw strengths become tail probabilities.

A detector's raw strength (a robust z, a HalfSpaceTrees sparseness) means nothing
on its own scale: 5 is rare on one series and routine on another. Following the
anomaly likelihood of Numenta's HTM detector, each point's short-term mean of
``log1p(strength)`` is compared with the distribution of that quantity over a long
window before it (its mean and standard deviation, a Gaussian tail), so the result
is the probability that the series' usual behaviour produces so strong a signal.

Several detectors are combined by a rule fixed up front: the two or the three
most surprising detectors must agree. With point tails p1 <= p2 <= p3 of d
detectors, the chance that k independent uniform tails have a product as small
as t = p1 ... pk is t (1 - ln t) for two and t (1 - ln t + (ln t)^2 / 2) for
three, times the C(d, k) sets of k (Bonferroni), and the smaller of the two
counts twice (both rules were looked at). So one detector's routine excursion
no longer alarms alone unless it is extreme, while two moderate ones at once,
or three milder ones, do (cross-validated on NAB: tests/bench/nab.py). A
single detector is its own tail. The score shown to the user is that
probability on a log scale, ``0.5 * log(p) / log(FLAG_TAIL)`` clipped to
[0, 1], so the flag threshold 0.5 means the same tail probability for every
method. A point is an anomaly when it reaches 0.5 and no point in the
``SUPPRESS`` before it did: one incident, one alarm.

The long-term statistics come from blocks aligned on the absolute point index
and every sum is over a fixed set of values, so an incremental run reproduces
one long run bit for bit from a bounded window of past points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

ANOMALY_THRESHOLD = 0.5  # the score at which a point is an anomaly (tail FLAG_TAIL)
BLOCK = 50  # points per block of long-term statistics
# log10(5) / log10(0.5 / (1 - 0.5 ** (1 / BLOCK))): decades from the 50th to the
# 90th percentile of block maxima over those from a typical point to their median.
TIE_SHARE = math.log10(5.0) / math.log10(0.5 / (1.0 - 0.5 ** (1.0 / BLOCK)))
AGREEING = 3  # the most surprising detectors that may agree to alarm: two or three
MIN_HISTORY = 200  # points learnt from before anything is scored
# The median maximum of 50 standard normal |z|: a block's maximum is never taken
# to be less, so after a dead-flat (or one-valued) history an ordinary deviation
# is still ordinary.
TYPICAL_MAXIMUM = 2.5


@dataclass(frozen=True)
class Calibration:
    """The constants chosen by leave-one-category-out cross-validation (tests/bench/nab.py)."""

    short: int = 1  # points in the short-term mean of the strength
    long_blocks: int = 40  # blocks of BLOCK points whose maxima make the long-term tail
    flag_tail: float = 10**-4.0  # the tail probability that maps to the anomaly threshold
    suppress: int = 25  # points after an alarm during which no new one is raised
    min_blocks: int = 3  # blocks a series' first tail is fitted on (then up to long_blocks)
    width_floor: float = 0.3  # in log1p units: the narrowest tail (a flat history's)

    @property
    def history(self) -> int:
        """Past points whose strengths every new point's calibration reads."""
        return (self.long_blocks + 1) * BLOCK + self.short + self.suppress


DEFAULT = Calibration()


def block_tails(
    strength: Any, start: int, calibration: Calibration = DEFAULT, valid_from: Any = None
) -> Any:
    """log10 of the chance that a block's maximum reaches each point's strength.

    One row per detector; ``point_tail`` turns it into the chance for one point
    (a monotone map, so the most surprising detector is the row's minimum either way).

    ``strength`` is (detectors, points), points ``start`` onwards in absolute index;
    ``valid_from`` is, per detector, the first absolute point whose strength means
    something (a detector's own warm-up is not history to calibrate on).
    """
    import numpy as np
    from scipy import ndimage

    a = np.log1p(np.maximum(np.nan_to_num(strength, posinf=1e12), 0.0))
    detectors, n = a.shape
    k = calibration.short
    recent = np.zeros_like(a)
    for lag in range(k):  # a fixed sum of k values per point: identical in any run split
        recent[:, lag:] += a[:, : n - lag] if lag else a
    recent /= k

    # Blocks aligned on absolute index; a point sees the maxima of the long_blocks
    # blocks before its own, and the exponential tail through their median and 90th
    # percentile (a Gumbel fit) gives the chance that a block's maximum exceeds it.
    first_block = -(-start // BLOCK)  # first block wholly inside the array
    offset = first_block * BLOCK - start
    blocks = max(0, (n - offset) // BLOCK)
    within = a[:, offset : offset + blocks * BLOCK].reshape(detectors, blocks, BLOCK)
    window = calibration.long_blocks
    valid = np.zeros(detectors, dtype=np.int64) if valid_from is None else np.asarray(valid_from)
    first_valid = -(-valid // BLOCK) if start == 0 else np.zeros(detectors, dtype=np.int64)
    maxima = within.max(axis=2)
    statistics = ((maxima, 50), (maxima, 90), (within.mean(axis=2), 50), (maxima, 100))
    before = np.zeros((detectors, blocks + 1, len(statistics)))
    for column, (per_block, q) in enumerate(statistics):
        if blocks:
            ranked = ndimage.percentile_filter(
                per_block, q, size=(1, window), origin=(0, (window - 1) // 2), mode="nearest"
            )
            before[:, 1:, column] = ranked  # stats of blocks b-window..b-1 for block b
        if start == 0:  # a series' first blocks see only the valid blocks there are
            for row in range(detectors):
                low = int(first_valid[row])
                for block in range(low + calibration.min_blocks, min(low + window, blocks + 1)):
                    before[row, block, column] = np.percentile(
                        per_block[row, low:block], q, method="lower"
                    )
    absolute = np.arange(start, start + n)
    block_of = absolute // BLOCK - first_block  # -1 before the first whole block
    index = np.clip(block_of, 0, blocks)
    first_usable = first_valid + (calibration.min_blocks if start == 0 else window)
    usable = (block_of[None, :] >= first_usable[:, None]) & (absolute >= MIN_HISTORY)
    # Per block (then read per point): the tail's median and its slope in decades.
    median, upper, typical, highest = (before[:, :, column] for column in range(4))
    # A discrete strength (a count, a median of integers) ties the maxima: the 90th
    # percentile is the median and says nothing of the tail's width. The tail then
    # decays as it does from a typical point (tail 1/2) to the median maximum (1/2 of
    # blocks, 1.4% of points): a value seen often is no tail event.
    ties = np.maximum(TIE_SHARE * (median - typical), 0.0)
    width = np.maximum(np.where(upper > median, upper - median, ties), calibration.width_floor)
    median = np.maximum(median, math.log1p(TYPICAL_MAXIMUM))
    slope = np.log10(5.0) / width
    offset = np.log10(0.5) + median * slope
    log10_block = offset[:, index] - recent * slope[:, index]
    # The fitted tail can call ordinary a strength above every block maximum of the
    # history (a slow drift's new height after alike maxima: 1 in 6 blocks, say).
    # The chance of that is at most 1 in the blocks seen plus one, so above the
    # highest maximum (and the fitted 90th percentile) the tail falls from there.
    if start == 0:
        seen = np.clip(np.arange(blocks + 1)[None, :] - first_valid[:, None], 1, window)
    else:
        seen = np.full((detectors, blocks + 1), window)
    highest = np.maximum(highest, median + width)
    record = highest * slope - np.log10(seen + 1.0)
    beyond = record[:, index] - recent * slope[:, index]
    above = recent > highest[:, index]
    log10_block = np.where(above, np.minimum(log10_block, beyond), log10_block)
    return np.where(usable, np.minimum(log10_block, 0.0), 0.0)


def point_tail(log10_block: Any) -> Any:
    """log10 P(one point >= s) from log10 P(block maximum >= s) = 1 - (1 - p) ** BLOCK."""
    import numpy as np

    block_tail = 10.0 ** np.minimum(log10_block, 0.0)
    with np.errstate(divide="ignore"):
        log10_p = np.log10(-np.log1p(-np.minimum(block_tail, 1.0 - 1e-16)) / BLOCK)
    log10_p = np.where(log10_block < -8.0, log10_block - np.log10(BLOCK), log10_p)
    return np.where(log10_block >= 0.0, 0.0, np.minimum(log10_p, 0.0))


def combine(block_log10: Any, agreeing: int = 0) -> tuple[Any, Any]:
    """(log10 tail of the most surprising detectors' agreement, the most surprising one).

    ``block_log10`` is ``block_tails``' output; ``point_tail`` is monotone, so the
    smallest block tails are the smallest point tails. ``agreeing`` (default
    AGREEING) is the most detectors whose agreement is looked at.
    """
    import numpy as np

    detectors, n = block_log10.shape
    winner = np.argmin(block_log10, axis=0)
    if detectors == 1:
        return point_tail(block_log10[0]), winner
    sizes = range(2, min(agreeing or AGREEING, detectors) + 1)
    smallest = np.sort(np.partition(block_log10, sizes[-1] - 1, axis=0)[: sizes[-1]], 0)
    ln_tails = point_tail(smallest) * np.log(10.0)
    best = np.zeros(n)
    for k in sizes:
        ln_t = ln_tails[:k].sum(axis=0)
        # P(a product of k uniforms <= t) = t * sum_{j<k} (-ln t)^j / j!
        series = sum((-ln_t) ** j / math.factorial(j) for j in range(k))
        sets = math.comb(detectors, k) * len(sizes)
        best = np.minimum(best, (ln_t + np.log(series * sets)) / np.log(10.0))
    return best, winner


def score(log10_p: Any, calibration: Calibration = DEFAULT) -> Any:
    """The tail probability on the user's scale: 0.5 at ``flag_tail``, 1 at its square."""
    import numpy as np

    return np.clip(ANOMALY_THRESHOLD * log10_p / np.log10(calibration.flag_tail), 0.0, 1.0)


def first_alarms(scores: Any, calibration: Calibration = DEFAULT) -> Any:
    """True where a point reaches the threshold and none of the ``suppress`` before it did."""
    import numpy as np
    from scipy import ndimage

    over = (scores >= ANOMALY_THRESHOLD).astype(np.int8)
    window = calibration.suppress
    if window <= 0:
        return over.astype(bool)
    recent = ndimage.maximum_filter1d(over, window, origin=(window - 1) // 2, mode="constant")
    before = np.concatenate([[0], recent[:-1]])
    return (over == 1) & (before == 0)
