"""Half-space trees (Tan, Ting and Liu, 2011) on lagged windows, vectorised over points.

Each tree splits, at each of its ``HEIGHT`` levels, one random dimension at the
middle of its current range, over a work range drawn around the unit cube (one
dimension per level rather than per node, so a path is a few bit operations). Points are
counted per node in windows of ``WINDOW`` points aligned on the absolute point
index; a point is scored against the counts of the window before its own (the
reference mass), at the first node on its path whose mass falls below
``SIZE_LIMIT`` of a window, or its leaf. Sparse regions score high.

Features are the last ``LAGS`` values scaled by the 0-100% range of the
``SCALE_WINDOW`` points before, so a point's score depends only on a bounded
window of past points (the trees come from a fixed seed) and an incremental run
reproduces one long run.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

TREES = 10
HEIGHT = 8
WINDOW = 250
SIZE_LIMIT = 0.1  # share of a window below which a node is too sparse to descend
LAGS = 3
SCALE_WINDOW = 400
SEED = 42
HISTORY = 2 * WINDOW + SCALE_WINDOW + LAGS  # past points a new point's score reads


@lru_cache(maxsize=1)
def _trees() -> tuple[Any, Any, Any]:
    """Per tree: the split dimension of each depth and the work range of each dimension.

    Each split halves the current range of its dimension, so a point's path is
    the leading bits of its position in the work range, dimension by dimension.
    """
    import numpy as np

    rng = np.random.default_rng(SEED)
    centre = rng.uniform(0.0, 1.0, (TREES, LAGS))
    reach = 2.0 * np.maximum(centre, 1.0 - centre)
    dims = rng.integers(LAGS, size=(TREES, HEIGHT))
    return dims, centre - reach, 2.0 * reach


def _leaves(lagged: Any, tree: int) -> Any:
    """The leaf (0 .. 2^HEIGHT - 1, left to right) each point reaches in one tree."""
    import numpy as np

    dims, low, width = _trees()
    top = 2**HEIGHT
    cells = [
        np.clip(((lagged[q] - low[tree, q]) * (top / width[tree, q])).astype(np.int64), 0, top - 1)
        for q in range(LAGS)
    ]
    leaf = np.zeros(lagged.shape[1], dtype=np.int64)
    used = [0] * LAGS
    for depth, q in enumerate(dims[tree].tolist()):
        used[q] += 1
        leaf |= ((cells[q] >> (HEIGHT - used[q])) & 1) << (HEIGHT - 1 - depth)
    return leaf


def _terminal_mass(leaf_counts: Any) -> Any:
    """Per (window slot, leaf): mass times 2^depth at the first sparse node of its path.

    Walks the tree top down: a node's value is fixed at the first sparse ancestor
    (masses only shrink going down), else taken from the next level.
    """
    import numpy as np

    slots = leaf_counts.shape[0]
    limit = SIZE_LIMIT * WINDOW
    fixed = np.full((slots, 1), np.nan)
    for depth in range(HEIGHT + 1):
        mass = leaf_counts.reshape(slots, 2**depth, -1).sum(axis=2)
        if depth:
            fixed = np.repeat(fixed, 2, axis=1)
        stop = np.isnan(fixed) & ((mass < limit) | (depth == HEIGHT))
        fixed[stop] = mass[stop] * 2.0**depth
    return fixed


def strength(rank: Any, x: Any, start: int) -> Any:
    """Sparseness of each point's lagged window: -log2 of its normalised mass (>= 0)."""
    import numpy as np

    n = len(x)
    low = rank(x, SCALE_WINDOW, 0)
    high = rank(x, SCALE_WINDOW, 100)
    span = np.maximum(high - low, 1e-9 * (1.0 + np.abs(low)))
    scaled = (x - low) / span
    positions = np.arange(n)
    lagged = np.stack([scaled[np.maximum(positions - lag, 0)] for lag in range(LAGS)])
    absolute = np.arange(start, start + n)
    window_of = absolute // WINDOW - start // WINDOW  # 0 for the first (maybe partial) window
    windows = int(window_of[-1]) + 1 if n else 0
    leaves = 2**HEIGHT
    mass = np.zeros(n)
    for tree in range(TREES):
        leaf = _leaves(lagged, tree)
        # Slot w + 1 counts window w; a point in window w reads slot w (the window before).
        counts = np.bincount((window_of + 1) * leaves + leaf, minlength=(windows + 1) * leaves)
        counts = counts.reshape(windows + 1, leaves)
        table = _terminal_mass(counts.reshape(windows + 1, leaves).astype(np.float64))
        mass += table[window_of, leaf]
    normalised = mass / (TREES * WINDOW * 2.0**HEIGHT)
    sparseness = -np.log2(normalised + 1.0 / (WINDOW * 2.0**HEIGHT))
    usable = absolute - (absolute % WINDOW) - WINDOW >= start  # a whole window before
    return np.where(usable, sparseness, 0.0)
