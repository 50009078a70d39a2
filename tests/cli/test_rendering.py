"""What nodus prints is the data, whatever the data: no markup, no emoji codes, no
terminal escapes, tables that fit a terminal and are whole in a pipe (issue 15)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodus_cli.cli import flags, output
from nodus_cli.cli.output import Format, render_rows
from tests.conftest import PROJECT, nodus_command
from tests.terminal import run_with_pty

ESC = "\x1b"


# --- running nodus on a pseudo-terminal ------------------------------------------------


def run_on_terminal(*args: str, columns: int = 80, timeout: float = 120) -> tuple[int, str, str]:
    """``nodus ARGS`` with stdout on a pseudo-terminal ``columns`` wide: (exit, out, err),
    the terminal's CRLFs undone."""
    code, out, err = run_with_pty(*args, on="stdout", columns=columns, timeout=timeout)
    return code, out.replace("\r\n", "\n"), err


def _plain(text: str) -> str:
    """Terminal output without nodus's own bold header."""
    return text.replace(f"{ESC}[1m", "").replace(f"{ESC}[0m", "")


def _width(line: str) -> int:
    from rich.cells import cell_len

    return cell_len(line)


# --- 1. data is never markup ---------------------------------------------------------

TRICKY = [
    "root:x:0:0",
    "[error] x [/] y [b]",
    "- INFO  [/10.10.34.11:3888:QuorumCnxManager$Listener@493] - Received connection",
    "[/etc/passwd] garbage line",
    ":smile: :x: [bold red]not bold[/]",
]


def _select(values: list[str]) -> str:
    quoted = ", ".join(f"'{v.replace(chr(39), chr(39) * 2)}' AS c{i}" for i, v in enumerate(values))
    return f"SELECT {quoted}"


def test_brackets_colons_and_emoji_codes_print_as_stored(run_nodus) -> None:
    result = run_nodus("query", _select(TRICKY))
    assert result.returncode == 0, result.stderr
    for value in TRICKY:
        assert value in result.stdout
    assert "❌" not in result.stdout


def test_brackets_colons_and_emoji_codes_print_as_stored_on_a_terminal() -> None:
    code, out, err = run_on_terminal("query", _select(TRICKY[:2]), columns=200)
    assert code == 0, err
    assert "root:x:0:0" in out and "[error] x [/] y [b]" in out
    assert "❌" not in out


def test_zookeeper_lines_print_in_every_format(run_nodus, shared: Path) -> None:
    log = shared / "data/loghub/Zookeeper/Zookeeper_2k.log"
    assert run_nodus("ingest", str(log)).returncode == 0
    sql = "SELECT message FROM logs WHERE source='Zookeeper_2k.log' LIMIT 3"
    expected = "[/10.10.34.11:3888:QuorumCnxManager$Listener@493]"
    for fmt in Format:
        result = run_nodus("query", sql, "-f", fmt.value)
        assert result.returncode == 0, (fmt, result.stderr)
        assert expected in result.stdout
    code, out, err = run_on_terminal("query", sql, columns=300)
    assert code == 0, err
    assert expected in out


def test_quarantined_line_with_brackets_prints(run_nodus, tmp_path: Path) -> None:
    log = tmp_path / "app.jsonl"
    log.write_text('{"time": "2026-01-01T00:00:00Z", "msg": "ok"}\n[/etc/passwd] garbage line\n')
    assert run_nodus("ingest", str(log)).returncode == 0
    result = run_nodus("quarantine")
    assert result.returncode == 0, result.stderr
    assert "[/etc/passwd] garbage line" in result.stdout
    code, out, err = run_on_terminal("quarantine", columns=200)
    assert code == 0, err
    assert "[/etc/passwd] garbage line" in out


def test_sql_advise_shows_the_sql_as_run(run_nodus, tmp_path: Path) -> None:
    sql = "SELECT '[b]bold[/b] :x:' AS v, count(*) FROM range(10)"
    log = tmp_path / "app.jsonl"  # a store for the query log (init would use the cwd)
    log.write_text('{"time": "2026-01-01T00:00:00Z", "msg": "ok"}\n')
    assert run_nodus("ingest", str(log)).returncode == 0
    for _ in range(2):
        assert run_nodus("query", sql).returncode == 0
    result = run_nodus("sql", "advise", "--runs", "1")
    assert result.returncode == 0, result.stderr
    assert "'[b]bold[/b] :x:'" in result.stdout


