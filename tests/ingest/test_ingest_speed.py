"""Ingest's shortcuts store exactly what the general path stores.

A syslog window whose lines all start records skips the grouping of lines into
records (a window function over the whole window): the rows, their columns and
the quarantine must be those the grouping gives, whatever the lines hold. Logfmt
pairs come from one pass of the pattern: every line parses as it did with a pass
per group.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodus_cli.ingest import engine, formats
from nodus_cli.ingest.engine import IngestOptions, ingest
from nodus_cli.ingest.formats import (
    LOGFMT_PAIR,
    MACROS,
    _json_parse,
    access_sql,
    logfmt_sql,
    sql_str,
)
from nodus_cli.ingest.lines import WindowLines
from nodus_cli.ingest.schema import shape_sql
from nodus_cli.ingest.sniff import Detected
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


def _syslog_rows(path: Path) -> str:
    """The rows and quarantine ``path`` gives as syslog (a fresh store)."""
    with (
        tempfile.TemporaryDirectory() as home,
        open_store(Workspace(Path(home) / "ws", "test").ensure()) as store,
    ):
        assert not ingest(store, [str(path)], IngestOptions(format="syslog")).failed
        tables = [
            store.con.execute(
                f"SELECT * EXCLUDE (file_id, committed_at) FROM {table} ORDER BY line_no"
            ).fetchall()
            for table in ("logs", "quarantine")
        ]
        return json.dumps(tables, default=str)


def _stored(path: Path, *, shortcut: bool, monkeypatch: pytest.MonkeyPatch) -> str:
    with monkeypatch.context() as patch:
        if not shortcut:
            patch.setattr(engine, "_one_line_records", lambda lines, detected: False)
        return _syslog_rows(path)


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


# The logfmt object as built before its pairs came from one pass (the reference).
TWO_PASS_LOGFMT = f"""SELECT line_no, byte_offset, record, line,
      CASE WHEN len(keys) > 0 THEN '{{' || array_to_string(list_transform(keys, lambda k, i:
          to_json(k) || ':' || CASE WHEN starts_with(vals[i], '"') THEN vals[i]
          ELSE to_json(vals[i]) END), ',') || '}}' ELSE line END AS obj
    FROM (SELECT *, regexp_extract_all(line, {sql_str(LOGFMT_PAIR)}, 1) AS keys,
                    regexp_extract_all(line, {sql_str(LOGFMT_PAIR)}, 2) AS vals
          FROM (SELECT *, nodus_filled(line) AS record FROM raw))"""
LOGFMT_KEYS = {"time": "ts", "level": "level", "message": "msg", "pid": "pid"}
LOGFMT_PIECES = st.sampled_from(
    (
        "ts=2026-11-18T00:00:01Z",
        "ts=2026-02-30T00:00:00Z",
        "level=warn",
        "level=",
        'msg="quoted \\"inner\\" text"',
        'msg="bad \\q escape"',
        'msg="unterminated',
        "msg=bare\\backslash",
        "pid=1e40",
        "pid=42",
        "k.x/y@z-w=\u00e9t\u00e9",
        "=novalue",
        "1bad=key",
        "ctl=\x01\x7f",
        "dup=1 dup=2",
        '"',
        "\t",
    )
)


def _parsed(parser: str, lines: list[tuple[int, str]]) -> list[tuple[object, ...]]:
    con = duckdb.connect()
    for statement in MACROS:
        con.execute(statement)
    con.execute("CREATE TEMP TABLE raw (line VARCHAR, line_no BIGINT, byte_offset BIGINT)")
    con.executemany("INSERT INTO raw VALUES (?, ?, ?)", [[x, i, i] for i, x in lines])
    return con.execute(f"SELECT * FROM ({parser}) ORDER BY line_no").fetchall()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(LOGFMT_PIECES, max_size=6).map(" ".join)
        | st.text(alphabet='ab= "\\\t_.@/-1\u00e9\x01{}:', max_size=40),
        min_size=1,
        max_size=8,
    )
)
def test_logfmt_pairs_from_one_pass_parse_as_two_passes_did(lines: list[str]) -> None:
    """Line by line as before, except that a line the old parse failed on is quarantined.

    The old parse failed the whole file on a quoted value that is not JSON text
    (``msg="bad \\q"``): its CASE cast the quoted value to JSON.
    """
    numbered = list(enumerate(lines, 1))
    reference = _json_parse(TWO_PASS_LOGFMT, LOGFMT_KEYS, "no key=value pairs")
    ours = _parsed(logfmt_sql(LOGFMT_KEYS), numbered)
    for line in numbered:
        row = next(row for row in ours if row[-4] == line[0])
        try:
            expected = _parsed(reference, [line])
        except duckdb.ConversionException:
            assert row[0] is False and row[-1] == line[1]  # not ok: quarantined as read
        else:
            assert [row] == expected


def test_a_logfmt_value_that_is_not_json_text_is_quarantined_not_a_failed_file(
    tmp_path: Path, run_nodus
) -> None:
    log = tmp_path / "app.log"
    log.write_text(
        'ts=2026-11-18T00:00:01Z level=info msg="fine"\n'
        'ts=2026-11-18T00:00:02Z level=info msg="bad \\q escape"\n'
    )
    home = tmp_path / "home"
    done = run_nodus("--home", str(home), "ingest", "--json", "--format", "logfmt", str(log))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)["files"][0]
    assert (report["status"], report["rows"], report["quarantined"]) == ("ingested", 1, 1)


ACCESS_PIECES = st.sampled_from(
    (
        "10.0.0.1",
        "-",
        "a[b",
        'u"q',
        "[18/Nov/2025:00:00:01 +0000]",
        "[18/Nov/2025:00:00:01 +0000",
        "[31/Feb/2025:00:00:01 +0000]",
        '"GET /cart HTTP/1.1"',
        '"GET /a\\"b HTTP/1.1"',
        '"GET  /x"',
        '"GET\t/x HTTP/1.0"',
        '"-"',
        '""',
        '"curl/8.5.0"',
        '"Mozilla/5.0 (X11) \u00e9"',
        "200",
        "404",
        "5xx",
        "1234",
        "\t",
        " ",
        "]",
    )
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(ACCESS_PIECES, min_size=1, max_size=12).map(" ".join)
        | st.builds(
            lambda *fields: " ".join(fields),
            st.sampled_from(("10.0.0.1", "a[b", 'u"q', "::1")),
            st.sampled_from(("-", "id")),
            st.sampled_from(("-", "bob", "b\\ob")),
            st.sampled_from(("[18/Nov/2025:00:00:01 +0000]", "[31/Feb/2025:01:02:03 +0000]", "[]")),
            st.sampled_from(('"GET /cart HTTP/1.1"', '"GET /a\\"b HTTP/1.1"', '"GET  /x"', '"-"')),
            st.sampled_from(("200 12", "304 -", '500 0 "-" "curl/8"', '200 1 "r" "a"  ', "2 3")),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_access_lines_cut_at_quotes_parse_as_the_access_pattern_does(lines: list[str]) -> None:
    """The string-function parse of plain access lines stores what ACCESS's groups give."""
    numbered = list(enumerate(lines, 1))
    ours = _parsed(access_sql(), numbered)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(formats, "PLAIN_ACCESS", "a^")  # matches no line: all by ACCESS
        reference = _parsed(access_sql(), numbered)
    assert ours == reference


