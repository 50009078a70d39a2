"""The detection methods ``nodus detect --method`` offers, behind one small interface."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nodus_cli.anomaly import robust
from nodus_cli.errors import UsageError


@dataclass(frozen=True)
class Method:
    name: str
    help: str
    new_state: Callable[[], Any]
    score: Callable[[Any, Any, Any], tuple[robust.Scores, Any]]
    dump: Callable[[Any], bytes]
    load: Callable[[bytes], Any]


def _window_method(name: str, help_text: str, features: tuple[str, ...]) -> Method:
    def score(state: Any, times_us: Any, values: Any) -> tuple[robust.Scores, Any]:
        return robust.score_window(state, times_us, values, features)

    return Method(
        name,
        help_text,
        robust.WindowState,
        score,
        robust.WindowState.to_bytes,
        robust.WindowState.from_bytes,
    )


HST_WINDOW = 250
HST_WARMUP = 50


def _hst_new() -> Any:
    from river import anomaly, preprocessing

    model = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(
        n_trees=10, height=8, window_size=HST_WINDOW, seed=42
    )
    return {"model": model, "previous": None, "seen": 0}


def _hst_score(state: Any, times_us: Any, values: Any) -> tuple[robust.Scores, Any]:
    """river's HalfSpaceTrees on (value, change since the previous point), one at a time."""
    import numpy as np

    model = state["model"]
    scores = np.zeros(len(values))
    for i, value in enumerate(np.asarray(values, dtype=float)):
        previous = state["previous"]
        features = {"value": value, "change": 0.0 if previous is None else value - previous}
        if state["seen"] >= HST_WARMUP:
            scores[i] = model.score_one(features)
        model.learn_one(features)
        state["previous"] = value
        state["seen"] += 1
    zeros = np.zeros(len(values))
    feature = np.zeros(len(values), dtype=int)
    return robust.Scores(scores, zeros, np.asarray(values, dtype=float), feature), state


METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        _window_method(
            "auto",
            "robust deviations from the level, season, usual level and spread",
            robust.AUTO_FEATURES,
        ),
        _window_method(
            "robust", "robust deviation from the recent level only", robust.ROBUST_FEATURES
        ),
        Method(
            "hst",
            "river HalfSpaceTrees on value and change (slower, per point)",
            _hst_new,
            _hst_score,
            lambda state: pickle.dumps(state, protocol=5),
            pickle.loads,
        ),
    )
}


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise UsageError(f"unknown method {name!r} (choose from {', '.join(METHODS)})") from None
