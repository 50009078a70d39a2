"""Times and durations as users type them: ISO 8601, epoch seconds, ``now``, ``2h``, ``3d ago``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from nodus_cli.errors import UsageError

_UNITS = {
    "ms": 0.001,
    "s": 1,
    "sec": 1,
    "m": 60,
    "min": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|sec|min|s|m|h|d|w)", re.IGNORECASE | re.ASCII)
_RELATIVE = re.compile(
    r"^\s*-?\s*(?P<dur>(?:\d+(?:\.\d+)?\s*[a-z]+\s*)+?)(?:\s+ago)?\s*$", re.I | re.ASCII
)


def parse_duration(text: str) -> timedelta:
    """Parse ``90s``, ``15m``, ``6h``, ``1d12h`` or plain seconds into a timedelta."""
    raw = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", raw, re.ASCII):
        return _seconds(float(raw), text)
    compact = raw.replace(" ", "")
    pos = 0
    total = 0.0
    for match in _DURATION.finditer(compact):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2).lower()]
        pos = match.end()
    if pos != len(compact) or not compact:
        raise UsageError(f"invalid duration {text!r} (expected e.g. 90s, 15m, 6h, 1d12h)")
    return _seconds(total, text)


def _seconds(total: float, text: str) -> timedelta:
    try:
        return timedelta(seconds=total)
    except OverflowError:  # more days than a timedelta holds (999999999), or infinite
        raise UsageError(f"duration {text!r} is too long") from None


def shift(moment: datetime, delta: timedelta, what: str) -> datetime:
    """``moment + delta``, or a usage error naming ``what`` when that leaves the years
    1 to 9999 (``--window 70000000000`` reached years before year 1)."""
    try:
        return moment + delta
    except OverflowError:
        raise UsageError(f"{what} is out of range (years 1 to 9999)") from None


def parse_time(text: str, *, now: datetime | None = None) -> datetime:
    """Parse an absolute or relative time into an aware UTC datetime.

    Accepts ISO 8601 (a missing offset means UTC), ``now``, ``today``, epoch
    seconds, and a duration before now (``2h``, ``-2h``, ``3d ago``).
    """
    now = now or datetime.now(UTC)
    raw = text.strip()
    lowered = raw.lower()
    if lowered == "now":
        return now
    if lowered == "today":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    out_of_range = UsageError(f"time {text!r} is out of range (years 1 to 9999)")
    if re.fullmatch(r"\d{9,}(\.\d+)?", raw, re.ASCII):
        try:
            return datetime.fromtimestamp(float(raw), UTC)
        except (OverflowError, OSError, ValueError):
            raise out_of_range from None
    relative = _RELATIVE.match(raw)
    if relative and not re.match(r"^\d{4}-", raw):
        try:
            ago = parse_duration(relative.group("dur"))
        except UsageError:
            ago = None  # not a duration after all: perhaps ISO 8601
        if ago is not None:
            return shift(now, -ago, f"time {text!r}")
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise UsageError(
            f"invalid time {text!r} (expected ISO 8601 like 2026-01-31T14:00, "
            "epoch seconds, 'now', or a duration ago like 2h)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
