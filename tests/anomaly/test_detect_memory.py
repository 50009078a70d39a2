"""detect at scale: memory bounded and independent of how many anomalies are found."""

from __future__ import annotations

import io
import json
import tracemalloc
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodus_cli.anomaly import calibrate
from nodus_cli.anomaly import detect as detect_module
from nodus_cli.anomaly.detect import SCORE_FIELDS, detect, iso_times, to_datetime
from nodus_cli.anomaly.methods import METHODS
from nodus_cli.anomaly.source import parse_series
from nodus_cli.cli.detect import emit_detections
from nodus_cli.cli.output import Format, emit_json, render_rows
from nodus_cli.store import open_store
from nodus_cli.workspace import Workspace

POINTS = 200_000
BYTES_PER_POINT = 400  # generous: the scored arrays and their transient copies


class _Discard(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


def _peak_bytes(home: Path) -> tuple[int, int]:
    """(peak traced bytes of detect --method hst and streaming its anomalies, anomalies)."""
    with open_store(Workspace(home, "test")) as store:
        store.con.execute("DELETE FROM anomalies")
        tracemalloc.start()
        try:
            result = detect(store, parse_series("load"), method_name="hst", from_scratch=True)
            with redirect_stdout(_Discard()):
                render_rows(
                    ["timestamp", "value", "score", "anomaly", "reason"],
                    result.points(True),
                    Format.csv,
                )
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        saved = store.con.execute("SELECT count(*) FROM anomalies").fetchone()[0]
    assert saved == result.found
    return peak, result.found


def _fill(home: Path, points: int) -> None:
    with open_store(Workspace(home, "test")) as store:
        store.con.execute(
            """INSERT INTO metrics (time, series, labels, value, source)
            SELECT TIMESTAMPTZ '2026-01-01' + INTERVAL 1 MINUTE * i, 'load', '{}',
                   50 + 20 * sin(2 * pi() * i / 1440) + random()
                     + CASE WHEN i % 997 = 0 THEN 30 ELSE 0 END, 'test'
            FROM range(?) AS t(i)""",
            [points],
        )


@pytest.mark.parametrize("method", list(METHODS))
def test_scoring_in_chunks_equals_one_run(
    nodus_home: Path, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    _fill(nodus_home, 9000)

    def run() -> tuple[list[np.ndarray], list[tuple[object, ...]]]:
        with open_store(Workspace(nodus_home, "test")) as store:
            result = detect(store, parse_series("load"), method_name=method, from_scratch=True)
            saved = store.con.execute(
                "SELECT time, value, score, reason FROM anomalies WHERE method = ? ORDER BY time",
                [method],
            ).fetchall()
        return [getattr(result.scores, name) for name in SCORE_FIELDS], saved

    whole, whole_saved = run()
    monkeypatch.setattr(detect_module, "CHUNK", 1000)
    chunked, chunked_saved = run()
    for one, other in zip(whole, chunked, strict=True):
        assert np.array_equal(one, other, equal_nan=True)
    assert chunked_saved == whole_saved and whole_saved


def test_hst_on_200k_points_keeps_memory_bounded_whatever_it_finds(
    nodus_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(nodus_home, POINTS)
    few_peak, few = _peak_bytes(nodus_home)
    # Every tenth point an anomaly: what the output and the anomalies table must carry.
    monkeypatch.setattr(
        calibrate, "first_alarms", lambda scores, *_: np.arange(len(scores)) % 10 == 0
    )
    many_peak, many = _peak_bytes(nodus_home)
    assert many >= POINTS // 10 > 100 * max(few, 1) // 100
    assert few_peak < BYTES_PER_POINT * POINTS and many_peak < BYTES_PER_POINT * POINTS
    assert many_peak < 1.25 * few_peak, (few_peak, many_peak)


def test_a_zero_score_is_written_without_a_sign(nodus_home: Path, run_nodus) -> None:
    _fill(nodus_home, 3000)
    done = run_nodus(
        "--home", str(nodus_home), "detect", "load", "--points", "all", "--format", "csv"
    )
    assert done.returncode == 0, done.stderr
    scores = [line.split(",")[2] for line in done.stdout.splitlines()[1:]]
    assert "0.0" in scores and "-0.0" not in scores


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-62_135_596_800_000_000, 253_402_300_799_999_999), max_size=20))
def test_iso_times_are_those_of_python(times: list[int]) -> None:
    expected = [to_datetime(t).isoformat() for t in times]
    assert iso_times(np.array(times, dtype=np.int64)) == expected


@pytest.mark.parametrize("points", ["all", "anomalies"])
def test_streamed_json_document_is_that_of_the_whole_document(
    nodus_home: Path, capsys: pytest.CaptureFixture[str], points: str
) -> None:
    _fill(nodus_home, 3000)
    with open_store(Workspace(nodus_home, "test")) as store:
        results = [
            detect(store, parse_series("load"), method_name=method, from_scratch=True)
            for method in ("auto", "robust")
        ]
    only = points == "anomalies"
    for many in (False, True):
        shown = results if many else results[:1]
        emit_detections(shown, only, many)
        documents = [
            {
                "series": one.series,
                "method": one.method,
                "resumed_after": one.resumed_after,
                "scored": one.scored,
                "last_time": one.last_time,
                "anomalies": one.found,
                "points": [
                    {"time": t, "value": v, "score": s, "anomaly": a, "reason": r or None}
                    for t, v, s, a, r in one.points(only)
                ],
            }
            for one in shown
        ]
        streamed = capsys.readouterr().out
        emit_json({"series": documents} if many else documents[0])
        assert streamed == capsys.readouterr().out
        assert len(
            json.loads(streamed)["series"][0]["points"] if many else json.loads(streamed)["points"]
        ) == (results[0].found if only else 3000)
