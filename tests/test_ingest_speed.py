"""Ingest's shortcuts store exactly what the general path stores.

A syslog window whose lines all start records skips the grouping of lines into
records (a window function over the whole window): the rows, their columns and
the quarantine must be those the grouping gives, whatever the lines hold.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodus_cli.ingest import engine
from nodus_cli.ingest.engine import IngestOptions, ingest
from nodus_cli.ingest.formats import Detected
from nodus_cli.ingest.lines import WindowLines
from nodus_cli.store import open_store
from nodus_cli.workspace import Workspace

SYSLOG_LINES = (
    "Nov 18 00:00:01 web-01 sshd[4242]: Accepted publickey for alice",
    "Nov  8 10:11:12 web-02 cron: job started",
    "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
    '<165>1 2003-10-11T22:14:15.003Z host app 1234 ID47 [ex@32473 iut="3"] msg',
    "<13>1 - - - - - -",
    "2026-11-18T00:00:01+01:00 host app[7]: iso time",
    "Feb 30 00:00:00 host app: no such day",
    "not syslog at all",
    "<999>garbage",
    "\vstarts with a vertical tab, which RE2 takes for a non-blank",
    "\x1cstarts with a file separator",
    "\u00a0starts with a no-break space",
    "\u3000starts with an ideographic space",
    "ends with blanks \t ",
)
CONTINUED = (" continued with a space", "\tcontinued with a tab", "\fafter a form feed")
BLANK = ("", "   ", "\t", "\r")


def _stored(path: Path, *, shortcut: bool, monkeypatch: pytest.MonkeyPatch) -> str:
    with monkeypatch.context() as patch:
        if not shortcut:
            patch.setattr(engine, "_one_line_records", lambda lines, detected: False)
        with (
            tempfile.TemporaryDirectory() as home,
            open_store(Workspace(Path(home) / "ws", "test").ensure()) as store,
        ):
            report = ingest(store, [str(path)], IngestOptions(format="syslog"))
            assert not report.failed
            tables = [
                store.con.execute(
                    f"SELECT * EXCLUDE (file_id) FROM {table} ORDER BY line_no"
                ).fetchall()
                for table in ("logs", "quarantine")
            ]
            return json.dumps(tables, default=str)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.sampled_from(SYSLOG_LINES + BLANK) | st.sampled_from(CONTINUED), min_size=1, max_size=12
    ),
    st.sampled_from(("\n", "\r\n")),
)
def test_syslog_lines_each_a_record_store_what_the_grouping_stores(
    lines: list[str], newline: str
) -> None:
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as monkeypatch:
        path = Path(tmp) / "sys.log"
        path.write_bytes((newline.join(lines) + newline).encode())
        fast = _stored(path, shortcut=True, monkeypatch=monkeypatch)
        assert fast == _stored(path, shortcut=False, monkeypatch=monkeypatch)


def test_the_shortcut_is_taken_only_without_continuation_lines() -> None:
    syslog = Detected("syslog")
    plain = "\n".join((*SYSLOG_LINES, "")).encode() + b"\n"  # an empty line is no record
    assert engine._one_line_records(WindowLines(plain, 0, 0), syslog)
    for continued in (*CONTINUED, "   "):  # a line of blanks too: the shortcut is for sure cases
        window = WindowLines(plain + continued.encode() + b"\n", 0, 0)
        assert not engine._one_line_records(window, syslog)
    assert not engine._one_line_records(WindowLines(plain, 0, 0), Detected("text"))
