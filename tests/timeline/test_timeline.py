"""nodus timeline: every kind with its reference, grouped log lines, the ranking before an
incident, and a report that is the same bytes on every run."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from nodus_cli.store import open_store
from nodus_cli.timeline.events import Window, collect
from nodus_cli.timeline.rank import related
from nodus_cli.workspace import find_workspace

T0 = dt.datetime(2026, 11, 3, 14, 0, tzinfo=dt.UTC)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def _incident(tmp_path: Path, run_nodus) -> Path:
    """A config change at 13:50, an anomaly at 14:00, then error lines from 14:02."""
    lines = [
        {
            "ts": at(2 + i / 10).isoformat(),
            "level": "error",
            "msg": f"upstream timeout after {i} ms",
        }
        for i in range(120)
    ] + [{"ts": at(-20).isoformat(), "level": "info", "msg": "steady state"}]
    path = tmp_path / "app.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert run_nodus("-q", "ingest", str(path)).returncode == 0
    workspace = find_workspace()
    with open_store(workspace) as store, store.change({"test": "incident"}):
        con = store.con
        con.execute(
            """INSERT INTO config_generations (target, generation, time, source, status,
                   sha256, size, content, diff)
               VALUES ('/etc/app.toml', 1, ?, 'apply', 'committed', 'x', 1, 'a', '[1, 2]'),
                      ('/etc/app.toml', 0, ?, 'baseline', 'committed', 'y', 1, 'b', NULL)""",
            [at(-10), at(-60)],
        )
        con.execute(
            "INSERT INTO anomalies (series, time, value, score, method, reason)"
            " VALUES ('latency_ms', ?, 900, 0.999, 'auto', 'level shift'),"
            " ('latency_ms', ?, 950, 0.999, 'auto', 'still high'),"
            " ('errors', ?, 40, 0.9, 'auto', 'burst')",
            [at(0), at(1), at(3)],
        )
        con.execute(
            """INSERT INTO journal (time, command, args, outcome, summary)
               VALUES (?, 'config apply', '[]', 'ok', '{}')""",
            [at(-10)],
        )
        con.execute(
            "INSERT INTO audit_checkpoints VALUES ('release', 3, 'r', 'd', 'c', 'rel.bundle', ?)",
            [at(-5)],
        )
    log = workspace.keyring_dir / "log.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(
        json.dumps({"time": at(-30).isoformat(), "event": "rotate", "key": "k1", "purpose": "sign"})
        + "\n"
    )
    return workspace.keyring_dir / "log.jsonl"


def test_every_kind_appears_with_a_reference_and_repeated_lines_are_grouped(tmp_path, run_nodus):
    key_log = _incident(tmp_path, run_nodus)
    with open_store(find_workspace(), read_only=True) as store:
        events = collect(store.con, Window(at(-60), at(60)), key_log)
    kinds = {e.kind for e in events}
    assert {"logs", "anomalies", "config", "keys", "audit", "journal", "patterns"} <= kinds
    assert all(e.ref for e in events)
    (errors,) = [e for e in events if e.kind == "logs"]
    assert errors.count == 120 and errors.summary.startswith("×120 upstream timeout after")  # noqa: RUF001
    assert errors.time == at(2) and errors.last == at(2 + 11.9)
    assert "app.jsonl:1" in errors.ref and "nodus patterns show" in errors.ref
    (config,) = [e for e in events if e.kind == "config"]  # the baseline is no event
    assert config.ref == "nodus config show /etc/app.toml --generation 1"
    assert "info" not in {e.level for e in events if e.kind == "logs"}  # warn and above


def test_a_change_before_the_incident_ranks_first(tmp_path, run_nodus):
    key_log = _incident(tmp_path, run_nodus)
    with open_store(find_workspace(), read_only=True) as store:
        events = collect(store.con, Window(at(-30), at(30)), key_log)
    ranked = related(events, at(5), dt.timedelta(minutes=30))
    assert ranked[0].event.kind == "config" and ranked[0].minutes_before == 15
    anomalies = [r for r in ranked if r.event.kind == "anomalies"]
    assert [r.event.source for r in anomalies] == ["latency_ms", "errors"]  # first of each
    whys = [r.why for r in ranked[: len(ranked) - len(anomalies)]]
    assert whys == sorted(whys, key=lambda w: w != "change made")
    assert "change seen" in whys  # the error lines were a new pattern: ranked after


def test_the_report_is_the_same_bytes_each_run(tmp_path, run_nodus):
    _incident(tmp_path, run_nodus)
    pages = []
    for name in ("a.html", "b.html"):
        done = run_nodus(
            "timeline",
            "--around",
            at(5).isoformat(),
            "--window",
            "30m",
            "--report",
            str(tmp_path / name),
            "--format",
            "csv",
        )
        assert done.returncode == 0, done.stderr
        pages.append((tmp_path / name).read_bytes())
    assert pages[0] == pages[1]
    assert b"<script" not in pages[0] and b"http" not in pages[0].replace(b"http://www.w3.org", b"")
    assert b"generation 1 applied" in pages[0]


def test_as_of_shows_the_store_as_it_was_before_an_ingest_and_a_detect_run(tmp_path, run_nodus):
    import time

    from nodus_cli.store.asof import shadow_as_of

    first = tmp_path / "a.jsonl"
    first.write_text(json.dumps({"ts": at(0).isoformat(), "level": "error", "msg": "a"}) + "\n")
    assert run_nodus("-q", "ingest", str(first)).returncode == 0
    time.sleep(0.05)
    between = dt.datetime.now(dt.UTC)
    time.sleep(0.05)
    second = tmp_path / "b.jsonl"
    second.write_text(json.dumps({"ts": at(1).isoformat(), "level": "error", "msg": "b"}) + "\n")
    assert run_nodus("-q", "ingest", str(second)).returncode == 0
    with open_store(find_workspace()) as store, store.change({"test": "detect"}):
        store.con.execute(
            "INSERT INTO anomalies (series, time, value, score, method, reason)"
            " VALUES ('cpu', ?, 1, 0.999, 'auto', 'x')",
            [at(1)],
        )
    with open_store(find_workspace(), read_only=True) as store:
        assert store.con.execute("SELECT count(*) FROM logs").fetchone()[0] == 2
        shadow_as_of(store.con, between)
        assert store.con.execute(
            "SELECT msg FROM (SELECT message AS msg FROM logs)"
        ).fetchall() == [("a",)]
        assert store.con.execute("SELECT count(*) FROM anomalies").fetchone()[0] == 0
    done = run_nodus(
        "timeline",
        "--since",
        at(-5).isoformat(),
        "--until",
        at(5).isoformat(),
        "--as-of",
        between.isoformat(),
        "--kinds",
        "logs,anomalies",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    events = json.loads(done.stdout)["events"]
    assert [(e["kind"], e["summary"]) for e in events] == [
        ("logs", "a"),
        ("source", "new source a.jsonl"),  # b.jsonl came after the moment
    ]