def test_plain_access_lines_take_the_string_function_parse() -> None:
    """The bench's and the usual lines are plain; one with an escaped quote is not."""
    plain = re.compile(formats.PLAIN_ACCESS)
    usual = (
        '10.0.3.7 - - [18/Nov/2025:00:00:01 +0000] "GET /cart HTTP/1.1" 200 512 "-" "curl/8.5.0"'
    )
    assert plain.match(usual) and plain.match('1.2.3.4 - bob [x] "GET / HTTP/1.0" 404 -')
    assert not plain.match('1.2.3.4 - - [x] "GET /a\\"b HTTP/1.1" 200 1')


BSD_LINES = st.builds(
    lambda *fields: " ".join(fields),
    st.sampled_from(("Nov 18 00:00:01", "Nov  8 10:11:12", "Feb 30 00:00:00", "nov 18 00:00:01")),
    st.sampled_from(("web-01", "h\u00e9", "[h]", "h:1")),
    st.sampled_from(("sshd[42]:", "cron:", "su[x]:", "a:b[1]:", "app[1]:x", "k[7]:", "[9]:")),
    st.sampled_from(
        ("session opened", "", " two spaces", "colon: ] [", "\u00e9t\u00e9 [1]: again")
    ),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(BSD_LINES | st.sampled_from(SYSLOG_LINES), min_size=1, max_size=8))
def test_plain_syslog_lines_cut_in_place_store_what_the_pattern_stores(lines: list[str]) -> None:
    """BSD lines whose fields are cut at fixed places store what SYSLOG_3164's groups give."""
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        path = Path(tmp) / "sys.log"
        path.write_bytes(("\n".join(lines) + "\n").encode())
        ours = _syslog_rows(path)
        patch.setattr(formats, "PLAIN_3164", "a^")  # matches no line: all by SYSLOG_3164
        assert ours == _syslog_rows(path)


