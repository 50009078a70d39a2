from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest


def test_answer_42_as_json(cli) -> None:
    result = cli("query", "select 42 as answer", "--json")
    assert result.exit_code == 0
    assert result.stdout == '[{"answer": 42}]\n'


def test_json_keeps_types(cli) -> None:
    sql = """select 1 as i, 2.5 as f, 1.50::decimal(5,2) as d, NULL as n, true as b,
        timestamptz '2026-01-02 03:04:05+00' as ts, date '2026-01-02' as dd,
        [1, 2] as l, {'a': 'x'} as s, '{"k": [1, null]}'::json as j,
        'nan'::double as nan, 'text' as t"""
    [row] = cli("query", sql, "--json").json()
    assert row == {
        "i": 1,
        "f": 2.5,
        "d": 1.5,
        "n": None,
        "b": True,
        "ts": "2026-01-02T03:04:05+00:00",
        "dd": "2026-01-02",
        "l": [1, 2],
        "s": {"a": "x"},
        "j": {"k": [1, None]},
        "nan": None,
        "t": "text",
    }


@pytest.mark.parametrize("fmt", ["json", "ndjson", "csv", "table"])
def test_json_nested_too_deep_for_python_is_shown_as_text(cli, fmt: str) -> None:
    """A log line may nest thousands of levels; Python's recursion must not crash the output."""
    sql = """select json(repeat('[', 3000) || repeat(']', 3000)) as deep,
        json(repeat('[', 250) || repeat(']', 250)) as deeper_than_shown,
        json(repeat('{"a":', 50) || '1' || repeat('}', 50)) as shallow"""
    result = cli("query", sql, "--format", fmt)
    assert result.exit_code == 0, result.output
    if fmt == "json":
        [row] = result.json()
        assert row["deep"] == "[" * 3000 + "]" * 3000
        assert row["deeper_than_shown"] == "[" * 250 + "]" * 250
        shallow = row["shallow"]
        for _ in range(50):
            shallow = shallow["a"]
        assert shallow == 1


def test_formats_csv_ndjson_table(cli) -> None:
    sql = "select * from (values (1, 'a,b'), (2, NULL)) t(x, y) order by x"
    rows = list(csv.reader(io.StringIO(cli("query", sql, "--format", "csv").stdout)))
    assert rows == [["x", "y"], ["1", "a,b"], ["2", ""]]
    lines = cli("query", sql, "-f", "ndjson").stdout.splitlines()
    assert [json.loads(line) for line in lines] == [{"x": 1, "y": "a,b"}, {"x": 2, "y": None}]
    table = cli("query", sql).stdout
    assert "a,b" in table and "x" in table
    assert "\x1b[" not in table  # not a terminal: no colour codes


def test_limit_and_stdin(cli) -> None:
    result = cli("query", "-", "--limit", "3", "--json", input="select * from range(10) t(v)")
    assert [r["v"] for r in result.json()] == [0, 1, 2]


def test_empty_result_is_empty_array(cli) -> None:
    assert cli("query", "select 1 as a where false", "--json").json() == []


@pytest.mark.parametrize(
    "sql",
    ["selec 1", "select * from no_such_table", "select 1/'x'::int"],
)
def test_bad_sql_exits_2_with_one_line(cli, sql: str) -> None:
    result = cli("query", sql, "--json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("nodus: error: SQL error:")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "sql",
    [
        "create table x (a int)",
        "insert into logs (message) values ('x')",
        "drop table journal",
        "copy (select 1) to '/tmp/nodus-should-not-exist.csv'",
        "attach '/tmp/other.duckdb' as other",
        "select 1; delete from journal",
        "set threads = 1",
    ],
)
def test_writes_are_refused(cli, sql: str) -> None:
    result = cli("query", sql)
    assert result.exit_code == 2
    assert "read-only" in result.stderr and result.stdout == ""


