"""Run a detector over the new points of a series, save its state and the anomalies found."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from nodus_cli.anomaly.calibrate import ANOMALY_THRESHOLD
from nodus_cli.anomaly.methods import Method, get_method
from nodus_cli.anomaly.reasons import explain, unit_of
from nodus_cli.anomaly.robust import FEATURE_NAMES, Scores
from nodus_cli.anomaly.source import Source, read_points
from nodus_cli.progress import Progress, ProgressLike, reporter
from nodus_cli.store.db import Store

__all__ = ["ANOMALY_THRESHOLD", "Anomaly", "Detection", "detect"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Points scored per call of a method: its arrays stay in cache and memory is bounded by
# the chunk, not the series. A method's state is a bounded window of past points, so
# chunked scores equal one long run's (tests/anomaly/test_detect.py).
CHUNK = 100_000
INSERT_BATCH = 50_000  # anomalies written per statement, so memory does not grow with them
ANOMALY_BATCH = "nodus_anomaly_batch"  # the registered Arrow array of one insert
SCORE_FIELDS = tuple(field.name for field in fields(Scores))


@dataclass
class Anomaly:
    time: datetime
    value: float
    score: float
    reason: str


@dataclass
class Detection:
    """The outcome of one run: what was scored and which points are new anomalies.

    Anomalies are kept as indices into the scored arrays; their rows and reasons
    are built as they are read, so a run with many of them costs no more memory.
    """

    series: str
    method: str
    resumed_after: datetime | None
    times_us: Any
    values: Any
    scores: Scores
    flagged: Any  # indices of the new anomalies
    step_s: float
    season_s: float

    @property
    def scored(self) -> int:
        return len(self.values)

    @property
    def found(self) -> int:
        return len(self.flagged)

    @property
    def last_time(self) -> datetime | None:
        return to_datetime(int(self.times_us[-1])) if len(self.times_us) else None

    @functools.cached_property
    def unit(self) -> str:
        return unit_of(self.series)

    @property
    def anomalies(self) -> list[Anomaly]:
        return list(self.iter_anomalies())

    def iter_anomalies(self) -> Iterator[Anomaly]:
        for index in self.flagged.tolist():
            yield Anomaly(
                to_datetime(int(self.times_us[index])),
                float(self.values[index]),
                _rounded(float(self.scores.score[index])),
                self.reason(index),
            )

    def reason(self, index: int) -> str:
        return explain(
            FEATURE_NAMES[int(self.scores.feature[index])],
            float(self.values[index]),
            float(self.scores.z[index]),
            float(self.scores.expected[index]),
            float(self.scores.log10_tail[index]),
            unit=self.unit,
            step_s=self.step_s,
            season_s=self.season_s,
        )

    def points(self, only_anomalies: bool) -> Iterator[tuple[str, float, float, bool, str]]:
        """(ISO 8601 time, value, score, anomaly, reason) per scored point, or per anomaly.

        Every point's row is built CHUNK points at a time (times formatted by numpy),
        so streaming a million of them holds only a chunk of Python objects.
        """
        if only_anomalies:
            for found in self.iter_anomalies():
                yield found.time.isoformat(), found.value, found.score, True, found.reason
            return
        for low in range(0, self.scored, CHUNK):
            high = min(low + CHUNK, self.scored)
            flags = self.scores.anomaly[low:high].tolist()
            rows = zip(
                iso_times(self.times_us[low:high]),
                self.values[low:high].tolist(),
                self.scores.score[low:high].tolist(),
                flags,
                strict=True,
            )
            for index, (time, value, score, anomaly) in enumerate(rows, start=low):
                yield time, value, _rounded(score), anomaly, self.reason(index) if anomaly else ""


def _rounded(score: float) -> float:
    """Six decimals; + 0.0 turns the -0.0 of a zero tail into 0.0 (shown as "-0.0")."""
    return round(score, 6) + 0.0 if math.isfinite(score) else 1.0


def iso_times(times_us: Any) -> list[str]:
    """``to_datetime(t).isoformat()`` of each epoch-microsecond time, formatted by numpy."""
    import numpy as np

    moments = times_us.astype("datetime64[us]")
    texts = np.datetime_as_string(moments, unit="s")
    fractional = times_us % 1_000_000 != 0
    if fractional.any():
        texts = np.where(fractional, np.datetime_as_string(moments, unit="us"), texts)
    return [text + "+00:00" for text in texts.tolist()]


def to_datetime(epoch_us: int) -> datetime:
    return EPOCH + timedelta(microseconds=epoch_us)


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
    import numpy as np

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
        scores, state = _score_in_chunks(method, state, times_us, values, progress)
        progress.stage("saving")
        times_known = state.times_us if len(state.times_us) >= 2 else times_us
        step_s = float(np.median(np.diff(times_known))) / 1e6 if len(times_known) >= 2 else 0.0
        result = Detection(
            source.key,
            method.name,
            resumed_after,
            times_us,
            values,
            scores,
            np.nonzero(scores.anomaly)[0],
            step_s,
            step_s * (state.season or 0),
        )
        _save_anomalies(store, result)
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
        details.update(scored=len(values), anomalies=result.found)
    return result


def _score_in_chunks(
    method: Method, state: Any, times_us: Any, values: Any, progress: Progress
) -> tuple[Scores, Any]:
    """The method's scores of every point, computed CHUNK points at a time."""
    import numpy as np

    n = len(values)
    scores = Scores(
        score=np.empty(n),
        log10_tail=np.empty(n),
        anomaly=np.empty(n, dtype=bool),
        z=np.empty(n),
        expected=np.empty(n),
        feature=np.empty(n, dtype=np.int8),
    )
    for low in range(0, max(n, 1), CHUNK):  # an empty series still passes once: state set up
        high = min(low + CHUNK, n)
        part, state = method.score(state, times_us[low:high], values[low:high])
        for name in SCORE_FIELDS:
            getattr(scores, name)[low:high] = getattr(part, name)
        progress.advance(high - low)
    return scores, state


