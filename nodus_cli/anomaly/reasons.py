"""Sentences that say why a point is anomalous, in plain numbers and the series' units."""

from __future__ import annotations

import math

from nodus_cli.anomaly.hst import LAGS
from nodus_cli.anomaly.robust import LEVEL_WINDOW, RECENT_WINDOWS, RECORD_WINDOW, SPREAD_WINDOW

HUGE_Z = 1e6  # deviations from a level that never moved before
# Name endings that say what a series counts (Prometheus naming conventions first).
UNITS = (
    ("_bytes", "bytes"),
    ("_seconds", "s"),
    ("_percent", "%"),
    ("_pct", "%"),
    ("_ratio", ""),
    ("_requests", "requests"),
    ("_requests_total", "requests"),
    ("request_count", "requests"),
    ("_errors_total", "errors"),
    ("_total", ""),
)


def unit_of(series: str) -> str:
    """The unit a series name implies (``http_requests_total`` -> requests), or ''."""
    name = series.split("{", 1)[0].lower()
    for ending, unit in sorted(UNITS, key=lambda pair: -len(pair[0])):
        if name.endswith(ending):
            return unit
    return ""


def number(value: float) -> str:
    """A plain number: thousands separated, about three significant digits, no exponent."""
    if not math.isfinite(value):
        return str(value)
    size = abs(value)
    if size >= 100 or size == 0:
        return f"{value:,.0f}"
    digits = 2 - math.floor(math.log10(size))
    text = f"{value:.{min(digits, 12)}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def quantity(value: float, unit: str) -> str:
    if unit == "%":
        return f"{number(value)}%"
    return f"{number(value)} {unit}" if unit else number(value)


def duration(seconds: float) -> str:
    """``40 minutes``, ``2 hours``, ``3 days``: the largest unit with a whole count."""
    for size, name in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        if seconds >= size:
            count = round(seconds / size)
            return f"{count} {name}{'s' if count != 1 else ''}" if count != 1 else name
    return f"{seconds:g} seconds"


def season_phrase(season_s: float) -> str:
    for size, name in ((3600, "hour"), (86400, "day"), (7 * 86400, "week")):
        if abs(season_s - size) <= 0.05 * size:
            return f"at this time of the {name}"
    return f"at this point of its {duration(season_s)} cycle"


def rarity(log10_tail: float) -> str:
    """``1 in 3,800`` for a tail probability's log10; beyond a million, just that."""
    if -log10_tail >= 6:
        return "less than 1 in a million"
    odds = 10**-log10_tail
    rounded = float(f"{odds:.2g}")
    return f"1 in {number(rounded)}"


def explain(
    feature: str,
    value: float,
    z: float,
    expected: float,
    log10_tail: float,
    *,
    unit: str,
    step_s: float,
    season_s: float,
) -> str:
    """One sentence for one anomaly."""
    shown = quantity(value, unit)
    direction = "above" if z >= 0 else "below"
    odds = f" (chance {rarity(log10_tail)} for this series)"
    if feature == "hst":
        return f"{shown}: an unusual pattern of the last {LAGS} values{odds}"
    if feature in RECENT_WINDOWS:
        span = duration(step_s * RECENT_WINDOWS[feature])
        return (
            f"the level of the last {span} moved {direction} the usual "
            f"{quantity(expected, unit)} to {shown}{odds}"
        )
    if feature == "record":
        extreme = "highest" if z >= 0 else "lowest"
        span = duration(step_s * RECORD_WINDOW)
        return (
            f"{shown}, beyond the {extreme} value of the last {span} "
            f"({quantity(expected, unit)}){odds}"
        )
    if feature == "spread":
        change = "more erratic" if z >= 0 else "unusually steady"
        span = duration(step_s * SPREAD_WINDOW)
        return f"the series turned {change} over the last {span}, at {shown}{odds}"
    if feature == "seasonal":
        against = f"the usual level {season_phrase(season_s)}"
    else:
        against = f"the level of the last {duration(step_s * LEVEL_WINDOW)}"
    if abs(z) >= HUGE_Z:
        return f"{shown} departs from a flat level at {quantity(expected, unit)}{odds}"
    return (
        f"{shown}, {abs(z):.1f} robust deviations {direction} {against} "
        f"({quantity(expected, unit)}){odds}"
    )
