"""Run a detector over the new points of a series, save its state and the anomalies found."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from nodus_cli.anomaly.methods import Method, get_method
from nodus_cli.anomaly.robust import FEATURE_NAMES, Scores
from nodus_cli.anomaly.source import Source, read_points
from nodus_cli.progress import ProgressLike, reporter
from nodus_cli.store.db import Store

ANOMALY_THRESHOLD = 0.5  # a point whose score reaches this is an anomaly
HUGE_Z = 1e6
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Anomaly:
    time: datetime
    value: float
    score: float
    reason: str


@dataclass
class Detection:
    """The outcome of one run: what was scored and which new anomalies were found."""

    series: str
    method: str
    resumed_after: datetime | None
    times_us: Any
    values: Any
    scores: Scores
    anomalies: list[Anomaly]

    @property
    def scored(self) -> int:
        return len(self.values)

    @property
    def last_time(self) -> datetime | None:
        return to_datetime(int(self.times_us[-1])) if len(self.times_us) else None

    def points(self, only_anomalies: bool) -> Iterator[tuple[datetime, float, float, bool, str]]:
        """(time, value, score, anomaly, reason) per scored point, or per anomaly."""
        if only_anomalies:
            for found in self.anomalies:
                yield found.time, found.value, found.score, True, found.reason
            return
        flagged = {found.time: found.reason for found in self.anomalies}
        for t_us, value, score in zip(
            self.times_us.tolist(), self.values.tolist(), self.scores.score.tolist(), strict=True
        ):
            when = to_datetime(t_us)
            reason = flagged.get(when)
            yield when, value, round(score, 6), reason is not None, reason or ""


def to_datetime(epoch_us: int) -> datetime:
    return EPOCH + timedelta(microseconds=epoch_us)


def _number(value: float) -> str:
    return f"{value:.4g}"


def explain(scores: Scores, index: int, value: float, method: str) -> str:
    """A short sentence saying why a point is anomalous."""
    if method == "hst":
        return f"HalfSpaceTrees score {scores.score[index]:.2f} (value {_number(value)})"
    z = float(scores.z[index])
    expected = float(scores.expected[index])
    feature = FEATURE_NAMES[int(scores.feature[index])]
    direction = "above" if z >= 0 else "below"
    if feature in ("shift", "drift"):
        what = f"the level moved {direction} the usual level {_number(expected)}"
        return f"{what}: value {_number(value)}"
    if feature == "spread":
        change = "more erratic" if z >= 0 else "unusually steady"
        return f"the series turned {change} around value {_number(value)}"
    against = "the seasonal expectation" if feature == "seasonal" else "the recent level"
    if abs(z) >= HUGE_Z:
        return f"value {_number(value)} departs from a flat level at {_number(expected)}"
    return (
        f"value {_number(value)} is {abs(z):.1f} robust deviations {direction} "
        f"{against} ({_number(expected)})"
    )


def _load_state(store: Store, series: str, method: Method) -> tuple[Any, datetime | None, int]:
    row = store.con.execute(
        "SELECT state, last_time, points FROM detector_state WHERE series = ? AND method = ?",
        [series, method.name],
    ).fetchone()
    if row is None:
        return method.new_state(), None, 0
    return method.load(bytes(row[0])), row[1], int(row[2])


def detect(
    store: Store,
    source: Source,
    *,
    method_name: str = "auto",
    since: datetime | None = None,
    until: datetime | None = None,
    from_scratch: bool = False,
    on_progress: ProgressLike | None = None,
) -> Detection:
    """Score the points after the saved state, then save state and anomalies atomically.

    With ``from_scratch`` the saved state and the anomalies of this series and
    method are dropped first, so the run starts over from the first point.
    """
    method = get_method(method_name)
    progress = reporter(on_progress)
    summary = {"series": source.key, "method": method.name, "from_scratch": from_scratch}
    with store.change(summary) as details:
        if from_scratch:
            for table in ("detector_state", "anomalies"):
                store.con.execute(
                    f"DELETE FROM {table} WHERE series = ? AND method = ?",
                    [source.key, method.name],
                )
        progress.stage("reading points")
        state, resumed_after, seen = _load_state(store, source.key, method)
        times_us, values = read_points(store, source, after=resumed_after, since=since, until=until)
        progress.total(len(values))
        progress.stage(f"scoring with {method.name}")
        scores, state = method.score(state, times_us, values)
        progress.advance(len(values))
        progress.stage("saving")
        found = _anomalies(scores, times_us, values, method.name)
        if found:
            store.con.executemany(
                "INSERT INTO anomalies (series, time, value, score, method, reason) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [[source.key, a.time, a.value, a.score, method.name, a.reason] for a in found],
            )
        if len(values):
            store.con.execute(
                "INSERT OR REPLACE INTO detector_state "
                "(series, method, last_time, points, state, updated) VALUES (?, ?, ?, ?, ?, now())",
                [
                    source.key,
                    method.name,
                    to_datetime(int(times_us[-1])),
                    seen + len(values),
                    method.dump(state),
                ],
            )
        details.update(scored=len(values), anomalies=len(found))
    return Detection(source.key, method.name, resumed_after, times_us, values, scores, found)


def _anomalies(scores: Scores, times_us: Any, values: Any, method: str) -> list[Anomaly]:
    import numpy as np

    flagged = np.nonzero(scores.score >= ANOMALY_THRESHOLD)[0]
    found = []
    for index in flagged.tolist():
        value = float(values[index])
        score = float(scores.score[index])
        found.append(
            Anomaly(
                to_datetime(int(times_us[index])),
                value,
                round(score, 6) if math.isfinite(score) else 1.0,
                explain(scores, index, value, method),
            )
        )
    return found
