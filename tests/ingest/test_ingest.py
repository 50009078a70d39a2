"""`nodus ingest`, `nodus sources`, `nodus quarantine` and the ingest library."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodus_cli.errors import InputError
from nodus_cli.ingest import engine
from nodus_cli.ingest.engine import IngestOptions, ingest
from nodus_cli.ingest.lines import WindowLines
from nodus_cli.ingest.redact import pseudonym
from nodus_cli.ingest.source import _read_up_to, windows
from nodus_cli.store import Store, open_store
from nodus_cli.workspace import Workspace

LOGHUB_LEVELS = {
    "Android",
    "Apache",
    "BGL",
    "HDFS",
    "Hadoop",
    "OpenStack",
    "Spark",
    "Windows",
    "Zookeeper",
}
LOGHUB = [
    "Android",
    "Apache",
    "BGL",
    "HDFS",
    "HPC",
    "Hadoop",
    "HealthApp",
    "Linux",
    "Mac",
    "OpenSSH",
    "OpenStack",
    "Proxifier",
    "Spark",
    "Thunderbird",
    "Windows",
    "Zookeeper",
]


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws", "test").ensure()


@pytest.fixture
def store(workspace: Workspace) -> Iterator[Store]:
    with open_store(workspace) as opened:
        yield opened


def run(store: Store, *paths: Path | str, **options: object) -> dict:
    report = ingest(store, [str(p) for p in paths], IngestOptions(**options))  # type: ignore[arg-type]
    return {Path(f.path).name if f.path != "-" else "-": f for f in report.files}


def count(store: Store, sql: str, params: list | None = None) -> int:
    return store.con.execute(sql, params or []).fetchone()[0]


def table(store: Store, name: str) -> list[tuple]:
    """A table's content; ``committed_at`` says when a row came, not what it holds."""
    stamped = name in ("logs", "metrics", "quarantine")
    columns = "* EXCLUDE (committed_at)" if stamped else "*"
    if name == "ingest_files":
        columns = "file_id, path, byte_offset, line_no, rows"
    return store.con.execute(f"SELECT {columns} FROM {name} ORDER BY ALL").fetchall()


# --- formats ------------------------------------------------------------------------


@pytest.mark.parametrize("system", LOGHUB)
def test_loghub_systems_parse_times_and_levels(store: Store, shared: Path, system: str) -> None:
    path = shared / "data" / "loghub" / system / f"{system}_2k.log"
    result = run(store, path)[path.name]
    assert result.status == "ingested", result.error
    assert result.rows + result.quarantined == result.records
    total, timed, levelled = store.con.execute(
        "SELECT count(*), count(time), count(level) FROM logs"
    ).fetchone()
    assert total == result.rows and total >= 1400
    assert timed >= 0.99 * total, (system, result.format, result.layout)
    if system in LOGHUB_LEVELS:
        assert levelled >= 0.99 * total, (system, result.layout)
    assert count(store, "SELECT count(*) FROM logs WHERE time < '2000-01-01'") == 0


def test_access_log_sample_has_one_cut_short_line(store: Store, shared: Path) -> None:
    path = shared / "data" / "samples" / "access_log" / "elastic_examples_apache_logs.gz"
    result = run(store, path)[path.name]
    assert (result.format, result.rows, result.quarantined) == ("combined", 9999, 1)
    line_no, raw, reason = store.con.execute(
        "SELECT line_no, raw, reason FROM quarantine"
    ).fetchone()
    assert line_no == 8899 and raw.startswith("46.118.127.106") and "access log" in reason
    status = store.con.execute(
        "SELECT attrs->>'status', count(*) FROM logs GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
    ).fetchone()
    assert status[0] == "200"


