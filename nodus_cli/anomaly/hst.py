"""Half-space trees (Tan, Ting and Liu, 2011) on lagged windows, vectorised over points.

Each tree splits a random dimension at the middle of its current range, down to
``HEIGHT`` levels, over a work range drawn around the unit cube. Points are
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
def _trees() -> tuple[Any, Any]:
    """(split dimension, split value) per tree and node of a complete binary tree."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    nodes = 2**HEIGHT - 1
    dims = np.zeros((TREES, nodes), dtype=np.int64)
    splits = np.zeros((TREES, nodes))
    for tree in range(TREES):
        centre = rng.uniform(0.0, 1.0, LAGS)
        reach = 2.0 * np.maximum(centre, 1.0 - centre)
        low, high = centre - reach, centre + reach
        ranges = {0: (low, high)}
        for node in range(nodes):
            low, high = ranges[node]
            dim = int(rng.integers(LAGS))
            middle = (low[dim] + high[dim]) / 2.0
            dims[tree, node], splits[tree, node] = dim, middle
            left_high, right_low = high.copy(), low.copy()
            left_high[dim], right_low[dim] = middle, middle
            ranges[2 * node + 1] = (low, left_high)
            ranges[2 * node + 2] = (right_low, high)
    return dims, splits


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
    dims, splits = _trees()
    absolute = np.arange(start, start + n)
    window_of = absolute // WINDOW - start // WINDOW  # 0 for the first (maybe partial) window
    windows = int(window_of[-1]) + 1 if n else 0
    total_nodes = 2 ** (HEIGHT + 1) - 1
    columns = np.arange(n)
    mass = np.zeros(n)
    for tree in range(TREES):
        node = np.zeros(n, dtype=np.int64)
        path = [node]
        for _depth in range(HEIGHT):
            value = lagged[dims[tree, node], columns]
            node = 2 * node + 1 + (value > splits[tree, node])
            path.append(node)
        nodes = np.stack(path)  # (HEIGHT + 1, n)
        slots = (window_of + 1) * total_nodes + nodes  # slot w + 1 counts window w
        counts = np.bincount(slots.ravel(), minlength=(windows + 1) * total_nodes)
        # Reference mass: the counts of the window before the point's own.
        reference = counts[window_of[None, :] * total_nodes + nodes]
        sparse = reference < SIZE_LIMIT * WINDOW
        depth = np.where(sparse.any(axis=0), sparse.argmax(axis=0), HEIGHT)
        mass += reference[depth, columns] * np.exp2(depth)
    normalised = mass / (TREES * WINDOW * 2.0**HEIGHT)
    sparseness = -np.log2(normalised + 1.0 / (WINDOW * 2.0**HEIGHT))
    usable = absolute - (absolute % WINDOW) - WINDOW >= start  # a whole window before
    return np.where(usable, sparseness, 0.0)
