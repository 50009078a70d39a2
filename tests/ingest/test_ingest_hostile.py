"""Ingest against hostile and unlucky input (issue 23): each finding reproduced exactly."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nodus_cli.ingest.engine import IngestOptions, ingest
from nodus_cli.ingest.redact import pseudonym
from nodus_cli.store import Store, open_store
from nodus_cli.workspace import Workspace
from tests.conftest import PROJECT, nodus_command


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws", "test").ensure()


@pytest.fixture
def store(workspace: Workspace) -> Iterator[Store]:
    with open_store(workspace) as opened:
        yield opened


def run(store: Store, *paths: Path | str, secret: bytes | None = None, **options: object):
    report = ingest(store, [str(p) for p in paths], IngestOptions(**options), secret=secret)  # type: ignore[arg-type]
    return {Path(f.path).name: f for f in report.files}


def dump(store: Store) -> str:
    """Every table ingest writes, as one text (what a reader of the store could see)."""
    tables = ("logs", "metrics", "quarantine", "ingest_files")
    return json.dumps(
        [store.con.execute(f"SELECT * FROM {name}").fetchall() for name in tables], default=str
    )


# --- 8: redaction covers every column and nested field ---------------------------------


def test_redaction_leaves_no_value_of_a_kind_or_field_in_clear(
    store: Store, workspace: Workspace, tmp_path: Path
) -> None:
    path = tmp_path / "alice@corp.example.com.jsonl"
    line = {
        "ts": "2026-01-01T00:00:00Z",
        "msg": "from ::1 and 2001:db8:: and 010.001.002.003 mail user@bücher.de",
        "app": "10.9.9.9",
        "User": "bob",
        "ctx": {"user": "eve", "deeper": [{"USER": {"id": "mallory"}}]},
    }
    path.write_text(json.dumps(line, ensure_ascii=False) + "\nbroken line from ::1\n")
    secret = workspace.secret()
    result = run(store, path, secret=secret, redact=["email,ip", "user"])[path.name]
    assert (result.rows, result.quarantined) == (1, 1), result.error
    text = dump(store)
    for clear in (
        "alice@corp.example.com",
        "10.9.9.9",
        "::1",
        "2001:db8::",
        "010.001.002.003",
        "user@bücher.de",
        "bob",
        "eve",
        "mallory",
    ):
        assert clear not in text, clear
    app, source, attrs = store.con.execute("SELECT app, source, attrs FROM logs").fetchone()
    assert app == pseudonym(secret, "10.9.9.9")
    assert source.startswith("anon:") and source.endswith(".jsonl") is False
    attrs = json.loads(attrs)
    assert attrs["User"] == pseudonym(secret, "bob")
    assert attrs["ctx"]["user"] == pseudonym(secret, "eve")
    assert attrs["ctx"]["deeper"][0]["USER"] == pseudonym(secret, '{"id":"mallory"}')
    # the redacted path still finds the file's checkpoint: a re-run adds nothing
    again = run(store, path, secret=secret, redact=["email,ip", "user"])[path.name]
    assert again.status == "unchanged"


def test_redacting_a_field_named_like_a_column_pseudonymises_the_column(
    store: Store, workspace: Workspace, tmp_path: Path
) -> None:
    path = tmp_path / "svc.jsonl"
    path.write_text('{"msg": "m", "hostname": "db-7.internal", "service": "billing"}\n')
    secret = workspace.secret()
    run(store, path, secret=secret, redact=["Hostname", "app"])
    host, app = store.con.execute("SELECT host, app FROM logs").fetchone()
    assert (host, app) == (pseudonym(secret, "db-7.internal"), pseudonym(secret, "billing"))


# --- 11: depth ---------------------------------------------------------------------------


def test_deeply_nested_json_is_ingested_not_a_crash(tmp_path: Path, run_nodus) -> None:
    objects = tmp_path / "objects.jsonl"
    objects.write_bytes(b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"\n")
    arrays = tmp_path / "arrays.jsonl"
    arrays.write_bytes(b'{"msg":"x","a":' + b"[" * 5000 + b"1" + b"]" * 5000 + b"}\n")
    result = run_nodus("ingest", str(objects), str(arrays), "--json")
    assert result.returncode == 0, result.stderr
    totals = json.loads(result.stdout)["totals"]
    assert (totals["rows"], totals["failed"]) == (2, 0)


# --- 13: permissions ---------------------------------------------------------------------


def as_other_user() -> list[str]:
    """A prefix that runs a command without root's power over permission bits.

    Root keeps its uid (so it still reaches the virtualenv and the checkout, which may
    sit in a folder only root can enter, as CI's does) but drops the capabilities that
    let it read or search what others own regardless of their mode bits.
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("tests run as root need setpriv to drop privileges")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all"]


def test_unreadable_directories_are_named_errors_and_the_run_goes_on() -> None:
    base = Path(tempfile.mkdtemp(prefix="nodus-perm-"))
    try:
        (base / "locked").mkdir()
        (base / "locked" / "f.jsonl").write_text('{"msg": "behind a locked door"}\n')
        (base / "tree" / "sub").mkdir(parents=True)
        (base / "tree" / "sub" / "h.jsonl").write_text('{"msg": "unlisted"}\n')
        (base / "tree" / "i.jsonl").write_text('{"msg": "fine"}\n')
        (base / "ok.jsonl").write_text('{"msg": "fine too"}\n')
        home = base / "home"
        home.mkdir()
        os.chmod(base, 0o755)
        for entry in base.rglob("*"):  # the inputs belong to another user; the workspace not
            if os.geteuid() == 0 and home not in (entry, *entry.parents):
                os.chown(entry, 65534, 65534)
        os.chmod(base / "locked", 0o600)  # not searchable: the file inside cannot be reached
        os.chmod(base / "tree" / "sub", 0o000)  # not listable
        env = dict(os.environ, NODUS_HOME=str(home))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT), env.get("PYTHONPATH")]))
        result = subprocess.run(
            [
                *as_other_user(),
                *nodus_command(),
                "ingest",
                str(base / "locked" / "f.jsonl"),
                str(base / "tree"),
                str(base / "ok.jsonl"),
                "--json",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            cwd=base,
        )
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr and "PermissionError" not in result.stderr
        files = {f["path"]: f for f in json.loads(result.stdout)["files"]}
        locked = files[str(base / "locked" / "f.jsonl")]
        assert locked["status"] == "failed" and "permission denied" in locked["error"]
        unlisted = files[str(base / "tree" / "sub")]
        assert unlisted["status"] == "failed" and "cannot list" in unlisted["error"]
        assert files[str(base / "tree" / "i.jsonl")]["rows"] == 1
        assert files[str(base / "ok.jsonl")]["rows"] == 1
    finally:
        for entry in (base / "locked", base / "tree" / "sub"):
            os.chmod(entry, 0o700)
        shutil.rmtree(base)


# --- files that are not regular ----------------------------------------------------------


def test_devices_and_fifos_are_refused_without_reading(tmp_path: Path, run_nodus) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)  # nobody ever writes: reading it would block forever
    good = tmp_path / "good.jsonl"
    good.write_text('{"msg": "x"}\n')
    result = run_nodus("ingest", "/dev/zero", str(fifo), str(good), "--json", timeout=60)
    assert result.returncode == 2, result.stderr
    files = {Path(f["path"]).name: f for f in json.loads(result.stdout)["files"]}
    assert "not a regular file" in files["zero"]["error"]
    assert "not a regular file" in files["pipe"]["error"]
    assert files["good.jsonl"]["rows"] == 1