def test_syslog_and_prometheus_samples(store: Store, shared: Path) -> None:
    results = run(store, shared / "data" / "samples")
    expected = {
        "simple_syslog_many_ise.txt": ("syslog", 308, 0),
        "simple_syslog_many_with_errors.txt": ("syslog", 3, 1),
        "simple_syslog_log_all_with_errors.txt": ("syslog", 1, 3),
        "simple_syslog_log_invalid_whitespaces.txt": ("syslog", 0, 18),
        "simple_syslog_log_missing_pri.txt": ("syslog", 1, 0),
        "simple_syslog_log_mix.txt": ("syslog", 3, 0),
        "simple_syslog_log_with_bom.txt": ("syslog", 1, 0),
        "client_golang_random_alltypes.5mfs.om.txt": ("openmetrics", 53, 0),
        "prometheus_demo_alltypes.237mfs.prom.txt": ("prometheus", 1857, 0),
    }
    for name, want in expected.items():
        got = results[name]
        assert (got.format, got.rows, got.quarantined) == want, name
    bom = store.con.execute(
        "SELECT message, app, host, attrs->>'structured_data', attrs->>'procid', level FROM logs l "
        "JOIN ingest_files f USING (file_id) WHERE f.path LIKE '%with_bom%'"
    ).fetchone()
    assert bom[:3] == ("Removing instance", "d0602076-b14a-4c55-852a-981e7afeed38", "loggregator")
    assert bom[3].startswith("[exampleSDID@32473 iut=") and bom[4] == "DEA" and bom[5] == "info"
    assert count(store, "SELECT count(*) FROM metrics WHERE series = 'go_build_info'") == 1
    assert count(store, "SELECT count(*) FROM metrics WHERE isnan(value)") >= 0


def test_every_level_spelling_maps_to_its_level() -> None:
    import duckdb

    from nodus_cli.ingest.formats import LEVEL_MACRO, LEVEL_SPELLINGS

    con = duckdb.connect()
    con.execute(LEVEL_MACRO)
    cases = [
        (written, level)
        for level, spellings in LEVEL_SPELLINGS.items()
        for spelling in spellings
        for written in (spelling, spelling.upper(), f" {spelling.title()} ")
    ]
    cases += [("bogus", None), ("", None), (None, None)]
    con.execute("CREATE TABLE spelled (written VARCHAR, level VARCHAR)")
    con.executemany("INSERT INTO spelled VALUES (?, ?)", cases)
    wrong = con.execute(
        "SELECT written, level, nodus_level(written) FROM spelled "
        "WHERE nodus_level(written) IS DISTINCT FROM level"
    ).fetchall()
    assert wrong == []
    assert con.execute("SELECT nodus_level(6), nodus_level(3)").fetchone() == ("info", "error")


def test_json_logfmt_and_levels(store: Store, tmp_path: Path) -> None:
    jsonl = tmp_path / "app.log"
    jsonl.write_text(
        '{"@timestamp": "2026-01-02T03:04:05Z", "severity": "WARNING", "message": "disk", '
        '"host": "web-1", "pid": 42, "extra": {"a": 1}}\n'
        '{"@timestamp": 1767323045, "severity": "err", "message": "boom"}\n'
        "not json at all\n"
        "[1, 2]\n"
    )
    logfmt = tmp_path / "svc.txt"
    logfmt.write_text(
        'time=2026-01-02T03:04:05Z level=info msg="hello world" user=ann\n'
        "time=2026-01-02T03:04:06Z level=debug msg=plain n=3\n"
    )
    results = run(store, jsonl, logfmt)
    assert results["app.log"].format == "jsonl"
    assert (results["app.log"].rows, results["app.log"].quarantined) == (2, 2)
    assert results["svc.txt"].format == "logfmt" and results["svc.txt"].rows == 2
    rows = store.con.execute(
        "SELECT level, host, pid, message, attrs, time FROM logs ORDER BY file_id, line_no"
    ).fetchall()
    assert rows[0][:4] == ("warn", "web-1", 42, "disk")
    assert json.loads(rows[0][4]) == {"extra": {"a": 1}}
    assert rows[1][0] == "error" and rows[1][5] == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert rows[2][3] == "hello world" and json.loads(rows[2][4]) == {"user": "ann"}
    assert rows[3][0] == "debug"