def test_escape_sequences_in_data_are_shown_escaped_on_a_terminal() -> None:
    sql = "SELECT chr(27) || '[31mred' || chr(27) || '[0m' AS a, 'one' || chr(10) || 'two' AS b"
    code, out, err = run_on_terminal("query", sql, columns=120)
    assert code == 0, err
    assert f"{ESC}[31m" not in out
    assert r"\x1b[31mred\x1b[0m" in out and r"one\ntwo" in out


def test_no_format_lets_data_act_on_a_terminal() -> None:
    sql = "SELECT chr(27) || '[31mred' AS a, chr(155) || '2J' || chr(8238) AS b"
    for fmt in Format:
        code, out, err = run_on_terminal("query", sql, "-f", fmt.value, columns=120)
        assert code == 0, err
        data = _plain(out) if fmt is Format.table else out
        assert not re.search("[\x1b\x9b\u202e]", data), (fmt, out)
    code, out, _ = run_on_terminal("query", sql, "--json", columns=120)
    assert json.loads(out) == [{"a": f"{ESC}[31mred", "b": "\x9b2J\u202e"}]


def test_escape_sequences_stay_exact_in_csv_and_json(run_nodus) -> None:
    sql = "SELECT chr(27) || '[31mred' AS a, 'one' || chr(10) || 'two' AS b"
    rows = list(csv.reader(io.StringIO(run_nodus("query", sql, "-f", "csv").stdout)))
    assert rows[1] == [f"{ESC}[31mred", "one\ntwo"]
    document = json.loads(run_nodus("query", sql, "--json").stdout)
    assert document == [{"a": f"{ESC}[31mred", "b": "one\ntwo"}]


def test_a_lone_carriage_return_survives_csv(capsys) -> None:
    render_rows(["a", "b"], [["x\ry", ""], ["\r", None]], Format.csv)
    out = capsys.readouterr().out
    assert list(csv.reader(io.StringIO(out, newline=""))) == [["a", "b"], ["x\ry", ""], ["\r", ""]]


def test_file_names_in_messages_cannot_reach_the_terminal(run_nodus, tmp_path: Path) -> None:
    name = str(tmp_path / f"x{ESC}]0;owned{chr(7)}[b]y.log")
    result = run_nodus("ingest", name)
    assert result.returncode == 2
    assert ESC not in result.stderr and "\x07" not in result.stderr
    assert r"x\x1b]0;owned\x07[b]y.log: no such file" in result.stderr


def test_a_file_name_with_markup_in_a_table_title(run_nodus, tmp_path: Path) -> None:
    target = tmp_path / "[b]x[i].toml"
    target.write_text("a = 1\n")
    new = tmp_path / "new.toml"
    new.write_text("a = 2\n")
    assert run_nodus("config", "apply", str(target), str(new)).returncode == 0
    code, out, err = run_on_terminal("config", "history", str(target), columns=200)
    assert code == 0, err
    assert "[b]x[i].toml" in out


# --- hypothesis: any text, any column ------------------------------------------------

BIDI_CONTROLS = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _shown(text: str) -> str:
    """How a table shows ``text``: what a terminal would act on, escaped."""
    import unicodedata

    shown = []
    for char in text:
        category = unicodedata.category(char)
        if category in ("Cc", "Cs", "Zl", "Zp") or char in BIDI_CONTROLS:
            short = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char)
            code = ord(char)
            shown.append(short or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"))
        else:
            shown.append(char)
    return "".join(shown)


CONTROL = st.characters(min_codepoint=0, max_codepoint=0x9F)
TEXT_PIECES = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=CONTROL, max_size=10),
    st.sampled_from(["[", "]", "[/]", "[b]", ":x:", ":smile:", "\x1b[31m", "\x1b]0;t\x07"]),
    st.binary(max_size=20).map(lambda b: b.decode("utf-8", errors="replace")),
    st.just("é" * 10_000),
    st.sampled_from(["\u202e", "\u2028", "日本語", "\U0001f600"]),
)
ANY_TEXT = st.lists(TEXT_PIECES, max_size=4).map("".join)


