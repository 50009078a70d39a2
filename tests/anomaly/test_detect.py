"""nodus detect: streaming scores, saved state, level shifts, flat series, gaps, exit codes."""

from __future__ import annotations

import csv
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodus_cli.anomaly import robust
from nodus_cli.anomaly.detect import detect
from nodus_cli.anomaly.source import parse_series
from nodus_cli.errors import UsageError
from nodus_cli.store import open_store
from nodus_cli.workspace import Workspace

START = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=5)


def cycle_series(n: int, seed: int = 7) -> np.ndarray:
    """A daily cycle with noise, one spike and a level shift."""
    rng = np.random.default_rng(seed)
    index = np.arange(n)
    values = 50 + 20 * np.sin(2 * np.pi * index / 288) + rng.normal(0, 2, n)
    values[n // 2] += 60
    values[3 * n // 4 :] += 40
    return values


def insert_series(home: Path, name: str, values, times=None) -> None:
    """Put points into the metrics table the way ingest would."""
    times = times if times is not None else [START + i * STEP for i in range(len(values))]
    path = home.parent / f"{name}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["time", "value"])
        for when, value in zip(times, values, strict=True):
            writer.writerow([when.isoformat(), "" if value is None else repr(float(value))])
    with open_store(Workspace(home, "test")) as store:
        store.con.execute(
            "INSERT INTO metrics (time, series, labels, value, source)"
            " SELECT time::TIMESTAMPTZ, ?, '{}', value, 'test' "
            "FROM read_csv(?, columns = {'time': 'VARCHAR', 'value': 'DOUBLE'}, header = true)",
            [name, str(path)],
        )


def scores_of(values, splits, what: str = "score") -> np.ndarray:
    """Score ``values`` in chunks cut at ``splits``, carrying state through bytes."""
    state = robust.WindowState()
    times = (np.arange(len(values)) * 300_000_000).astype(np.int64)
    out = []
    bounds = [0, *sorted(set(splits)), len(values)]
    for low, high in itertools.pairwise(bounds):
        scores, state = robust.score_window(state, times[low:high], values[low:high])
        state = robust.WindowState.from_bytes(state.to_bytes())
        out.append(getattr(scores, what))
    return np.concatenate(out)


LONG = cycle_series(robust.BUFFER + 1500)
LONG_SCORES = scores_of(LONG, [])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(1, len(LONG) - 1), min_size=1, max_size=4))
def test_incremental_runs_equal_one_long_run(splits: list[int]) -> None:
    assert np.array_equal(scores_of(LONG, splits), LONG_SCORES)


def test_incremental_cli_runs_equal_one_long_run(cli, nodus_home: Path) -> None:
    insert_series(nodus_home, "load", cycle_series(1200))
    whole = cli("detect", "load", "--points", "all", "--format", "csv", "--method", "auto")
    assert whole.exit_code == 0, whole.stderr
    lines = whole.stdout.splitlines()
    assert lines[0] == "timestamp,value,score,anomaly" and len(lines) == 1201
    parts = []
    for until in ("2026-01-02T10:00:00Z", "2026-01-03T00:00:00Z", None):
        args = ["detect", "load", "--points", "all", "--format", "csv", "--method", "robust"]
        result = cli(*args, *(["--until", until] if until else []))
        assert result.exit_code == 0, result.stderr
        parts.extend(result.stdout.splitlines()[1:])
    single = cli(
        "detect",
        "load",
        "--points",
        "all",
        "--format",
        "csv",
        "--method",
        "robust",
        "--from-scratch",
    )
    assert parts == single.stdout.splitlines()[1:]
    again = cli("detect", "load", "--json")
    assert again.json()["scored"] == 0


def test_spike_and_level_shift_are_found_and_the_new_level_is_learnt() -> None:
    values = cycle_series(4000)
    flagged = np.nonzero(scores_of(values, [], "anomaly"))[0]
    assert 2000 in flagged  # the spike
    assert any(3000 <= i < 3010 for i in flagged)  # the shift, when it happens
    assert not any(i > 3100 for i in flagged)  # then the new level is normal


@pytest.mark.parametrize("level", [0.0, 42.0, -3.5])
def test_constant_series_scores_low_and_a_jump_scores_high(level: float) -> None:
    values = np.full(800, level)
    assert (scores_of(values, [300]) < 0.5).all()
    values[700] = level + 1
    scores = scores_of(values, [])
    assert scores[700] > 0.9 and np.isfinite(scores).all()
    assert np.nonzero(scores_of(values, [], "anomaly"))[0].tolist() == [700]