def test_odd_json_lines_are_kept_or_quarantined_never_fail_the_window(
    store: Store, tmp_path: Path
) -> None:
    """Lines reach DuckDB typed JSON but unvalidated: whatever does not parse is quarantined."""
    stamp = '"ts": "2026-01-01T00:00:00Z", "level": "info", "msg": "m"'
    lines = {
        "plain": f'{{{stamp}, "x": 1}}',
        "infinity": f'{{{stamp}, "x": -Infinity}}',
        "trailing comma": f'{{{stamp}, "x": 1,}}',
        "duplicate key": f'{{{stamp}, "x": 1, "x": 2}}',
        "nested": f'{{{stamp}, "x": {{"ts": "inner", "msg": "kept"}}}}',
        "leading blank": f'  {{{stamp}, "x": 1}}',
        "comment": f'{{{stamp} /* c */, "x": 1}}',
        "trailing text": f'{{{stamp}, "x": 1}} and more',
        "cut short": f'{{{stamp}, "x": 1',
        "single quotes": f"{{{stamp}, 'x': 1}}",
        "array": "[1, 2]",
        "string": '"text"',
        "not json": "text {",
    }
    path = tmp_path / "odd.jsonl"
    path.write_text("\n".join(lines.values()) + "\n")
    result = run(store, path, format="jsonl")["odd.jsonl"]
    kept = store.con.execute("SELECT line_no, attrs FROM logs ORDER BY line_no").fetchall()
    names = list(lines)
    assert {names[line_no - 1]: json.loads(attrs) for line_no, attrs in kept} == {
        "plain": {"x": 1},
        "infinity": {"x": float("-inf")},
        "trailing comma": {"x": 1},
        "duplicate key": {"x": 2},
        "nested": {"x": {"ts": "inner", "msg": "kept"}},
        "leading blank": {"x": 1},
    }
    quarantined = store.con.execute("SELECT line_no FROM quarantine ORDER BY line_no").fetchall()
    assert [names[line_no - 1] for (line_no,) in quarantined] == names[6:]
    assert (result.rows, result.quarantined) == (6, 7)


def test_csv_series_naming(store: Store, tmp_path: Path) -> None:
    single = tmp_path / "cpu.csv"
    single.write_text("time,value\n2026-01-01T00:00:00Z,1.5\n2026-01-01T00:01:00Z,2.5\n")
    multi = tmp_path / "node.csv"
    multi.write_text(
        "timestamp,host,load,mem\n1767225600,web-1,0.5,70\n1767225660,web-2,0.7,\n"
        "1767225720,web-3,oops,1\n"
    )
    results = run(store, single, multi)
    assert (results["cpu.csv"].rows, results["node.csv"].rows) == (2, 2)
    assert results["node.csv"].quarantined == 1
    series = dict(store.con.execute("SELECT series, count(*) FROM metrics GROUP BY 1").fetchall())
    assert series == {"cpu": 2, "node.load": 2, "node.mem": 1}
    labels = store.con.execute(
        "SELECT labels->>'host' FROM metrics WHERE series = 'node.load' ORDER BY time"
    ).fetchall()
    assert labels == [("web-1",), ("web-2",)]
    other = tmp_path / "other.csv"
    other.write_text("when,value\n2026-01-01T00:00:00Z,3\n")
    run(store, other, series="temperature", time_column="when")
    assert count(store, "SELECT count(*) FROM metrics WHERE series = 'temperature'") == 1