def _stored(text: str) -> tuple[list[str], list[str], tuple]:
    """``text`` stored in columns of several types and read back as DuckDB gives it."""
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t AS SELECT $1::VARCHAR AS plain, to_json($1::VARCHAR) AS doc, "
        "[$1::VARCHAR] AS list, {'k': $1::VARCHAR} AS record, MAP {$1::VARCHAR: 1} AS map",
        [text],
    )
    cursor = con.execute("SELECT * FROM t")
    columns = [d[0] for d in cursor.description]
    types = [str(d[1]) for d in cursor.description]
    row = cursor.fetchone()
    assert row is not None
    return columns, types, row


@pytest.fixture
def as_terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(flags, "stdout_is_terminal", lambda: True)
    monkeypatch.setenv("COLUMNS", "100")
    yield


def _render(capsys: pytest.CaptureFixture[str], *args, **kwargs) -> str:
    capsys.readouterr()
    render_rows(*args, **kwargs)
    return capsys.readouterr().out


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=ANY_TEXT)
def test_any_text_prints_exactly_in_every_format(
    text: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    columns, types, row = _stored(text)
    for terminal in (False, True):
        monkeypatch.setattr(flags, "stdout_is_terminal", lambda terminal=terminal: terminal)
        monkeypatch.setattr(flags.STATE, "wide", True)
        table = _render(capsys, columns, [row], Format.table, types=types)
        assert _shown(text) in table  # the plain column, whole, escaped
        assert not re.search(
            "[\x00-\x09\x0b-\x1f\x7f-\x9f]", table.replace(f"{ESC}[1m", "").replace(f"{ESC}[0m", "")
        )
        assert table.count("\n") == 3  # header, rule, one line for the row
    monkeypatch.setattr(flags, "stdout_is_terminal", lambda: False)
    parsed = list(
        csv.reader(
            io.StringIO(_render(capsys, columns, [row], Format.csv, types=types), newline="")
        )
    )
    assert parsed[1][:2] == [text, text]  # a JSON string prints as its text
    document = json.loads(_render(capsys, columns, [row], Format.json, types=types))
    assert document[0]["plain"] == text and document[0]["doc"] == text
    assert document[0]["list"] == [text] and document[0]["record"] == {"k": text}
    line = json.loads(_render(capsys, columns, [row], Format.ndjson, types=types))
    assert line["plain"] == text


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(texts=st.lists(ANY_TEXT, min_size=1, max_size=4), width=st.integers(40, 200))
def test_a_terminal_table_fits_its_width_with_whole_headers(
    texts: list[str],
    width: int,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(flags, "stdout_is_terminal", lambda: True)
    monkeypatch.setenv("COLUMNS", str(width))
    headers = ["id", "fingerprint", "quarantined", "message"]
    rows = [[i, t, t[:5], t] for i, t in enumerate(texts)]
    lines = _plain(_render(capsys, headers, rows, Format.table)).splitlines()
    assert len(lines) == 2 + len(texts)  # one line per row
    assert lines[0].split() == headers  # never cut
    assert all(_width(line) <= width for line in lines)


# --- 2. wide tables ------------------------------------------------------------------


def test_fit_keeps_narrow_columns_and_cuts_the_wide(capsys, as_terminal) -> None:
    long = "a" * 300
    out = _plain(_render(capsys, ["fingerprint", "n", "text"], [["f" * 64, 1, long]], Format.table))
    header, _, row = out.splitlines()
    assert header.split() == ["fingerprint", "n", "text"]
    assert _width(row) == 100 and row.endswith("…")


def test_fit_keeps_a_time_whole_beside_a_huge_column(capsys, as_terminal) -> None:
    time = "2026-12-03T13:50:30.123456+00:00"
    out = _plain(_render(capsys, ["created", "recipient"], [[time, "age1" * 500]], Format.table))
    row = out.splitlines()[2]
    assert row.startswith(time + "  age1") and row.endswith("…") and _width(row) == 100


def test_pipe_tables_are_never_cut_or_folded(capsys) -> None:
    long = "b" * 5000
    out = _render(capsys, ["recipient", "x"], [[long, "y"]], Format.table)
    row = out.splitlines()[2]
    assert row.startswith(long) and row.rstrip().endswith("y")


def _keyring(run_nodus, tmp_path: Path) -> None:
    phrase = tmp_path / "pass"
    phrase.write_text("correct horse\n")
    result = run_nodus("keys", "generate", "--passphrase-file", str(phrase))
    assert result.returncode == 0, result.stderr


def test_keys_list_whole_recipient_in_a_pipe_and_one_line_per_key_on_a_terminal(
    run_nodus, tmp_path: Path
) -> None:
    _keyring(run_nodus, tmp_path)
    recipient = json.loads(run_nodus("keys", "list", "--json").stdout)["keys"][1]["recipient"]
    assert recipient.startswith("age1pq1") and len(recipient) > 1000
    piped = run_nodus("keys", "list")
    assert piped.returncode == 0 and recipient in piped.stdout
    code, out, err = run_on_terminal("keys", "list", columns=100)
    assert code == 0, err
    lines = _plain(out).splitlines()
    assert len(lines) == 4 and all(_width(line) <= 100 for line in lines)
    assert lines[0].split() == [
        "id",
        "purpose",
        "state",
        "created",
        "not_after",
        "expired",
        "recipient",
    ]
    code, out, err = run_on_terminal("keys", "list", "--wide", columns=100)
    assert code == 0, err
    assert recipient in out


def test_sources_journal_tables_fit_a_terminal(run_nodus, shared: Path) -> None:
    logs = sorted((shared / "data/loghub").glob("[HZ]*/*_2k.log"))
    assert run_nodus("ingest", *map(str, logs)).returncode == 0
    for command in (["sources"], ["journal"], ["tables"]):
        code, out, err = run_on_terminal(*command, columns=120)
        assert code == 0, (command, err)
        lines = _plain(out).splitlines()
        assert all(_width(line) <= 120 for line in lines), command
        piped = run_nodus(*command)
        assert len(lines) == len(piped.stdout.splitlines()), command  # one line per row
    header = _plain(run_on_terminal("sources", columns=120)[1]).splitlines()[0]
    assert {"fingerprint", "quarantined"} <= set(header.split())


def test_a_table_whose_headers_do_not_fit_shows_records(run_nodus, shared: Path) -> None:
    log = shared / "data/loghub/HDFS/HDFS_2k.log"
    assert run_nodus("ingest", str(log)).returncode == 0
    code, out, err = run_on_terminal("sources", columns=60)
    assert code == 0, err
    lines = out.splitlines()
    assert all(_width(line) <= 60 for line in lines)
    labels = {line.split()[0] for line in lines if not line.startswith("─")}
    assert {"fingerprint", "quarantined", "last_ingested", "path"} <= labels
    # The record view cuts a value that does not fit with an ellipsis, never wraps it.
    shown = next(line for line in lines if line.startswith("path ")).split(None, 1)[1]
    assert shown == str(log) or (shown.endswith("…") and str(log).startswith(shown[:-1]))


def test_wide_is_a_global_option_too(run_nodus) -> None:
    assert run_nodus("--wide", "query", "select 1 AS a").returncode == 0
    code, out, _ = run_on_terminal("--wide", "query", "select repeat('z', 300) AS a", columns=80)
    assert code == 0 and "z" * 300 in out


# --- 3. verbosity ----------------------------------------------------------------------


def test_verbose_is_a_counted_flag(run_nodus) -> None:
    help_text = run_nodus("--help").stdout
    verbose_line = next(line for line in help_text.splitlines() if "--verbose" in line)
    assert "<int>" not in verbose_line and "INTEGER" not in verbose_line
    for options in (["-v"], ["-vv"], ["--verbose", "--verbose"]):
        result = run_nodus(*options, "query", "select 1")
        assert result.returncode == 0, (options, result.stderr)
    assert run_nodus("--verbose=2", "query", "select 1").returncode == 2


def test_verbose_says_what_nodus_does(run_nodus) -> None:
    quiet = run_nodus("query", "select 1")
    assert quiet.stderr == ""
    loud = run_nodus("-v", "query", "select 1")
    assert "duckdb " in loud.stderr and "store " in loud.stderr
    assert re.search(r"exit 0 after \d+\.\d\d s", loud.stderr)
    assert "Traceback" not in loud.stderr


def test_double_verbose_adds_the_traceback(run_nodus) -> None:
    assert "Traceback" not in run_nodus("-v", "query", "@/no/such.sql").stderr
    result = run_nodus("-vv", "query", "@/no/such.sql")
    assert result.returncode == 2 and "Traceback" in result.stderr


# --- 4. messages -----------------------------------------------------------------------


def test_file_errors_in_the_users_terms(run_nodus, tmp_path: Path) -> None:
    binary = tmp_path / "blob.gz"
    binary.write_bytes(b"\x1f\x8b\x08garbage\xff")
    missing = tmp_path / "missing"
    cases = [
        (
            ["keys", "import", str(binary)],
            f"{binary}: gzip-compressed data, not a public key or age identity file",
        ),
        (
            ["keys", "verify", str(binary), str(binary)],
            f"{binary}: gzip-compressed data, not a signature file",
        ),
        (
            ["keys", "open", str(binary), "-i", str(binary), "-o", str(tmp_path / "o")],
            f"{binary}: gzip-compressed data, not an age identity file",
        ),
        (["keys", "open", str(missing), "-i", str(missing)], f"{missing}: no such file"),
        (["query", f"@{missing}"], f"{missing}: no such file"),
        (["query", f"@{binary}"], f"{binary}: not an SQL file"),
        (["sql", "lint", str(binary)], f"{binary}: not an SQL file"),
    ]
    for args, expected in cases:
        result = run_nodus(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith(f"nodus: error: {expected}"), (args, result.stderr)
        assert result.stderr.count("\n") == 1, result.stderr
        assert "codec" not in result.stderr and "Errno" not in result.stderr


def test_opening_a_file_that_is_not_age_names_it(run_nodus, tmp_path: Path) -> None:
    _keyring(run_nodus, tmp_path)
    binary = tmp_path / "blob.gz"
    binary.write_bytes(b"\x1f\x8b\x08garbage\xff")
    result = run_nodus(
        "keys",
        "open",
        str(binary),
        "-o",
        str(tmp_path / "o"),
        "--passphrase-file",
        str(tmp_path / "pass"),
    )
    assert result.returncode == 2  # not age at all: bad input; a damaged age file is 1
    assert result.stderr.startswith(f"nodus: error: {binary}: gzip-compressed data, not an age")
    assert result.stderr.count("\n") == 1


def test_an_unexpected_os_error_is_one_line_in_the_users_terms() -> None:
    import typer
    from typer.testing import CliRunner

    from nodus_cli.cli.app import NodusGroup

    app = typer.Typer(cls=NodusGroup)

    @app.command()
    def boom() -> None:
        open("/no/such/dir/file")  # noqa: SIM115

    @app.command()
    def other() -> None:
        pass

    result = CliRunner().invoke(app, ["boom"])
    assert result.exit_code == 2
    assert result.stderr == "nodus: error: /no/such/dir/file: no such file\n"


def test_ingest_says_each_failed_file_once(run_nodus, tmp_path: Path) -> None:
    bad = tmp_path / "bad.log.gz"
    bad.write_bytes(b"\x1f\x8b" + b"\x00" * 30)
    missing = tmp_path / "missing.log"
    good = tmp_path / "good.jsonl"
    good.write_text('{"time": "2026-01-01T00:00:00Z", "msg": "ok"}\n')
    result = run_nodus("ingest", str(bad), str(missing), str(good))
    assert result.returncode == 2
    for path in (bad, missing):
        lines = [line for line in result.stderr.splitlines() if str(path) in line]
        assert len(lines) == 1, result.stderr
        assert lines[0].count(str(path)) == 1
    assert f"nodus: error: {missing}: no such file" in result.stderr
    assert "Unknown compression" not in result.stderr


def test_sqlglot_warnings_only_with_verbose(run_nodus) -> None:
    sql = "CREATE FOO BAR x"
    quiet = run_nodus("sql", "transpile", "--to", "postgres", input=sql)
    assert quiet.returncode == 0 and quiet.stderr == ""
    loud = run_nodus("-v", "sql", "transpile", "--to", "postgres", input=sql)
    assert "unsupported syntax" in loud.stderr


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    proc = subprocess.run(
        " ".join([*nodus_command(), "query", "'select * from range(2000000)'", "-f", "csv"])
        + " | head -1; echo status=${PIPESTATUS[0]}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )
    assert proc.stdout == "range\nstatus=0\n"
    assert proc.stderr == ""


@pytest.mark.parametrize("fmt", ["csv", "table", "ndjson"])
def test_json_with_another_format_is_a_usage_error(run_nodus, fmt: str) -> None:
    for args in (["--json", "-f", fmt], ["-f", fmt, "--json"]):
        result = run_nodus("query", "select 1", *args)
        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr == f"nodus: error: --json and --format {fmt} exclude each other\n"
    assert run_nodus("query", "select 1 AS a", "--json", "-f", "json").returncode == 0


# --- issue 23.16: times outside years 1..9999 ---------------------------------------

OUT_OF_RANGE = (
    "SELECT TIMESTAMPTZ '0000-01-01 00:00:00+00' AS bc,"
    " TIMESTAMPTZ '10000-01-01 00:00:00+00' AS far,"
    " DATE '-0005-03-01' AS old_day, TIMESTAMP '10000-01-01 12:30:00.25' AS naive,"
    " TIMESTAMPTZ '2026-01-02 03:04:05+00' AS now"
)
EXPECTED_TIMES = {
    "bc": "0000-01-01T00:00:00+00:00",
    "far": "+10000-01-01T00:00:00+00:00",
    "old_day": "-0005-03-01",
    "naive": "+10000-01-01T12:30:00.25",
    "now": "2026-01-02T03:04:05+00:00",
}


def test_out_of_range_times_are_iso_8601_expanded_in_every_format(run_nodus) -> None:
    document = json.loads(run_nodus("query", OUT_OF_RANGE, "--json").stdout)
    assert document == [EXPECTED_TIMES]
    line = json.loads(run_nodus("query", OUT_OF_RANGE, "-f", "ndjson").stdout)
    assert line == EXPECTED_TIMES
    rows = list(csv.reader(io.StringIO(run_nodus("query", OUT_OF_RANGE, "-f", "csv").stdout)))
    assert rows[1] == list(EXPECTED_TIMES.values())
    table = run_nodus("query", OUT_OF_RANGE).stdout
    assert all(value in table for value in EXPECTED_TIMES.values())
    assert "(BC)" not in table


def test_out_of_range_times_inside_lists_and_structs(run_nodus) -> None:
    sql = (
        "SELECT [DATE '10000-01-01', DATE '2026-01-01'] AS days,"
        " {'t': TIMESTAMP '0000-06-01 00:00:00', 'text': '0001-01-01 (BC)',"
        " 'a b, \"c\"': [[DATE '10000-01-01']]} AS record,"
        " MAP {DATE '10000-01-01': 1} AS by_day"
    )
    document = json.loads(run_nodus("query", sql, "--json").stdout)
    assert document == [
        {
            "days": ["+10000-01-01", "2026-01-01"],
            "record": {
                "t": "0000-06-01T00:00:00",
                "text": "0001-01-01 (BC)",  # a VARCHAR keeps its text
                'a b, "c"': [["+10000-01-01"]],
            },
            "by_day": {"+10000-01-01": 1},
        }
    ]


def test_iso_time_text_cases() -> None:
    from nodus_cli.cli.output import iso_time_text

    assert iso_time_text("0001-01-01 (BC) 00:00:00+00") == "0000-01-01T00:00:00+00:00"
    assert iso_time_text("0002-01-01 (BC)") == "-0001-01-01"
    assert iso_time_text("294247-01-01 00:00:00") == "+294247-01-01T00:00:00"
    assert iso_time_text("10000-01-01 00:00:00+05:30") == "+10000-01-01T00:00:00+05:30"
    assert iso_time_text("not a time") == "not a time"
    assert iso_time_text("10000-01-01 00:00:00+00") == "+10000-01-01T00:00:00+00:00"
    assert output.jsonable("0001-01-01 (BC)") == "0001-01-01 (BC)"  # text of a VARCHAR stays


# --- done means: the 16 loghub systems -------------------------------------------------


@pytest.mark.slow
def test_all_loghub_systems_print_in_every_format_on_a_terminal_and_in_a_pipe(
    run_nodus, shared: Path
) -> None:
    logs = sorted((shared / "data/loghub").glob("*/*_2k.log"))
    assert len(logs) == 16
    ingested = run_nodus("ingest", *map(str, logs), timeout=600)
    assert ingested.returncode == 0, ingested.stderr
    for fmt in Format:
        piped = run_nodus("query", "SELECT * FROM logs", "-f", fmt.value, timeout=600)
        assert piped.returncode == 0 and piped.stderr == "", (fmt, piped.stderr)
        code, out, err = run_on_terminal(
            "query", "SELECT * FROM logs", "-f", fmt.value, columns=120, timeout=600
        )
        assert code == 0 and err == "", (fmt, err)
        if fmt is Format.table:
            lines = _plain(out).splitlines()
            assert len(lines) == 2 + 32_000
            assert all(_width(line) <= 120 for line in lines)
            assert not re.search("[\x00-\x1f]", "".join(lines))
        elif fmt is Format.ndjson:
            assert len(piped.stdout.splitlines()) == 32_000


@pytest.mark.slow
def test_spark_query_prints_no_jvm_noise(run_nodus, tmp_path: Path) -> None:
    log = tmp_path / "app.jsonl"
    log.write_text('{"time": "2026-01-01T00:00:00Z", "level": "info", "msg": "[b]x[/b]"}\n')
    assert run_nodus("ingest", str(log)).returncode == 0
    assert run_nodus("export", "logs", "--to", str(tmp_path / "export")).returncode == 0
    result = run_nodus(
        "query",
        "SELECT message FROM logs",
        "--engine",
        "spark",
        "--master",
        "local[1]",
        "--data",
        str(tmp_path / "export"),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no "Using incubator modules", no log4j lines
    assert "[b]x[/b]" in result.stdout


@pytest.mark.parametrize("width", ["80", "60"])
def test_help_prose_wraps_at_the_terminal_width_without_orphans(width: str) -> None:
    """Every line of a help paragraph is full up to the width, so none holds one word."""
    env = {**os.environ, "COLUMNS": width, "TERM": "dumb"}
    shown = subprocess.run(
        [*nodus_command(), "detect", "--help"], capture_output=True, text=True, env=env
    ).stdout
    prose = shown.split("Examples:")[0].splitlines()[3:]
    lines = [line.strip() for line in prose if line.strip()]
    assert "is an anomaly with reason" in " ".join(lines)
    assert all(" " in line for line in lines[:-1]), lines


def _commented_examples() -> Iterator[tuple[list[str], str, str]]:
    """Each help example with a ``# comment``: its command path, command and comment."""
    import typer

    from nodus_cli.cli.app import app

    def walk(command: object, path: list[str]) -> Iterator[tuple[list[str], object]]:
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, [*path, name])

    for path, command in walk(typer.main.get_command(app), []):
        for line in (getattr(command, "help", None) or "").splitlines():
            example, hash_mark, comment = line.strip().partition("  # ")
            if hash_mark:
                yield path, example.rstrip(), comment.strip()


def test_a_help_example_too_wide_for_the_terminal_keeps_its_command_on_one_line() -> None:
    """At 80 columns the comment of a long example moves above it; the command stays whole."""
    env = {**os.environ, "COLUMNS": "80", "TERM": "dumb"}
    examples = list(_commented_examples())
    wide = {tuple(path) for path, example, comment in examples if len(example) + len(comment) > 70}
    assert len(wide) >= 5  # the docstrings have such examples; the check below sees them
    for path in sorted(wide):
        shown = subprocess.run(
            [*nodus_command(), *path, "--help"], capture_output=True, text=True, env=env
        ).stdout
        lines = [line.strip() for line in shown.split("Examples:")[1].splitlines()]
        for at, example, comment in examples:
            if tuple(at) == path:
                assert any(line.startswith(example) for line in lines), (path, example)
                assert any(line.endswith(comment) for line in lines), (path, comment)