# --- 7: a log still being written ----------------------------------------------------------


def counts_match(store: Store) -> None:
    """ingest_files' counts are the tables' own: nothing counted twice or lost.

    (Metric rows name no file: for metrics only the quarantine can be compared.)
    """
    kept = store.con.execute(
        """SELECT f.file_id, f.format, f.rows, f.quarantined, f.records,
            (SELECT count(*) FROM logs l WHERE l.file_id = f.file_id),
            (SELECT count(*) FROM quarantine q WHERE q.file_id = f.file_id)
        FROM ingest_files f"""
    ).fetchall()
    for _, fmt, rows, quarantined, records, in_logs, in_quarantine in kept:
        assert rows + quarantined == records
        assert quarantined == in_quarantine
        if fmt not in ("csv", "prometheus", "openmetrics"):
            assert rows == in_logs


def test_a_json_line_completed_after_ingest_is_one_record(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "app.jsonl"
    path.write_bytes(b'{"msg":"one"}\n{"ts":"2026-01-01T00:00:01Z","msg":"tw')
    first = run(store, path)[path.name]
    assert (first.records, first.rows, first.quarantined) == (2, 1, 1)
    assert run(store, path)[path.name].status == "unchanged"  # nothing new: not read again
    with path.open("ab") as handle:
        handle.write(b'o"}\n{"msg":"three"}\n')
    second = run(store, path)[path.name]
    assert (second.replaced, second.records, second.rows, second.quarantined) == (1, 2, 2, 0)
    messages = store.con.execute("SELECT line_no, message FROM logs ORDER BY 1").fetchall()
    assert messages == [(1, "one"), (2, "two"), (3, "three")]
    assert store.con.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 0
    counts_match(store)
    assert run(store, path)[path.name].status == "unchanged"


def test_a_syslog_line_completed_after_ingest_is_one_record(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "messages"
    path.write_bytes(
        b"<34>Oct 11 22:14:15 mymachine su: first\n<34>Oct 11 22:14:16 mymachine su: sec"
    )
    run(store, path, format="syslog")
    with path.open("ab") as handle:
        handle.write(b"ond half\n")
    again = run(store, path, format="syslog")[path.name]
    assert (again.replaced, again.rows, again.quarantined) == (1, 1, 0)
    messages = store.con.execute("SELECT message FROM logs ORDER BY line_no").fetchall()
    assert messages == [("first",), ("second half",)]
    counts_match(store)


def test_a_stack_trace_cut_mid_line_joins_whole(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "server.log"
    start = b"2026-01-01 00:00:00,000 INFO [main] up\n2026-01-01 00:00:01,000 ERROR [main] boom\n"
    path.write_bytes(start + b"java.lang.IllegalStateException: ba")
    run(store, path, window_bytes=64)
    with path.open("ab") as handle:
        handle.write(b"d state\n\tat a.B.c(B.java:1)\n")
    again = run(store, path, window_bytes=64)[path.name]
    assert again.replaced == 1
    rows = store.con.execute("SELECT line_no, message FROM logs ORDER BY 1").fetchall()
    assert rows == [
        (1, "INFO [main] up"),
        (2, "ERROR [main] boom\njava.lang.IllegalStateException: bad state\n\tat a.B.c(B.java:1)"),
    ]
    counts_match(store)


def test_a_file_ending_without_a_newline_keeps_its_last_record(store: Store, shared: Path) -> None:
    path = shared / "data" / "loghub" / "Linux" / "Linux_2k.log"
    assert not path.read_bytes().endswith(b"\n")
    first = run(store, path)[path.name]
    assert first.records == 2000 and first.rows >= 1990
    assert store.con.execute("SELECT max(line_no) FROM logs").fetchone()[0] == 2000
    assert run(store, path)[path.name].status == "unchanged"
    counts_match(store)


# --- 15: values that vanished silently -----------------------------------------------------


def test_unreadable_values_stay_in_attrs_as_written(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "values.jsonl"
    path.write_bytes(
        b'{"msg":"a","pid":1e40,"level":"info"}\n'
        b'{"msg":"b","pid":1e999}\n'
        b'{"msg":"c","ts":"2026-02-30T00:00:00Z","level":"bogus"}\n'
        b'{"msg":"d","ts":"2026-01-01T00:00:00+25:00"}\n'
        b'{"msg":"e","ts":1767323045123456,"pid":7}\n'
        b'{"msg":"f","ts":"2026-01-01T00:00:00+14:00"}\n'
    )
    run(store, path)
    rows = store.con.execute(
        "SELECT message, time IS NOT NULL, level, pid, CAST(attrs AS VARCHAR) FROM logs "
        "ORDER BY line_no"
    ).fetchall()
    assert rows == [
        ("a", False, "info", None, '{"pid":1e40}'),
        ("b", False, None, None, '{"pid":1e999}'),
        ("c", False, None, None, '{"ts":"2026-02-30T00:00:00Z","level":"bogus"}'),
        ("d", False, None, None, '{"ts":"2026-01-01T00:00:00+25:00"}'),
        ("e", True, None, 7, "{}"),
        ("f", True, None, None, "{}"),
    ]


def test_unreadable_times_of_syslog_and_text_stay_in_attrs(store: Store, tmp_path: Path) -> None:
    syslog = tmp_path / "messages"
    syslog.write_bytes(
        b"<34>Feb 30 22:14:15 host su: bad day\n"
        b"<34>1 2026-01-01T00:00:00+25:00 host app - - - offset\n"
    )
    text = tmp_path / "app.log"
    text.write_bytes(b"2026-02-30 00:00:00 INFO impossible\n2026-01-01 00:00:00 INFO fine\n")
    run(store, syslog, format="syslog")
    run(store, text)
    kept = store.con.execute(
        "SELECT time, attrs->>'time' FROM logs ORDER BY file_id, line_no"
    ).fetchall()
    assert kept == [
        (None, "Feb 30 22:14:15"),
        (None, "2026-01-01T00:00:00+25:00"),
        (None, "2026-02-30 00:00:00"),
        (kept[3][0], None),
    ]
    assert kept[3][0] is not None


def test_nul_lines_are_records_and_quarantine_keeps_the_bytes_read(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "odd.jsonl"
    data = b'{"msg":"x"}\n\0\0\0\n\xff\xfe not \0json\r\n{"msg":"caf\xe9"}\n'
    path.write_bytes(data)
    result = run(store, path)[path.name]
    assert (result.records, result.rows, result.quarantined) == (4, 2, 2)
    kept = store.con.execute(
        "SELECT line_no, byte_offset, raw_bytes FROM quarantine ORDER BY 1"
    ).fetchall()
    assert kept == [(2, 12, b"\0\0\0"), (3, 16, b"\xff\xfe not \0json")]
    for _, offset, raw in kept:
        assert data[offset:].startswith(raw)
    multi = tmp_path / "trace.log"
    multi.write_bytes(b"junk \xff\r\nmore\n2026-01-01 00:00:00 INFO ok\n")
    run(store, multi)
    assert store.con.execute(
        "SELECT raw, raw_bytes FROM quarantine WHERE byte_offset = 0"
    ).fetchone() == ("junk \ufffd\nmore", b"junk \xff\r\nmore")


# --- 10: memory ----------------------------------------------------------------------------


def test_a_60_mb_line_is_ingested_and_the_next_file_too(tmp_path: Path, run_nodus) -> None:
    big = tmp_path / "big.jsonl"
    with big.open("w") as out:
        out.write(json.dumps({"ts": "2026-01-01T00:00:00Z", "msg": "x" * 60_000_000}) + "\n")
        out.write('{"msg": "after"}\n')
    small = tmp_path / "small.jsonl"
    small.write_text('{"msg": "later file"}\n')
    result = run_nodus("ingest", str(big), str(small), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [f["rows"] for f in doc["files"]] == [2, 1]


def test_lines_over_max_line_are_quarantined_with_their_offset(tmp_path: Path, run_nodus) -> None:
    path = tmp_path / "app.jsonl"
    long = b'{"msg":"' + b"y" * 5000 + b'"}'
    data = b'{"msg":"a"}\n' + long + b'\n{"msg":"b"}\n' + long * 40 + b'\n{"msg":"c"}\n'
    path.write_bytes(data)
    result = run_nodus("ingest", str(path), "--max-line", "4KiB", "--json")
    assert result.returncode == 0, result.stderr
    totals = json.loads(result.stdout)["totals"]
    assert (totals["records"], totals["rows"], totals["quarantined"]) == (5, 3, 2)
    kept = run_nodus(
        "query",
        "SELECT line_no, byte_offset, reason, raw_bytes FROM quarantine ORDER BY 1",
        "--format",
        "json",
    )
    rows = json.loads(kept.stdout)
    assert [(r["line_no"], r["byte_offset"]) for r in rows] == [(2, 12), (4, 5035)]
    assert all(r["reason"].startswith("line too long (") for r in rows)
    assert run_nodus("ingest", "-", "--max-line", "lots", input="").returncode == 2


def test_a_line_longer_than_the_window_is_read_past_not_kept(store: Store, tmp_path: Path) -> None:
    """Beyond a window the line is not held in memory whole: only its first KiB is kept."""
    path = tmp_path / "app.jsonl"
    data = b'{"msg":"a"}\n{"msg":"' + b"z" * 50_000 + b'"}\n{"msg":"b"}\n{"msg":"' + b"q" * 9000
    path.write_bytes(data)
    result = run(store, path, window_bytes=4096, max_line=6000)[path.name]
    assert (result.records, result.rows, result.quarantined) == (4, 2, 2)
    kept = store.con.execute(
        "SELECT line_no, byte_offset, raw_bytes FROM quarantine ORDER BY 1"
    ).fetchall()
    assert [(line, offset) for line, offset, _ in kept] == [(2, 12), (4, data.index(b'{"msg":"q'))]
    assert all(data[offset:].startswith(raw) and len(raw) == 1024 for _, offset, raw in kept)
    counts_match(store)
    # the cut-off last line is held like any unfinished line: replaced once complete
    with path.open("ab") as handle:
        handle.write(b'"}\n')
    again = run(store, path, window_bytes=4096, max_line=6000)[path.name]
    assert (again.replaced, again.quarantined) == (1, 1)
    counts_match(store)


def test_a_record_that_outgrows_the_memory_limit_gets_a_second_try(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 63 MB Java stack trace, scaled down: a record far longer than any of its lines."""
    from nodus_cli.ingest import engine

    monkeypatch.setattr(engine, "MEMORY_LIMIT", "64MB")
    monkeypatch.setattr(engine, "MEMORY_BYTES", 64 << 20)
    trace = tmp_path / "server.log"
    with trace.open("w") as out:
        out.write("2026-01-01 00:00:00,000 ERROR [main] boom\n")
        out.write("\tat com.example.Foo.bar(Foo.java:123)\n" * 400_000)
        out.write("2026-01-01 00:00:01,000 INFO [main] after\n")
    later = tmp_path / "later.jsonl"
    later.write_text('{"msg": "later"}\n')
    results = run(store, trace, later)
    assert results["server.log"].rows == 2, results["server.log"].error
    assert results["later.jsonl"].rows == 1
    # with no room to grow, the file fails by name and the next one still goes in
    monkeypatch.setattr(engine, "MEMORY_PER_BYTE", 0)
    again = tmp_path / "again.log"
    again.write_text(trace.read_text().replace("boom", "boom again"))
    results = run(store, again, later)
    failed = results["again.log"]
    assert failed.status == "failed" and "more memory" in (failed.error or "")
    assert results["later.jsonl"].status == "unchanged"
    counts_match(store)


# --- fuzz: every format, hostile lines -------------------------------------------------------

SINGLE_LINE = ("jsonl", "logfmt", "clf", "combined", "prometheus", "openmetrics", "csv")
JSON_SCALARS = st.one_of(
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["1e40", "1e999", "-1e999", "2026-02-30T00:00:00Z", "+25:00"]),
    st.text(max_size=8),
    st.booleans(),
    st.none(),
)


def json_line(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode().replace(b'"1e999"', b"1e999")


HOSTILE_LINES = st.one_of(
    st.binary(max_size=40),
    st.dictionaries(
        st.sampled_from(["ts", "msg", "level", "pid", "host", "app", "User", "x"]),
        JSON_SCALARS,
        max_size=5,
    ).map(json_line),
    st.integers(1, 2500).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
    st.integers(1, 2500).map(lambda depth: b'{"msg":' + b"[" * depth + b"]" * depth + b"}"),
    st.integers(250, 900).map(lambda n: b'{"msg":"' + b"z" * n + b'"}'),
    st.sampled_from(
        [
            b"",
            b" \t",
            b"\0\0\0",
            b"\xff\xfe\xfd",
            b'{"msg":"caf\xe9"}',
            b"<34>Oct 11 22:14:15 host su: sec",
            b"2026-01-01 00:00:00,000 ERROR [main] boom",
            b"\tat a.B.c(B.java:1)",
            b'10.0.0.1 - - [18/Nov/2026:00:09:54 +0000] "GET / HTTP/1.1" 200 5 "-" "curl"',
            b"time=2026-01-01T00:00:00Z level=info msg=hi",
            b'metric_total{a="b"} 1e999',
            b"# TYPE metric_total counter",
            b"time,value",
            b"2026-01-01T00:00:00Z,1e40",
        ]
    ),
)


def expected_records(data: bytes) -> int:
    """Non-blank lines as ingest reads them (a line of NULs is not blank; other NULs are spaces)."""
    pieces = data.split(b"\n")
    if data.endswith(b"\n") or not data:
        pieces.pop()
    count = 0
    for piece in pieces:
        piece = piece.removesuffix(b"\r")
        if (piece and not piece.strip(b"\0")) or piece.replace(b"\0", b" ").strip(b" \t"):
            count += 1
    return count


@settings(
    max_examples=int(os.environ.get("NODUS_FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    lines=st.lists(
        st.tuples(HOSTILE_LINES, st.sampled_from([b"\n", b"\r\n", b"\r", b"\n\n"])), max_size=25
    ),
    final=st.booleans(),
    fmt=st.sampled_from(
        ("auto", "jsonl", "logfmt", "syslog", "clf", "combined", "text", *SINGLE_LINE[4:])
    ),
    window=st.integers(256, 4096),
)
# a line over --max-line that ends the file in a bare CR kept the CR in its first KiB
@example(lines=[(b'{"msg":"' + b"z" * 700 + b'"}', b"\r")], final=True, fmt="auto", window=256)
# a record that is one CR before its CRLF keeps that CR
@example(lines=[(b"", b"\r"), (b"", b"\r\n"), (b"", b"\n")], final=False, fmt="syslog", window=256)
def test_fuzz_ingest_lines_every_format(tmp_path_factory, lines, final, fmt, window) -> None:
    """Never a crash; rows + quarantined = records; quarantine keeps each line's bytes."""
    data = b"".join(line + end for line, end in lines)
    if not final and lines:
        data = data[: len(data) - len(lines[-1][1])]
    base = tmp_path_factory.mktemp("fuzz")
    path = base / "input.log"
    path.write_bytes(data)
    with open_store(Workspace(base / "ws", "test")) as opened:
        result = run(opened, path, format=fmt, window_bytes=window, max_line=600)[path.name]
        if result.status == "failed":  # a named input error (no format found), never a crash
            assert result.error and "Traceback" not in result.error
            return
        assert result.rows + result.quarantined == result.records
        counts_match(opened)
        if result.format in ("jsonl", "logfmt", "clf", "combined"):
            assert result.records == expected_records(data)
        kept = opened.con.execute(
            "SELECT byte_offset, raw, raw_bytes, reason FROM quarantine"
        ).fetchall()
        for offset, raw, raw_bytes, reason in kept:
            exact = raw_bytes if raw_bytes is not None else raw.encode()
            end = data.find(b"\n", offset)
            line = data[offset : end if end >= 0 else len(data)].removesuffix(b"\r")
            if result.format in SINGLE_LINE:
                if reason.startswith("line too long"):
                    assert line.startswith(exact) and len(exact) == min(1024, len(line))
                else:
                    assert exact == line, reason
            else:  # a multi-line record: its first line at least, as read
                first, joined, _rest = exact.partition(b"\n")
                if joined:  # the first line's terminator, not a CR it ends in
                    first = first.removesuffix(b"\r")
                assert first == line or reason.startswith("line too long")
    shutil.rmtree(base)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_replacing_a_held_record_survives_sigkill(tmp_path: Path) -> None:
    """Killed anywhere while it replaces a held record, the next run ends as one clean run."""
    import random

    from tests.ingest.test_ingest_kill import kill_after_windows, run_child, wait_ok

    content = (
        "SELECT line_no, byte_offset, message FROM logs ORDER BY ALL",
        "SELECT line_no, byte_offset, raw FROM quarantine ORDER BY ALL",
        "SELECT byte_offset, line_no, rows, quarantined, records FROM ingest_files",
    )

    def state(home: Path) -> list[list[tuple]]:
        with open_store(Workspace(home, "test"), read_only=True) as opened:
            return [opened.con.execute(sql).fetchall() for sql in content]

    def lines(start: int, stop: int) -> str:
        return "".join(f'{{"level": "info", "msg": "event {i}"}}\n' for i in range(start, stop))

    def scenario(home: Path, path: Path, kills: random.Random | None) -> None:
        path.write_text(lines(0, 150) + '{"level": "info", "msg": "half wri')
        wait_ok(run_child(home, [str(path)]))
        with path.open("a") as handle:
            handle.write('tten"}\n' + lines(150, 300))
        for _ in range(kills.randint(1, 3) if kills else 0):
            kill_after_windows(home, [str(path)], kills.randint(0, 4), kills)
        wait_ok(run_child(home, [str(path)]))

    scenario(tmp_path / "reference", tmp_path / "reference.jsonl", None)
    reference = state(tmp_path / "reference")
    assert reference[2] == [(reference[2][0][0], 301, 301, 0, 301)]
    rng = random.Random(5)
    for trial in range(4):
        scenario(tmp_path / f"trial{trial}", tmp_path / f"trial{trial}.jsonl", rng)
        assert state(tmp_path / f"trial{trial}") == reference, f"trial {trial}"
