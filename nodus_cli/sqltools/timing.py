"""Timing two queries against each other: how much faster or slower, with an interval.

Interleaved runs (ABBA), blocks of a few pairs whose fastest runs are compared, and
Student's t over the blocks' log ratios, so the verdict on a rewrite holds between
verifications on a busy machine (``rewrite.verify_rewrite`` decides on it).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from nodus_cli.sqltools.catalog import execute

DEFAULT_RUNS = 6  # interleaved pairs timed before the first look at the interval
DEFAULT_BUDGET = 5.0  # seconds of timing before the verdict is taken as it stands
NOT_SLOWER = 1.05  # a whole interval above this is "slower"
# A rewrite is kept only when measurably faster: its whole interval at most 1 - DEAD_BAND,
# as "slower" needs the whole interval above NOT_SLOWER. Within the band the two are the
# same query to a stopwatch, and the original stays whatever the noise. An estimate whose
# ratio alone was in the band let a lucky streak keep a rewrite of the same speed
# (TPC-H q16: 0.68 [0.46, 0.99] once, 0.99 [0.97, 1.02] in four other verifications).
DEAD_BAND = 0.05
TOO_FAST = 0.005  # seconds: below this for both queries, timing noise decides verdicts
# Stop once the interval's half-width (log scale) is this narrow and it lies on one side
# of the keep line (1 - DEAD_BAND). A narrow interval across the line is timed on, until
# the budget: a rewrite whose true ratio is near the line (TPC-H q22, about 0.93) was
# kept in four verifications of five when the timing stopped at the first narrow interval.
PRECISION = 0.02
MAX_PAIRS = 400
CLEARLY_SLOWER_WIDTH = 0.1  # an interval this narrow above 1.05 ends the timing early
BLOCK = 3  # pairs per block: a block's ratio is of its best runs, which preemption spares
# Blocks needed before an interval may keep a rewrite. Two blocks that happen to agree
# give a narrow interval by chance (TPC-H q16, of the same speed: 0.878 [0.874, 0.882]
# after 6 pairs once in five verifications on a loaded machine, ~0.98 [0.93, 1.05] the
# other four); refusing on few blocks is safe (the original stays), keeping is not.
MIN_KEEP_BLOCKS = 4


@dataclass
class RatioEstimate:
    """Rewrite / original time: geometric mean of the paired ratios, its 95% interval."""

    timing: Timing
    ratio: float
    low: float
    high: float
    seconds: float
    too_fast: bool

    @property
    def blocks(self) -> int:
        return len(self.timing.first) // BLOCK

    @property
    def may_keep(self) -> bool:
        """Enough blocks were timed for the interval to keep a rewrite."""
        return self.blocks >= MIN_KEEP_BLOCKS


def measure_ratio(
    con: Any,
    first: str,
    second: str,
    *,
    min_pairs: int = DEFAULT_RUNS,
    budget: float = DEFAULT_BUDGET,
) -> RatioEstimate:
    """Time ``second`` against ``first`` in interleaved pairs (ABBA order) until the
    interval is ``PRECISION`` narrow on one side of the keep line, clearly above
    ``NOT_SLOWER``, or ``budget`` seconds are spent. The interval is Student's t over
    blocks of ``BLOCK`` pairs, each giving the log ratio of the two queries' fastest runs
    in it: interleaving cancels the machine's slow drifts, the block minimum the spikes
    of preemption on a busy machine (with per-run ratios, the interval stayed +-7% wide
    after 100 pairs at load 8 on two cores), the log makes the ratio's interval symmetric.
    """
    import time

    started = time.perf_counter()
    timing = Timing()
    pairs = max(2 * BLOCK, min_pairs)
    while True:
        timing.run_pair(con, first, second)
        spent = time.perf_counter() - started
        if len(timing.first) < pairs or len(timing.first) % BLOCK:
            continue
        mean, half = _log_ratio_interval(timing)
        low, high = math.exp(mean - half), math.exp(mean + half)
        too_fast = max(timing.medians) < TOO_FAST
        # Only "clearly slower" ends the timing early: stopping at the first look whose
        # interval happens to clear 1.05 would keep a rewrite on a lucky streak, and the
        # verdict would flip between verifications.
        clearly_slower = low > NOT_SLOWER and half <= CLEARLY_SLOWER_WIDTH
        keep_line = 1 - DEAD_BAND
        faster = high <= keep_line and len(timing.first) >= MIN_KEEP_BLOCKS * BLOCK
        decided = half <= PRECISION and (faster or low > keep_line)
        if too_fast or clearly_slower or decided or spent >= budget:
            break
        if len(timing.first) >= MAX_PAIRS:
            break
    return RatioEstimate(timing, math.exp(mean), low, high, spent, too_fast)


_T_95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26,
         10: 2.23, 12: 2.18, 15: 2.13, 20: 2.09, 30: 2.04, 60: 2.00}  # fmt: skip


def _t_quantile(freedom: int) -> float:
    """Two-sided 95% quantile of Student's t, from the row at or below ``freedom``
    (a larger quantile: the interval errs on the wide side)."""
    quantile = _T_95[1]
    for degrees in sorted(_T_95):
        if degrees <= freedom:
            quantile = _T_95[degrees]
    return quantile


def _log_ratio_interval(timing: Timing) -> tuple[float, float]:
    """Mean over blocks of log(best second / best first) and its 95% half-width."""
    blocks = range(0, len(timing.first) - BLOCK + 1, BLOCK)
    logs = [
        math.log(
            max(min(timing.second[i : i + BLOCK]), 1e-9)
            / max(min(timing.first[i : i + BLOCK]), 1e-9)
        )
        for i in blocks
    ]
    mean = statistics.fmean(logs)
    if len(logs) < 2:
        return mean, math.inf
    return mean, _t_quantile(len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))


@dataclass
class Timing:
    """Wall times of two queries measured in interleaved runs."""

    first: list[float] = field(default_factory=list)
    second: list[float] = field(default_factory=list)

    @property
    def medians(self) -> tuple[float, float]:
        return statistics.median(self.first), statistics.median(self.second)

    def run_pair(self, con: Any, first: str, second: str) -> None:
        """One run of each, the first query first on even pairs and second on odd ones."""
        if len(self.first) % 2 == 0:
            self.first.append(execute(con, first)[1])
            self.second.append(execute(con, second)[1])
        else:
            self.second.append(execute(con, second)[1])
            self.first.append(execute(con, first)[1])


CLEARLY_SLOWER = 1.5  # after 3 runs each, a best run this much above the worst one decides


def time_pair(con: Any, first: str, second: str, runs: int) -> Timing:
    """Time two queries over ``runs`` interleaved runs each, alternating which goes first.

    Stops early once the second is clearly slower (its best run over 1.5x the first's
    worst after three runs each): the verdict cannot change, and a slow rewrite can take
    many times longer than the original.
    """
    timing = Timing()
    for index in range(max(1, runs)):
        timing.run_pair(con, first, second)
        if index >= 2 and min(timing.second) > CLEARLY_SLOWER * max(timing.first):
            break
    return timing
