"""Log patterns: the miner's invariants, stable ids across runs, orders and kills,
new-pattern checks for CI, and the rule by which a later pattern absorbs an earlier one."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodus_cli.patterns import miner

WORDS = ["alpha", "beta", "gamma", "delta", "user", "from", "port", "=", ":", "(", ")"]
message = st.lists(
    st.one_of(st.sampled_from(WORDS), st.integers(0, 10**6).map(str)), min_size=0, max_size=12
).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(st.lists(message, min_size=1, max_size=40), st.randoms(use_true_random=False))
def test_mining_depends_only_on_the_multiset_of_messages(messages, rng):
    masked = [miner.mask(m) for m in messages]
    shuffled = list(masked)
    rng.shuffle(shuffled)
    first = miner.mine(Counter(masked))
    second = miner.mine(Counter(shuffled))
    assert [(t.text, t.count, sorted(t.messages)) for t in first] == [
        (t.text, t.count, sorted(t.messages)) for t in second
    ]
    # every distinct message lands in exactly one template, and counts add up
    assigned = [m for t in first for m in t.messages]
    assert sorted(assigned) == sorted(set(masked))
    assert sum(t.count for t in first) == len(messages)


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=300))
def test_masking_is_idempotent_and_lines_of_one_shape_share_their_tokens_count(text):
    once = miner.mask(text)
    assert miner.mask(once) == once
    zeroed = "".join("0" if c in "123456789" else c for c in text)
    assert len(miner.tokens(once)) == len(miner.tokens(miner.mask(zeroed)))


# ASCII and not: an Arabic-Indic digit, a no-break space, a vertical tab
MASK_ALPHABET = [*"0123456789aZé:. -/x\t\v()<>=,%KBmsJunMonX_@[]\"'", "\u0661", "\u00a0"]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(MASK_ALPHABET), max_size=60))
def test_duckdb_masks_exactly_as_python_does(text):
    import duckdb

    with duckdb.connect() as con:
        masked = con.execute(f"SELECT {miner.mask_sql('?')}", [text]).fetchone()[0]
    assert masked == miner.mask(text)


@pytest.mark.parametrize(
    ("raw", "body"),
    [
        ("148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block", "PacketResponder"),
        ("- WARN  [QuorumPeer[myid=1]/0:0:0:0:2181:QuorumCnxManager@368] - Cannot open", "Cannot"),
        ("Step_LSC|30002312|onStandStepChanged 3674", "onStandStepChanged"),
        ("[notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties", "workerEnv.init()"),
        ("chrome.exe - proxy.example.org:5070 open through proxy", "<*>"),
        ("plain message without a header", "plain"),
    ],
)
def test_body_drops_the_header_a_format_left(raw, body):
    assert miner.body(miner.mask(raw)).split()[0] == body


def test_variable_values_become_wildcards_and_words_keep_kinds_apart():
    lines = [f"session opened for user u{i:03d} by uid={i}" for i in range(20)]
    lines += [f"session closed for user u{i:03d}" for i in range(20)]
    lines += [
        f"Accepted password for {u} from 10.0.0.{i} port {i} ssh2"
        for i, u in enumerate(["root", "alice", "bob", "carol", "dave", "erin"])
    ]
    templates = miner.mine(Counter(miner.mask(x) for x in lines))
    texts = sorted(t.text for t in templates)
    assert texts == [
        "Accepted password for <*> from <*> port <*> ssh2",
        "session closed for user <*>",
        "session opened for user <*> by uid=<*>",
    ]


def test_a_variable_that_is_sometimes_empty_or_longer_is_one_pattern():
    lines = [f"connection from 10.0.0.{i} () at 12:00:0{i}" for i in range(5)]
    lines += [
        f"connection from 10.0.1.{i} (h{c}.example.org) at 12:01:0{i}"
        for i, c in enumerate("abcdef")
    ]
    lines += [
        "close, 0 bytes sent, lifetime 00:01",
        "close, 1190 bytes (1.16 KB) sent, lifetime <1 sec",
    ]
    templates = miner.mine(Counter(miner.mask(x) for x in lines))
    assert len(templates) == 2, [t.text for t in templates]


# --- through the store and the CLI -----------------------------------------------------


def _log(path: Path, lines: list[tuple[str, str, str]]) -> Path:
    with path.open("w") as handle:
        for ts, level, msg in lines:
            handle.write(json.dumps({"ts": ts, "level": level, "msg": msg}) + "\n")
    return path


def _day(tmp: Path, name: str, day: int, seed: int, users: int = 30) -> Path:
    rng = random.Random(seed)
    rows = []
    for i in range(300):
        ts = f"2026-11-{day:02d}T{i // 60:02d}:{i % 60:02d}:00Z"
        kind = rng.randrange(3)
        user = f"user{rng.randrange(users)}"
        if kind == 0:
            rows.append(
                (ts, "info", f"login ok for {user} from 10.1.{i % 250}.{rng.randrange(250)}")
            )
        elif kind == 1:
            rows.append(
                (ts, "warn", f"slow query took {rng.randrange(100, 999)} ms on shard {i % 7}")
            )
        else:
            rows.append((ts, "info", f"cache miss key={rng.randrange(10**6)}"))
    return _log(tmp / name, rows)


def _current(run_nodus) -> dict[str, int]:
    done = run_nodus("patterns", "--format", "json")
    assert done.returncode == 0, done.stderr
    return {row["id"]: row["count"] for row in json.loads(done.stdout)}


def test_same_ids_whatever_the_order_and_the_runs(run_nodus, tmp_path, monkeypatch):
    files = [_day(tmp_path, f"d{d}.jsonl", d, seed=d) for d in (1, 2, 3)]
    monkeypatch.setenv("NODUS_HOME", str(tmp_path / "one"))
    assert run_nodus("-q", "ingest", *map(str, files)).returncode == 0
    together = _current(run_nodus)
    monkeypatch.setenv("NODUS_HOME", str(tmp_path / "apart"))
    for path in reversed(files):
        assert run_nodus("-q", "ingest", str(path)).returncode == 0
        assert run_nodus("-q", "ingest", str(path)).returncode == 0  # a re-run adds nothing
    assert _current(run_nodus) == together
    assert len(together) == 3 and sum(together.values()) == 900


PATTERN_ROWS = """SELECT id, kind, template, absorbed_by, count, first_seen, last_seen,
    sources, levels::VARCHAR AS levels, example FROM patterns ORDER BY kind, id"""


def test_figures_learned_in_several_passes_add_up_to_those_of_one(run_nodus, tmp_path, monkeypatch):
    # Levels, sources, counts, times and examples of shapes and templates are merged
    # pass by pass: in any order they come to what one pass over every file gives.
    files = [_day(tmp_path, f"d{d}.jsonl", d, seed=d) for d in (1, 2, 3)]
    files.append(
        _log(tmp_path / "errors.jsonl", [("2026-11-04T00:00:00Z", "error", "logout for user7")])
    )

    def table() -> list[dict[str, object]]:
        done = run_nodus("query", PATTERN_ROWS, "--format", "json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    monkeypatch.setenv("NODUS_HOME", str(tmp_path / "one"))
    assert run_nodus("-q", "ingest", *map(str, files)).returncode == 0
    together = table()
    monkeypatch.setenv("NODUS_HOME", str(tmp_path / "apart"))
    for path in [files[2], files[3], files[0], files[1]]:
        assert run_nodus("-q", "ingest", str(path)).returncode == 0
    assert table() == together
    templates = [row for row in together if row["kind"] == "template"]
    assert sum(row["count"] for row in templates) == 901
    levels = Counter[str]()
    for row in templates:
        levels.update(json.loads(row["levels"]))
    assert levels["error"] >= 1 and sum(levels.values()) == 901
    assert {s for row in templates for s in row["sources"]} == {p.name for p in files}


def test_rows_a_killed_run_left_unlearned_are_learned_next_time(run_nodus, tmp_path):
    path = _day(tmp_path, "d1.jsonl", 1, seed=1)
    # --no-patterns commits the rows and stops before learning, as a kill there would
    assert run_nodus("-q", "ingest", "--no-patterns", str(path)).returncode == 0
    learned = run_nodus("query", "SELECT count(*) AS n FROM patterns", "--format", "csv")
    assert learned.stdout.splitlines()[1] == "0"
    assert sum(_current(run_nodus).values()) == 300


def test_new_since_and_fail_on_new(run_nodus, tmp_path):
    old = _day(tmp_path, "old.jsonl", 1, seed=1)
    assert run_nodus("-q", "ingest", str(old)).returncode == 0
    quiet = run_nodus("patterns", "--new-since", "2026-11-02T00:00:00Z", "--fail-on-new")
    assert quiet.returncode == 0, quiet.stderr
    fresh = _log(
        tmp_path / "new.jsonl",
        [("2026-11-02T10:00:00Z", "error", f"disk full on /dev/sd{c}") for c in "abcdef"],
    )
    assert run_nodus("-q", "ingest", str(fresh)).returncode == 0
    listed = run_nodus("patterns", "--new-since", "2026-11-02T00:00:00Z", "--format", "json")
    rows = json.loads(listed.stdout)
    assert [r["template"] for r in rows] == ["disk full on <*>"]
    failed = run_nodus("patterns", "--new-since", "2026-11-02T00:00:00Z", "--fail-on-new")
    assert failed.returncode == 1
    assert "1 new pattern" in failed.stderr


def test_a_later_pattern_absorbs_an_earlier_one_and_old_rows_follow(run_nodus, tmp_path):
    # Three users: too few to be sure "user" varies, so each is its own pattern...
    first = _log(
        tmp_path / "a.jsonl",
        [
            (f"2026-11-01T00:00:0{i}Z", "info", f"backup done for {u}")
            for i, u in enumerate(["alice", "bob", "carol"])
        ],
    )
    assert run_nodus("-q", "ingest", str(first)).returncode == 0
    before = _current(run_nodus)
    assert len(before) == 3
    # ...until more users show it is a variable: one pattern absorbs the three.
    more = _log(
        tmp_path / "b.jsonl",
        [
            (f"2026-11-02T00:00:0{i}Z", "info", f"backup done for {u}")
            for i, u in enumerate(["dave", "erin", "frank", "grace"])
        ],
    )
    assert run_nodus("-q", "ingest", str(more)).returncode == 0
    after = _current(run_nodus)
    assert list(after.values()) == [7]
    (current,) = after
    shown = run_nodus("patterns", "show", next(iter(before))[:8], "--json")
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert detail["id"] == current and detail["template"] == "backup done for <*>"
    assert sorted(detail["absorbed"]) == sorted(before)
    # rows are never rewritten: the first file's rows keep their shape ids
    rows = run_nodus("query", "SELECT count(*) FROM logs WHERE pattern_id IS NULL", "-f", "csv")
    assert rows.stdout.splitlines()[1] == "0"


def test_a_line_still_being_written_counts_once_when_complete(run_nodus, tmp_path):
    path = tmp_path / "growing.jsonl"
    done = json.dumps({"ts": "2026-11-01T00:00:00Z", "level": "info", "msg": "job 1 done"})
    path.write_text(done + "\n" + '{"ts": "2026-11-01T00:00:01Z", "level": "info", "msg": "jo')
    assert run_nodus("-q", "ingest", str(path)).returncode == 0
    assert sum(_current(run_nodus).values()) == 1  # the half line is held, not counted
    with path.open("a") as handle:
        handle.write('b 2 done"}\n')
    assert run_nodus("-q", "ingest", str(path)).returncode == 0
    assert _current(run_nodus) == {next(iter(_current(run_nodus))): 2}
    again = run_nodus("-q", "ingest", str(path))
    assert again.returncode == 0 and sum(_current(run_nodus).values()) == 2


def test_detect_finds_a_burst_in_a_patterns_rate(run_nodus, tmp_path):
    rng = random.Random(3)
    rows = []
    burst_minute = 2 * 1440 + 600
    for minute in range(3 * 1440):
        lines = 60 if minute == burst_minute else rng.choice((3, 4, 5, 6, 7))
        for second in range(lines):
            ts = f"2026-11-{1 + minute // 1440:02d}T{minute % 1440 // 60:02d}:{minute % 60:02d}:"
            rows.append(
                (f"{ts}{second % 60:02d}Z", "warn", f"retrying upload {rng.randrange(9999)}")
            )
        rows.append((f"{ts}30Z", "info", f"heartbeat from node{rng.randrange(99)}"))
    path = _log(tmp_path / "burst.jsonl", rows)
    assert run_nodus("-q", "ingest", str(path)).returncode == 0
    listed = json.loads(run_nodus("patterns", "--format", "json").stdout)
    (retry,) = [p["id"] for p in listed if p["template"].startswith("retrying upload")]
    done = run_nodus("detect", "--pattern", retry[:8], "--bucket", "1m", "--format", "json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)  # the anomalies, one row each
    assert any(a["timestamp"].startswith("2026-11-03T10:00") and a["value"] == 60 for a in found)
    # --patterns scores every pattern; the heartbeat's rate never misbehaves
    every = run_nodus("detect", "--patterns", "--from-scratch", "--bucket", "1m", "-f", "csv")
    assert every.returncode == 0, every.stderr
    flagged = {line.split(",")[0] for line in every.stdout.splitlines()[1:]}
    assert f"pattern:{retry}/60s" in flagged, every.stdout + every.stderr


def test_a_pattern_first_seen_in_the_window_is_an_anomaly(run_nodus, tmp_path):
    old = _day(tmp_path, "old.jsonl", 1, seed=1)
    fresh = _log(
        tmp_path / "new.jsonl",
        [("2026-11-02T10:00:00Z", "error", f"disk full on /dev/sd{c}") for c in "abcdef"],
    )
    assert run_nodus("-q", "ingest", str(old), str(fresh)).returncode == 0
    done = run_nodus("detect", "--patterns", "--since", "2026-11-02T00:00:00Z", "--fail-on-anomaly")
    assert done.returncode == 1, done.stderr
    assert "first seen: disk full on <*>" in done.stderr
    saved = run_nodus("query", "SELECT reason FROM anomalies WHERE score = 1", "-f", "csv")
    assert "first seen: disk full on <*>" in saved.stdout
