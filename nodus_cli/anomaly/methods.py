"""The detection methods ``nodus detect --method`` offers, behind one small interface."""

from __future__ import annotations

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


METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        _window_method(
            "auto",
            "all robust detectors together: level, season, shifts, drift and spread",
            robust.AUTO_FEATURES,
        ),
        _window_method(
            "robust", "robust deviation from the recent level only", robust.ROBUST_FEATURES
        ),
        _window_method(
            "hst", "half-space trees on the last few values (sparse regions)", robust.HST_FEATURES
        ),
    )
}


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise UsageError(f"unknown method {name!r} (choose from {', '.join(METHODS)})") from None
