"""What happened before an incident, most likely related first (``man nodus-timeline``).

The rule is fixed and has no weights. First the changes someone made in the window
before the moment (a configuration applied or rolled back, a key generated, rotated
or revoked), the nearest first; then the changes nodus observed (a new log pattern, a
new source: they may be symptoms as much as causes), the nearest first; then the
first anomaly of each series, the earliest first (the series that went wrong first
is the likeliest cause). Ties fall to kind and summary, so the same store gives the
same list.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from nodus_cli.timeline.events import Event

MADE = frozenset({"config", "keys"})  # changes a person made, ranked before observed ones


@dataclass(frozen=True)
class Related:
    event: Event
    minutes_before: float
    why: str

    def to_json(self) -> dict[str, Any]:
        return {**self.event.to_json(), "minutes_before": self.minutes_before, "why": self.why}


def related(events: list[Event], around: dt.datetime, window: dt.timedelta) -> list[Related]:
    before = [e for e in events if around - window <= e.time <= around]

    def minutes(event: Event) -> float:
        return round((around - event.time).total_seconds() / 60, 1)

    changes = sorted(
        (e for e in before if e.change),
        key=lambda e: (e.kind not in MADE, around - e.time, e.kind, e.summary),
    )
    firsts: dict[str, Event] = {}
    for event in sorted(before, key=lambda e: (e.time, e.summary)):
        if event.kind == "anomalies" and event.source not in firsts:
            firsts[event.source] = event
    anomalies = sorted(firsts.values(), key=lambda e: (e.time, e.source))
    return [
        Related(e, minutes(e), "change made" if e.kind in MADE else "change seen") for e in changes
    ] + [Related(e, minutes(e), "first anomaly of its series") for e in anomalies]