def test_tables_lists_rows_and_columns(cli, tmp_path: Path) -> None:
    csv_file = tmp_path / "hosts.csv"
    csv_file.write_text("host,rack\nweb-1,a\nweb-2,b\n")
    assert cli("load", str(csv_file), "--table", "hosts").exit_code == 0
    doc = cli("tables", "--json").json()
    by_name = {t["table"]: t for t in doc}
    assert by_name["hosts"]["rows"] == 2 and by_name["hosts"]["owner"] == "user"
    assert [c["name"] for c in by_name["hosts"]["columns"]] == ["host", "rack"]
    assert by_name["logs"]["owner"] == "nodus"
    assert [c["name"] for c in by_name["logs"]["columns"]][:3] == ["time", "level", "host"]
    csv_out = cli("tables", "--format", "csv").stdout
    assert csv_out.startswith("table,rows,owner,as_of,columns")


def test_load_create_replace_append_and_clash(cli, tmp_path: Path, shared: Path) -> None:
    nation = shared / "data" / "tpch" / "nation.csv.gz"
    first = cli("load", str(nation), "--table", "nation", "--json")
    assert first.exit_code == 0 and first.json()["rows"] == 25
    again = cli("load", str(nation), "--table", "nation")
    assert again.exit_code == 2 and "--replace or --append" in again.stderr
    assert cli("load", str(nation), "--table", "nation", "--append").exit_code == 0
    count = cli("query", "select count(*) as n from nation", "--json").json()
    assert count == [{"n": 50}]
    assert cli("load", str(nation), "--table", "nation", "--replace").exit_code == 0
    assert cli("query", "select count(*) as n from nation", "--json").json() == [{"n": 25}]
    clash = cli("load", str(nation), "--table", "journal")
    assert clash.exit_code == 2 and "belongs to nodus" in clash.stderr
    both = cli("load", str(nation), "--table", "x", "--replace", "--append")
    assert both.exit_code == 2


def test_load_parquet_and_json(cli, tmp_path: Path) -> None:
    import duckdb

    parquet = tmp_path / "p.parquet"
    duckdb.sql(f"copy (select range as id from range(5)) to '{parquet}'")
    jsonl = tmp_path / "j.jsonl"
    jsonl.write_text('{"a": 1, "b": "x"}\n{"a": 2, "b": "y"}\n')
    assert cli("load", str(parquet), "-t", "p", "--json").json()["rows"] == 5
    assert cli("load", str(jsonl), "-t", "j", "--json").json()["rows"] == 2
    types = cli("query", "select typeof(a) as t from j limit 1", "--json").json()
    assert types == [{"t": "BIGINT"}]


def test_load_errors(cli, tmp_path: Path) -> None:
    missing = cli("load", str(tmp_path / "nope.csv"), "-t", "x")
    assert missing.exit_code == 2 and "no such file" in missing.stderr
    odd = tmp_path / "data.bin"
    odd.write_bytes(b"\x00\x01")
    assert cli("load", str(odd), "-t", "x").exit_code == 2
    broken = tmp_path / "broken.parquet"
    broken.write_text("not parquet")
    result = cli("load", str(broken), "-t", "x")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    bad_name = cli("load", str(broken), "-t", "bad name")
    assert bad_name.exit_code == 2
    fifo = tmp_path / "feed.csv"
    os.mkfifo(fifo)
    for special in ("/dev/zero", str(tmp_path), str(fifo)):  # never read, never "no such file"
        refused = cli("load", special, "-t", "x")
        assert refused.exit_code == 2 and "not a regular file" in refused.stderr, refused.stderr


def test_journal_records_changes_with_masked_args(cli, tmp_path: Path) -> None:
    data = tmp_path / "r.csv"
    data.write_text("a\n1\n")
    cli("load", str(data), "-t", "r")
    entries = cli("journal", "--json").json()
    load = [e for e in entries if e["command"] == "load"][-1]
    assert load["outcome"] == "ok" and load["summary"]["rows"] == 1
    assert load["args"] == ["load", str(data), "-t", "r"]
    assert load["user"] and load["host"]
    failed = cli("load", str(tmp_path / "missing.csv"), "-t", "zz")
    assert failed.exit_code == 2
    future = cli("journal", "--since", "2999-01-01", "--json").json()
    assert future == []
    recent = cli("journal", "--since", "1h", "--json").json()
    assert any(e["command"] == "load" for e in recent)
    bad = cli("journal", "--since", "yesterday-ish")
    assert bad.exit_code == 2


def test_query_does_not_write_the_journal(cli) -> None:
    cli("query", "select 1")
    commands = [e["command"] for e in cli("journal", "--json").json()]
    assert "query" not in commands