def test_gaps_in_time_and_missing_values(cli, nodus_home: Path) -> None:
    values = list(cycle_series(900))
    times = [START + i * STEP for i in range(900)]
    times = times[:300] + [t + timedelta(days=2) for t in times[300:]]
    values[10] = None
    insert_series(nodus_home, "gappy", values, times)
    result = cli("detect", "gappy", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["scored"] == 899


def test_anomalies_are_saved_with_reasons(cli, nodus_home: Path) -> None:
    insert_series(nodus_home, "load", cycle_series(2400))
    result = cli("detect", "load", "--json")
    doc = result.json()
    assert doc["anomalies"] >= 1
    found = {p["time"]: p for p in doc["points"]}
    spike = (START + 1200 * STEP).isoformat()
    assert (
        spike in found
        and "robust deviations above the level of the last 40 minutes" in (found[spike]["reason"])
    )
    rows = cli("query", "SELECT series, method, reason FROM anomalies", "--format", "json")
    saved = rows.json()
    assert len(saved) == doc["anomalies"] and saved[0]["series"] == "load"


def test_fail_on_anomaly_exit_codes(cli, nodus_home: Path) -> None:
    insert_series(nodus_home, "load", cycle_series(2400))
    first = cli("detect", "load", "--fail-on-anomaly")
    assert first.exit_code == 1 and "new anomalies" in first.stderr
    second = cli("detect", "load", "--fail-on-anomaly")  # nothing new to score
    assert second.exit_code == 0, second.stderr
    scratch = cli("detect", "load", "--fail-on-anomaly", "--from-scratch")
    assert scratch.exit_code == 1
    saved = cli("query", "SELECT count(*) AS n FROM anomalies", "--format", "json").json()
    assert saved[0]["n"] == first.stdout.count(" true ")


def test_quiet_series_does_not_fail(cli, nodus_home: Path) -> None:
    insert_series(nodus_home, "flat", [5.0] * 500)
    result = cli("detect", "flat", "--fail-on-anomaly", "--json")
    assert result.exit_code == 0 and result.json()["anomalies"] == 0


@pytest.mark.parametrize("method", ["auto", "robust", "hst"])
def test_a_window_without_points_scores_nothing(cli, nodus_home: Path, method: str) -> None:
    insert_series(nodus_home, "load", cycle_series(300))
    result = cli("detect", "load", "--method", method, "--since", "2100-01-01", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["anomalies"] == 0


def test_missing_series_and_bad_usage_exit_2(cli, nodus_home: Path) -> None:
    insert_series(nodus_home, "load", [1.0, 2.0, 3.0])
    assert cli("detect", "nope").exit_code == 2
    assert cli("detect", 'load{host="x"}').exit_code == 2
    assert cli("detect").exit_code == 2
    assert cli("detect", "load", "--method", "magic").exit_code == 2
    assert cli("detect", "--sql", "DELETE FROM metrics").exit_code == 2


def test_sql_source_and_label_filter(cli, nodus_home: Path) -> None:
    insert_series(nodus_home, "load", cycle_series(2400))
    with open_store(Workspace(nodus_home, "test")) as store:
        store.con.execute('UPDATE metrics SET labels = \'{"host": "web1"}\'')
    sql = "SELECT time AS t, value * 2 AS v FROM metrics WHERE series = 'load'"
    by_sql = cli("detect", "--sql", sql, "--json").json()
    assert by_sql["series"].startswith("sql:") and by_sql["scored"] == 2400
    labelled = cli("detect", 'load{host="web1"}', "--json").json()
    assert labelled["series"] == 'load{host="web1"}' and labelled["anomalies"] >= 1


def test_series_names_parse() -> None:
    source = parse_series('cpu{env=prod, host="web 1"}')
    assert source.name == "cpu" and source.labels == (("env", "prod"), ("host", "web 1"))
    assert source.key == 'cpu{env="prod",host="web 1"}'
    with pytest.raises(UsageError):
        parse_series("cpu{=x}")


def test_halfspacetrees_method_runs_and_resumes(nodus_home: Path) -> None:
    insert_series(nodus_home, "load", cycle_series(400))
    with open_store(Workspace(nodus_home, "test")) as store:
        first = detect(store, parse_series("load"), method_name="hst", until=START + 200 * STEP)
        second = detect(store, parse_series("load"), method_name="hst")
    assert first.scored == 201 and second.scored == 199
    assert all(0 <= s <= 1 for s in second.scores.score)


def test_a_failed_run_saves_neither_state_nor_anomalies(
    nodus_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """State and anomalies are written in one transaction with the journal row."""
    from nodus_cli.anomaly import methods

    insert_series(nodus_home, "load", cycle_series(2400))
    broken = methods.Method(
        "auto",
        "",
        robust.WindowState,
        methods.METHODS["auto"].score,
        _explode,
        robust.WindowState.from_bytes,
    )
    monkeypatch.setitem(methods.METHODS, "auto", broken)
    with open_store(Workspace(nodus_home, "test")) as store:
        with pytest.raises(RuntimeError):
            detect(store, parse_series("load"))
        counts = store.con.execute(
            "SELECT (SELECT count(*) FROM anomalies), (SELECT count(*) FROM detector_state)"
        ).fetchone()
        outcome = store.con.execute(
            "SELECT outcome FROM journal ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert counts == (0, 0) and outcome == ("error",)


def _explode(_state: object) -> bytes:
    raise RuntimeError("disk on fire")


@pytest.mark.parametrize("delay", [0.05, 0.2, 0.5, 0.9])
def test_killed_runs_leave_a_consistent_store(nodus_home: Path, delay: float) -> None:
    """SIGKILL a child mid-run: a later run still equals one long run from scratch."""
    import os
    import signal
    import time

    insert_series(nodus_home, "load", cycle_series(6000))
    workspace = Workspace(nodus_home, "test")
    cuts = [START + i * STEP for i in range(700, 6000, 700)]
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            with open_store(workspace) as store:
                for cut in cuts:
                    detect(store, parse_series("load"), until=cut)
        finally:
            os._exit(0)
    time.sleep(delay)
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    with open_store(workspace) as store:
        resumed = detect(store, parse_series("load"))
        saved = store.con.execute("SELECT time, score FROM anomalies ORDER BY time").fetchall()
        fresh = detect(store, parse_series("load"), from_scratch=True)
    assert [(a.time, a.score) for a in fresh.anomalies] == saved and resumed.scored <= 6000