@settings(max_examples=200, deadline=None)
@given(
    BSD_LINES
    | st.sampled_from(SYSLOG_LINES)
    | st.text(alphabet="Nov 18:0[]<>1-T\u00e9\t", max_size=40)
)
def test_a_plain_syslog_line_is_a_bsd_line_and_never_rfc_5424(line: str) -> None:
    """The parser tests PLAIN_3164 first and no other pattern on a line it matches."""
    if re.match(formats.PLAIN_3164, line):
        assert re.match(formats.SYSLOG_3164, line)
        assert not re.match(formats.SYSLOG_5424, line)


def test_plain_syslog_lines_take_the_cut() -> None:
    plain = re.compile(formats.PLAIN_3164)
    assert plain.match("Nov  8 10:11:12 web-02 sshd[4242]: Accepted publickey for alice")
    assert not plain.match("<34>Oct 11 22:14:15 mymachine su: 'su root' failed")


PLAIN_LOGFMT_PIECES = st.sampled_from(
    (
        "ts=2026-11-18T00:00:01Z",
        "level=warn",
        'msg="request served in 12 ms"',
        'msg="a b=c, {d}"',
        'q=""',
        "k=",
        "u=\u00e9t\u00e9/x@y",
        'ctl="\x01 inside quotes"',
        "eq=a=b",
        "ctl=\x1f",
        'msg="\\"escaped\\""',
        "k.x/y@z-w=1.5",
        "dup=1 dup=2",
    )
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(PLAIN_LOGFMT_PIECES, min_size=1, max_size=6).map(" ".join),
        min_size=1,
        max_size=8,
    )
)
def test_plain_logfmt_lines_replaced_outside_quotes_parse_as_their_pairs(lines: list[str]) -> None:
    """A line of plain pairs gets the JSON text its pairs give, as any other line."""
    numbered = list(enumerate(lines, 1))
    ours = _parsed(logfmt_sql(LOGFMT_KEYS), numbered)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(formats, "PLAIN_LOGFMT", "a^")  # matches no line: all by the pairs
        assert ours == _parsed(logfmt_sql(LOGFMT_KEYS), numbered)


def test_plain_logfmt_lines_take_the_replacement() -> None:
    plain = re.compile(formats.PLAIN_LOGFMT)
    assert plain.fullmatch('ts=2026-11-18T00:00:01Z level=info msg="served in 9 ms" host=web-1')
    assert not plain.fullmatch('msg="\\"quoted\\""') and not plain.fullmatch("a=1  b=2")


def _shapes(path: Path, fmt: str) -> list[tuple[object, ...]]:
    """Each row's line, its pattern id, and the shape ``schema.shape_sql`` gives its message."""
    with (
        tempfile.TemporaryDirectory() as home,
        open_store(Workspace(Path(home) / "ws", "test").ensure()) as store,
    ):
        assert not ingest(store, [str(path)], IngestOptions(format=fmt)).failed
        return store.con.execute(
            f"SELECT line_no, pattern_id, {shape_sql('message')} FROM logs ORDER BY line_no"
        ).fetchall()


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(("syslog", "combined")),  # combined: the shape from its message
    st.lists(
        BSD_LINES
        | st.sampled_from(SYSLOG_LINES + CONTINUED + BLANK)
        | st.lists(ACCESS_PIECES, min_size=1, max_size=12).map(" ".join)
        | st.sampled_from(
            (
                '::1 - - [18/Nov/2025:00:00:01 +0000] "GET /\u00e9t\u00e9/12 HTTP/1.1" 200 9',
                '1.2.3.4 - - [18/Nov/2025:00:00:01 +0000] "GET /a\\"9 HTTP/1.1" 500 1 "-" "x"',
                "<165>1 2003-10-11T22:14:15.003Z h app 12 ID47 - \ufeff\u00e9 42 [7]",
                "Nov 18 00:00:01 h\u00e9 app[12]: \u00e9t\u00e9 0123456789 \u3000 9",
                "Nov 18 00:00:01 h app[1]: a NUL \x00 and 9",
            )
        ),
        min_size=1,
        max_size=10,
    ),
    st.sampled_from(("\n", "\r\n")),
)
def test_shapes_cut_from_the_masked_line_are_those_of_the_messages(
    fmt: str, lines: list[str], newline: str
) -> None:
    """A parser's shape_text (the masked line, cut) hashes as shape_sql of the message."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.log"
        path.write_bytes((newline.join(lines) + newline).encode())
        for _, stored, expected in _shapes(path, fmt):
            assert stored == expected