def _save_anomalies(store: Store, result: Detection) -> None:
    """Insert the anomalies INSERT_BATCH at a time, each batch as one Arrow array."""
    import nanoarrow as na

    schema = na.struct(
        {"t_us": na.int64(), "value": na.float64(), "score": na.float64(), "reason": na.string()}
    )
    flagged = result.flagged
    for low in range(0, len(flagged), INSERT_BATCH):
        indices = flagged[low : low + INSERT_BATCH]
        columns = [
            na.c_array(result.times_us[indices], na.int64()),
            na.c_array(result.values[indices], na.float64()),
            na.c_array([_rounded(float(result.scores.score[i])) for i in indices], na.float64()),
            na.c_array([result.reason(int(i)) for i in indices], na.string()),
        ]
        batch = na.Array(na.c_array_from_buffers(schema, len(indices), [None], children=columns))
        store.con.register(ANOMALY_BATCH, batch)
        try:
            store.con.execute(
                "INSERT INTO anomalies (series, time, value, score, method, reason) "
                f"SELECT ?, make_timestamptz(t_us), value, score, ?, reason FROM {ANOMALY_BATCH}",
                [result.series, result.method],
            )
        finally:
            store.con.unregister(ANOMALY_BATCH)


def _insert(store: Store, batch: list[list[Any]]) -> None:
    store.con.executemany(
        "INSERT INTO anomalies (series, time, value, score, method, reason) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        batch,
    )


def record_first_seen(store: Store, found: list[tuple[Any, ...]], method: str) -> None:
    """Save "first seen" anomalies (key, time, value, reason) not saved before."""
    for key, time, value, reason in found:
        exists = store.con.execute(
            "SELECT count(*) FROM anomalies WHERE series = ? AND reason = ?", [key, reason]
        ).fetchone()[0]
        if not exists:
            _insert(store, [[key, time, value, 1.0, method, reason]])