def test_yearless_lines_wrap_back_at_new_year(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "messages"
    path.write_text("Dec 31 23:59:58 h app: last\nJan  1 00:00:02 h app: first\n")
    stamp = datetime(2026, 1, 2, tzinfo=UTC).timestamp()
    os.utime(path, (stamp, stamp))
    run(store, path)
    times = [r[0] for r in store.con.execute("SELECT time FROM logs ORDER BY line_no").fetchall()]
    assert [t.year for t in times] == [2025, 2026]


def test_tz_applies_to_naive_times_only(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "t.log"
    path.write_text("2026-06-01 12:00:00 INFO naive\n2026-06-01T12:00:00Z INFO explicit\n")
    run(store, path, tz="Europe/Berlin")
    times = store.con.execute("SELECT time FROM logs ORDER BY line_no").fetchall()
    assert times[0][0] == datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    assert times[1][0] == datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


# --- line handling ------------------------------------------------------------------


def test_multiline_records_join_including_at_end_of_file(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "java.log"
    path.write_text(
        "2026-01-01 00:00:00,001 ERROR [main] boom\n"
        "java.lang.IllegalStateException: bad\n"
        "\tat a.b.C.run(C.java:1)\n"
        "2026-01-01 00:00:01,000 INFO [main] ok\n"
        "2026-01-01 00:00:02,000 ERROR [main] python\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "ValueError: nope"
    )
    result = run(store, path, window_bytes=64)["java.log"]
    assert (result.records, result.rows, result.quarantined) == (3, 3, 0)
    rows = store.con.execute("SELECT line_no, level, message FROM logs ORDER BY 1").fetchall()
    assert [r[0] for r in rows] == [1, 4, 5]
    assert rows[0][2].endswith("\tat a.b.C.run(C.java:1)") and rows[0][1] == "error"
    assert rows[2][2].endswith("ValueError: nope")


def test_continuation_lines_written_later_join_their_record(store: Store, tmp_path: Path) -> None:
    full = (
        "2026-01-01 00:00:00,001 ERROR [main] boom\n"
        "java.lang.IllegalStateException: bad\n"
        "\tat a.b.C.run(C.java:1)\n"
        "2026-01-01 00:00:01,000 INFO [main] ok\n"
    )
    path = tmp_path / "app.log"
    cut = full.index("java.lang")
    path.write_text(full[:cut])  # the writer has not finished the stack trace yet
    run(store, path)
    with path.open("a") as handle:
        handle.write(full[cut:])
    appended = run(store, path)["app.log"]
    assert (appended.records, appended.rows, appended.quarantined) == (1, 1, 0)
    clean = tmp_path / "clean" / "app.log"
    clean.parent.mkdir()
    clean.write_text(full)
    with open_store(Workspace(tmp_path / "ws2", "test")) as other:
        run(other, clean)
        assert table(store, "logs") == table(other, "logs")
    assert table(store, "quarantine") == []


def test_a_record_longer_than_a_window_stays_one_record(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "long.log"
    trace = "".join(f"\tat frame{i}.run(F.java:{i})\n" for i in range(40))
    path.write_text(f"2026-01-01 00:00:00,001 ERROR [main] deep\n{trace}2026-01-01 00:00:01 x\n")
    result = run(store, path, window_bytes=64)["long.log"]
    assert (result.records, result.rows, result.quarantined) == (2, 2, 0)
    message = store.con.execute("SELECT message FROM logs WHERE line_no = 1").fetchone()[0]
    assert message.count("\n") == 40 and message.endswith("F.java:39)")


def test_continuation_of_a_quarantined_record_joins_its_raw_line(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "sys.log"
    path.write_text("<34>Oct 11 22:14:15 host app: fine\nnot-a-syslog-line\n")
    first = run(store, path, format="syslog")["sys.log"]
    assert (first.rows, first.quarantined) == (1, 1)
    with path.open("a") as handle:
        handle.write("  still part of it\n")
    again = run(store, path, format="syslog")["sys.log"]
    assert (again.records, again.quarantined) == (0, 0)
    raw = store.con.execute("SELECT raw FROM quarantine").fetchone()[0]
    assert raw == "not-a-syslog-line\n  still part of it"


def test_crlf_and_missing_final_newline(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "win.log"
    data = b'{"msg": "a"}\r\n\r\n{"msg": "b"}\r\n{"msg": "c"}'
    path.write_bytes(data)
    result = run(store, path)["win.log"]
    assert (result.records, result.rows) == (3, 3)
    rows = store.con.execute("SELECT line_no, byte_offset, message FROM logs ORDER BY 1").fetchall()
    assert rows == [(1, 0, "a"), (3, 16, "b"), (4, 30, "c")]
    for _, offset, message in rows:
        assert data[offset:].startswith(b'{"msg": "' + message.encode())


def test_gzip_recognised_by_magic_bytes(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "access.log.1"
    line = '10.0.0.1 - - [18/Nov/2026:00:09:54 +0000] "GET / HTTP/1.1" 200 5 "-" "curl"\n'
    path.write_bytes(gzip.compress((line * 5).encode()))
    result = run(store, path)["access.log.1"]
    assert (result.format, result.rows) == ("combined", 5)
    assert store.con.execute("SELECT compression FROM ingest_files").fetchone()[0] == "gzip"
    assert run(store, path)["access.log.1"].status == "unchanged"


def test_stdin(store: Store) -> None:
    data = b'{"ts": "2026-01-01T00:00:00Z", "msg": "from a pipe"}\n'
    report = ingest(store, ["-"], stdin=io.BytesIO(data))
    assert report.files[0].rows == 1 and report.files[0].path == "-"
    assert store.con.execute("SELECT source FROM logs").fetchone()[0] == "stdin"
    again = ingest(store, ["-"], stdin=io.BytesIO(data + data))
    assert again.files[0].rows == 1  # only the new line


def test_invalid_utf8_and_control_bytes_keep_offsets(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "odd.log"
    data = b"2026-01-01 00:00:00 INFO caf\xe9 \x01 x\n2026-01-01 00:00:01 INFO next\n"
    path.write_bytes(data)
    result = run(store, path)["odd.log"]
    assert result.rows == 2
    offsets = [
        r[0] for r in store.con.execute("SELECT byte_offset FROM logs ORDER BY 1").fetchall()
    ]
    assert offsets == [0, data.index(b"2026", 1)]


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=200).map(lambda b: b.replace(b"a", b"\n").replace(b"b", b"\r")),
    offset=st.integers(0, 10**12),
    before=st.integers(0, 10**9),
)
def test_window_lines_match_a_plain_split(data: bytes, offset: int, before: int) -> None:
    """Lines, numbers and offsets as DuckDB scans them equal a byte-by-byte split."""
    import duckdb

    expected, start = [], 0
    for number, piece in enumerate(
        data.split(b"\n")[: data.count(b"\n") + (not data.endswith(b"\n"))]
    ):
        text = piece[:-1] if piece.endswith(b"\r") else piece
        text = text.decode("utf-8", "replace")
        # a line of only NULs is a record marked by SUB characters; other NULs are spaces
        text = "\x1a" * len(text) if text and not text.strip("\0") else text.replace("\0", " ")
        expected.append((text, before + number + 1, offset + start))
        start += len(piece) + 1
    lines = WindowLines(data, offset, before) if data else None
    if lines is None:
        return
    con = duckdb.connect()
    con.register("window_lines", lines)
    scanned = con.execute("SELECT line, line_no, byte_offset FROM window_lines").fetchall()
    assert scanned == expected and lines.count == len(expected)
    blank = any(not text or text[0] in " \t\r" for text, _, _ in expected)
    assert lines.maybe_blank == blank


def test_a_window_buffer_is_read_into_again_only_once_nothing_points_into_it() -> None:
    """Buffers are reused for speed; a window still scanned must never be overwritten."""
    import duckdb

    data = b"".join(b"line %d\n" % i for i in range(200))
    cut = windows(io.BytesIO(data), 256, None)
    buffers: list[bytearray] = []
    alive: list[tuple[int, WindowLines]] = []  # (byte offset, lines)
    offset = count = 0
    for release in (False, True, False):
        buffers.append(next(cut))  # type: ignore[arg-type]
        alive.append((offset, WindowLines(buffers[-1], offset, count)))
        offset, count = offset + alive[-1][1].size, count + alive[-1][1].count
        if release:
            alive.pop(0)[1].release()
    assert buffers[2] is buffers[0]  # the first window was released: read into again
    buffers.append(next(cut))  # type: ignore[arg-type]
    assert all(buffers[3] is not earlier for earlier in buffers[:3])  # two still hold views
    con = duckdb.connect()
    for start, lines in alive:  # the windows still alive kept their text
        con.register("scanned", lines)
        query = "SELECT string_agg(line || chr(10), '' ORDER BY line_no) FROM scanned"
        assert con.execute(query).fetchall()[0][0].encode() == data[start : start + lines.size]
        con.unregister("scanned")
    released = WindowLines(buffers[3], offset, count)
    released.release()
    with pytest.raises(RuntimeError, match="released"):
        released.__arrow_c_stream__()


def test_a_short_read_returns_only_the_bytes_read() -> None:
    """A new buffer is left uninitialised for speed: none of that memory may show."""
    assert _read_up_to(io.BytesIO(b"abc"), 1 << 20) == b"abc"
    assert _read_up_to(io.BytesIO(b""), 1 << 20) == b""
    buffer = _read_up_to(io.BytesIO(b"abc"), 16)
    assert sys.getrefcount(buffer) == 2  # ours and the call's: the C API's reference is not leaked


def test_a_line_too_long_to_address_fails_the_file_by_name(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lines are string views with 32-bit offsets: a longer window is refused, not cut."""
    from nodus_cli.ingest import lines

    monkeypatch.setattr(lines, "MAX_WINDOW", 4096)
    path = tmp_path / "long.jsonl"
    path.write_text(jsonl_lines(0, 50) + '{"msg": "' + "x" * 5000 + '"}\n')
    result = run(store, path, window_bytes=512)["long.jsonl"]
    assert result.status == "failed" and "longer than nodus can read" in (result.error or "")
    assert f"line at byte {len(jsonl_lines(0, 50))} " in (result.error or "")
    kept = count(store, "SELECT count(*) FROM logs")  # the windows before it stay committed
    assert 0 < kept < 50 and kept == count(store, "SELECT line_no FROM ingest_files")


# --- exactly once -------------------------------------------------------------------


def jsonl_lines(start: int, stop: int) -> str:
    return "".join(
        f'{{"ts": "2026-01-01T00:00:{i % 60:02d}Z", "level": "info", "msg": "m{i}"}}\n'
        for i in range(start, stop)
    )


def test_small_files_share_a_checkpoint_and_each_big_window_gets_one(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint per file made a directory of small logs about twice as slow.

    The run's last checkpoint is still its own, under its session's settings: left to
    the store's close, DuckDB's vacuum would rewrite the windows' partial row groups.
    """
    checkpoints: list[int] = []
    monkeypatch.setattr(store, "checkpoint", lambda: checkpoints.append(1))
    small = []
    for number in range(5):
        small.append(tmp_path / f"small-{number}.jsonl")
        small[-1].write_text(jsonl_lines(0, 10))
    assert sum(r.rows for r in run(store, *small, window_bytes=1 << 20).values()) == 50
    assert len(checkpoints) == 1  # one for the five files, at the end of the run
    big = tmp_path / "big.jsonl"
    big.write_text(jsonl_lines(0, 60))  # about 4 KiB: 8 windows of 512 bytes
    assert run(store, big, window_bytes=512)["big.jsonl"].rows == 60
    assert len(checkpoints) >= 7


def test_rerun_append_truncate_and_replace(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "app.jsonl"
    path.write_text(jsonl_lines(0, 50))
    assert run(store, path, window_bytes=512)["app.jsonl"].rows == 50
    rerun = run(store, path)["app.jsonl"]
    assert (rerun.status, rerun.rows, rerun.skipped) == ("unchanged", 0, 50)
    with path.open("a") as handle:
        handle.write(jsonl_lines(50, 60))
    appended = run(store, path)["app.jsonl"]
    assert (appended.rows, appended.skipped) == (10, 50)
    assert count(store, "SELECT count(DISTINCT message) FROM logs") == 60
    assert count(store, "SELECT max(line_no) FROM logs") == 60
    path.write_text(jsonl_lines(0, 5))  # truncated: same first KiB? no: shorter file
    truncated = run(store, path)["app.jsonl"]
    assert truncated.rows == 5 and truncated.skipped == 0
    assert count(store, "SELECT count(*) FROM ingest_files") == 2
    path.write_text(jsonl_lines(1000, 1040))  # replaced: the first KiB changed
    assert run(store, path)["app.jsonl"].rows == 40
    assert count(store, "SELECT count(*) FROM ingest_files") == 3


def test_failed_window_keeps_earlier_windows_and_stops_the_reader(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "app.jsonl"
    path.write_text(jsonl_lines(0, 50))
    load = engine._Job._load_window
    calls = []

    def fail_second(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise InputError("disk full")
        return load(self, *args, **kwargs)

    monkeypatch.setattr(engine._Job, "_load_window", fail_second)
    result = run(store, path, window_bytes=512)["app.jsonl"]
    assert result.status == "failed" and "disk full" in (result.error or "")
    committed = count(store, "SELECT line_no FROM ingest_files")
    assert 0 < committed < 50 and count(store, "SELECT count(*) FROM logs") == committed
    assert not [t for t in threading.enumerate() if t.name == "nodus-window-reader"]
    monkeypatch.undo()
    resumed = run(store, path)["app.jsonl"]
    assert resumed.skipped == committed and count(store, "SELECT count(*) FROM logs") == 50


def test_rotation_is_followed_by_content_not_name(store: Store, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    current = logs / "app.jsonl"
    current.write_text(jsonl_lines(0, 40))
    run(store, logs)
    with current.open("a") as handle:
        handle.write(jsonl_lines(40, 45))
    current.rename(logs / "app.jsonl.1")
    current.write_text(jsonl_lines(100, 130))
    (logs / ".hidden").write_text("ignored\n")
    results = run(store, logs)
    assert results["app.jsonl.1"].rows == 5 and results["app.jsonl.1"].skipped == 40
    assert results["app.jsonl"].rows == 30
    assert ".hidden" not in results
    assert count(store, "SELECT count(*) FROM logs") == 75


def test_one_file_by_another_spelling_or_link_is_ingested_once(
    store: Store, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    real = logs / "app.jsonl"
    real.write_text(jsonl_lines(0, 20))
    (tmp_path / "alias.jsonl").symlink_to(real)
    os.link(real, tmp_path / "hard.jsonl")
    dotted = tmp_path / "logs" / ".." / "logs" / "app.jsonl"
    # in one run: the same file named three ways is read once
    results = run(store, real, dotted, tmp_path / "alias.jsonl")
    assert [f.rows for f in results.values()] == [20]
    # in later runs: another spelling, a symlink or a hard link continues the checkpoint
    for spelling in (dotted, tmp_path / "alias.jsonl", tmp_path / "hard.jsonl"):
        with real.open("a") as handle:
            handle.write(jsonl_lines(100, 101))
        (only,) = run(store, spelling).values()
        assert (only.rows, only.skipped) == (1, count(store, "SELECT count(*) FROM logs") - 1)
    assert count(store, "SELECT count(*) FROM logs") == 23
    # a copy is another file, even with the same content
    shutil.copy(real, tmp_path / "copy.jsonl")
    assert run(store, tmp_path / "copy.jsonl")["copy.jsonl"].rows == 23


def test_failed_file_does_not_stop_the_others(cli, tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(jsonl_lines(0, 3))
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    result = cli("ingest", str(tmp_path / "missing.log"), str(binary), str(good), "--json")
    assert result.exit_code == 2
    doc = result.json()
    statuses = {Path(f["path"]).name: f["status"] for f in doc["files"]}
    assert statuses == {"missing.log": "failed", "blob.bin": "failed", "good.jsonl": "ingested"}
    assert "missing.log" in result.stderr and doc["totals"]["rows"] == 3


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(
        st.one_of(
            st.builds(lambda i: f'{{"msg": "ok {i}", "level": "info"}}', st.integers(0, 999)),
            st.text(alphabet='ab{}" \t:é', max_size=12),
        ),
        min_size=1,
        max_size=40,
    ),
    window=st.integers(16, 400),
    crlf=st.booleans(),
)
def test_nothing_lost_property(tmp_path_factory, lines, window, crlf) -> None:
    """rows + quarantined = records, every record once, offsets point at the lines."""
    base = tmp_path_factory.mktemp("prop")
    ws = Workspace(base / "ws", "test")
    path = base / "mixed.jsonl"
    newline = "\r\n" if crlf else "\n"
    data = (newline.join(lines) + newline).encode()
    path.write_bytes(data)
    with open_store(ws) as opened:
        result = run(opened, path, format="jsonl", window_bytes=window)["mixed.jsonl"]
        non_blank = [line for line in lines if line.strip()]
        assert result.records == len(non_blank)
        assert result.rows + result.quarantined == result.records
        found = opened.con.execute(
            "SELECT line_no, byte_offset FROM logs UNION ALL "
            "SELECT line_no, byte_offset FROM quarantine ORDER BY 1"
        ).fetchall()
        starts = [0]
        for line in lines:
            starts.append(starts[-1] + len((line + newline).encode()))
        expected = [(i + 1, starts[i]) for i, line in enumerate(lines) if line.strip()]
        assert found == expected
    shutil.rmtree(base)


# --- privacy ------------------------------------------------------------------------


def test_redaction_is_keyed_stable_and_irreversible(
    store: Store, workspace: Workspace, tmp_path: Path
) -> None:
    first = tmp_path / "a.jsonl"
    first.write_text(
        '{"msg": "login ann@example.com from 10.1.2.3", "user": "ann", "ip": "10.1.2.3"}\n'
        "garbage line from ann@example.com\n"
    )
    second = tmp_path / "b.log"
    second.write_text("2026-01-01 00:00:00 INFO mail to ann@example.com via fe80::1:2\n")
    secret = workspace.secret()
    report = ingest(
        store,
        [str(first), str(second)],
        IngestOptions(redact=["email,ipv4", "ipv6", "user"]),
        secret=secret,
    )
    assert not report.failed
    dump = json.dumps(
        [table(store, name) for name in ("logs", "quarantine", "ingest_files")], default=str
    )
    for original in ("ann@example.com", "10.1.2.3", "fe80::1:2", '"ann"'):
        assert original not in dump
    email = pseudonym(secret, "ann@example.com")
    messages = [r[0] for r in store.con.execute("SELECT message FROM logs").fetchall()]
    assert all(email in m for m in messages)
    attrs = json.loads(
        store.con.execute("SELECT attrs FROM logs WHERE attrs IS NOT NULL").fetchone()[0]
    )
    assert attrs == {"user": pseudonym(secret, "ann"), "ip": pseudonym(secret, "10.1.2.3")}


# --- commands -----------------------------------------------------------------------


def test_cli_ingest_sources_and_quarantine(cli, tmp_path: Path) -> None:
    path = tmp_path / "app.jsonl"
    path.write_text(jsonl_lines(0, 3) + "oops\n")
    result = cli("ingest", str(path), "--source", "checkout")
    assert result.exit_code == 0, result.stderr
    assert "jsonl" in result.stderr and "3 rows" in result.stderr
    doc = cli("ingest", str(path), "--json").json()
    assert doc["files"][0]["status"] == "unchanged" and doc["files"][0]["skipped"] == 4
    sources = cli("sources", "--json").json()
    assert sources[0]["rows"] == 3 and sources[0]["quarantined"] == 1
    assert sources[0]["source"] == "checkout" and len(sources[0]["fingerprint"]) == 64
    quarantined = cli("quarantine", "--source", "checkout", "--json").json()
    assert quarantined == [
        {
            "file_id": 1,
            "path": str(path),
            "source": "checkout",
            "line_no": 4,
            "byte_offset": len(jsonl_lines(0, 3)),
            "reason": "not a JSON object",
            "raw": "oops",
        }
    ]
    assert cli("quarantine", "--source", "nope", "--json").json() == []
    csv_out = cli("sources", "--format", "csv")
    assert csv_out.stdout.startswith("file_id,path,source,format")
    journal = cli("journal", "--json").json()
    assert any(entry["command"] == "ingest" for entry in journal)


def test_cli_stdin_and_bad_options(cli) -> None:
    result = cli("ingest", "-", "--json", input='{"msg": "x"}\n')
    assert result.exit_code == 0, result.stderr
    assert result.json()["files"][0]["rows"] == 1
    assert cli("ingest", "-", "--tz", "Mars/Base", input="{}\n").exit_code == 2
    assert cli("ingest", "-", "--redact", "no such", input="{}\n").exit_code == 2
    assert cli("ingest", "-", "--format", "text", input="no time here\n").exit_code == 2


def test_exposition_samples_without_help_or_type_lines_are_prometheus() -> None:
    from nodus_cli.ingest.sniff import detect

    grepped = 'http_requests_total{code="200"} 1027\nhttp_requests_total{code="500"} 3\nup 1\n'
    assert detect(grepped).format == "prometheus"
    with pytest.raises(InputError):  # two words and a number say nothing of a format
        detect("alpha 12\nbeta 13\n")


def test_a_csv_table_that_is_not_metrics_is_refused_saying_what_csv_needs() -> None:
    """loghub's template tables are CSV with no time or numbers: the error says so."""
    from nodus_cli.ingest.sniff import detect

    templates = "EventId,EventTemplate\nE1,<*>:<*> Served block blk_<*> to /<*>\nE2,x <*>\n"
    with pytest.raises(InputError, match="a CSV table, but nodus reads CSV as metrics"):
        detect(templates)
    with pytest.raises(InputError, match="cannot detect the format"):
        detect("one line of prose\nand another\n")
