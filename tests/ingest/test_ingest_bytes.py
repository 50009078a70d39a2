"""Bytes that are not text (issue 23.15): readable text, the bytes as read recoverable.

A stored row shows each undecodable byte sequence as U+FFFD (never ``?``) and keeps
its bytes as read, base64, in ``attrs._raw_bytes`` when its text differs from them; a
quarantined line keeps them in ``raw_bytes``. rows + quarantined = records.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodus_cli.ingest.engine import RAW_BYTES_KEY, IngestOptions, ingest
from nodus_cli.store import Store, open_store
from nodus_cli.workspace import Workspace


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(Workspace(tmp_path / "ws", "test").ensure()) as opened:
        yield opened


def recovered(store: Store) -> dict[int, tuple[str, bytes | None, str | None]]:
    """Per line number: table, the bytes the store can give back, the row's message."""
    found: dict[int, tuple[str, bytes | None, str | None]] = {}
    for line_no, attrs, message in store.con.execute(
        "SELECT line_no, attrs, message FROM logs"
    ).fetchall():
        kept = json.loads(attrs).get(RAW_BYTES_KEY) if attrs else None
        found[line_no] = ("logs", base64.b64decode(kept) if kept else None, message)
    for line_no, raw, raw_bytes in store.con.execute(
        "SELECT line_no, raw, raw_bytes FROM quarantine"
    ).fetchall():
        found[line_no] = ("quarantine", raw_bytes or raw.encode("utf-8"), None)
    return found


def test_undecodable_bytes_read_as_u_fffd_and_are_kept_exact(tmp_path: Path, run_nodus) -> None:
    path = tmp_path / "mixed.log"
    lines = [
        b'{"ts":"2026-01-01T00:00:00Z","msg":"caf\xe9 \xff\xfe ok"}',
        b"2026-01-01T00:00:00Z plain caf\xe9 line",
        b'{"ts":"2026-01-01T00:00:01Z","msg":"clean"}',
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert run_nodus("ingest", str(path)).returncode == 0
    rows = run_nodus("query", "SELECT message, attrs FROM logs ORDER BY line_no", "--json")
    first, clean = json.loads(rows.stdout)
    assert first["message"] == "caf\ufffd \ufffd\ufffd ok"
    assert base64.b64decode(first["attrs"][RAW_BYTES_KEY]) == lines[0]
    assert clean == {"message": "clean", "attrs": {}}  # text as read: nothing more kept
    (quarantined,) = json.loads(run_nodus("quarantine", "--json").stdout)
    assert quarantined["raw"] == "2026-01-01T00:00:00Z plain caf\ufffd line"
    assert quarantined["byte_offset"] == len(lines[0]) + 1  # offsets count bytes as read


def test_a_multi_line_record_keeps_all_its_bytes(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    record = (
        b"2026-01-01 00:00:00,000 ERROR boom\n\tat caf\xe9.Main(Main.java:1)\n"
        b"2026-01-01 00:00:01,000 INFO fine\n"
    )
    path.write_bytes(record)
    report = ingest(store, [str(path)], IngestOptions(format="text"))
    assert (report.files[0].rows, report.files[0].quarantined) == (2, 0)
    first, second = store.con.execute("SELECT message, attrs FROM logs ORDER BY line_no").fetchall()
    assert "caf\ufffd.Main" in first[0]
    assert base64.b64decode(json.loads(first[1])[RAW_BYTES_KEY]) == record.split(b"\n2026")[0]
    assert second[1] is None


# a JSON message of arbitrary bytes (no quote, backslash or newline), or any line at all
_JUNK = st.binary(max_size=40).map(lambda b: bytes(c for c in b if c not in b'"\\\n\r'))
_LINE = st.one_of(
    _JUNK.map(lambda junk: b'{"ts":"2026-01-01T00:00:00Z","msg":"' + junk + b'"}'),
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"").rstrip(b"\r")),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lines=st.lists(_LINE, min_size=1, max_size=12))
def test_every_line_of_arbitrary_bytes_is_recoverable(
    tmp_path_factory: pytest.TempPathFactory, lines: list[bytes]
) -> None:
    folder = tmp_path_factory.mktemp("bytes")
    path = folder / "any.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    with open_store(Workspace(folder / "ws", "test").ensure()) as store:
        report = ingest(store, [str(path)], IngestOptions(format="jsonl"))
        (result,) = report.files
        assert result.status != "failed", result.error
        assert result.rows + result.quarantined == result.records
        found = recovered(store)
    for line_no, line in enumerate(lines, 1):
        if line_no not in found:
            assert not line.replace(b"\0", b" ").strip(), line  # only blank lines are no record
            continue
        table, kept, message = found[line_no]
        try:
            exact_text = b"\0" not in line and line.decode("utf-8") is not None
        except UnicodeDecodeError:
            exact_text = False
        if table == "quarantine" or not exact_text:
            assert kept == line, (table, line)
        if message is not None:
            assert "?" not in message or b"?" in line, (message, line)
