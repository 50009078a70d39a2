"""nodus export: layout, incremental exports without duplicates, --full, error paths."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodus_cli.errors import NotFoundError, UsageError
from nodus_cli.scaleout import QueryEngine
from nodus_cli.scaleout.engines import query_export
from nodus_cli.scaleout.export import export_tables, parse_partition_spec
from nodus_cli.store import Store, open_store
from nodus_cli.store.query import load_file
from nodus_cli.workspace import Workspace

LOG_ROWS = """INSERT INTO logs (time, level, message, attrs, source, line_no)
SELECT TIMESTAMPTZ '2026-03-01 22:00:00+00' + to_hours(i::BIGINT),
       CASE WHEN i % 5 = 0 THEN 'error' ELSE 'info' END, 'message ' || i,
       to_json({'i': i}), CASE WHEN i % 3 = 0 THEN '/var/log/app b.log' ELSE 'syslog' END, i
FROM range(?, ?) t(i)"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(Workspace(tmp_path / "ws", "--home")) as opened:
        yield opened


def add_logs(store: Store, start: int, stop: int) -> None:
    with store.change({"test": "add logs"}):
        store.con.execute(LOG_ROWS, [start, stop])


def exported(data: Path, sql: str) -> list[tuple]:
    with query_export(sql, QueryEngine.duckdb, data) as result:
        return list(result.rows)


def parquet_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.parquet"))


def test_logs_are_partitioned_by_day_then_source(store: Store, tmp_path: Path) -> None:
    add_logs(store, 0, 30)
    out = tmp_path / "out"
    [result] = export_tables(store, ["logs"], out)
    assert (result.mode, result.rows, result.total_rows) == ("full", 30, 30)
    folders = {p.parent.relative_to(out / "logs").as_posix() for p in parquet_files(out / "logs")}
    assert folders == {
        f"day=2026-03-0{d}/source={s}"
        for d in (1, 2, 3)
        for s in ("syslog", "%2Fvar%2Flog%2Fapp%20b.log")
    }
    manifest = json.loads((out / "logs" / "_nodus.json").read_text())
    assert manifest["partition_by"] == ["day(time)", "source"]
    assert [c["name"] for c in manifest["columns"]][:3] == ["time", "level", "host"]
    # every file is self-contained: it holds the partition columns too
    con = duckdb.connect()
    [file] = [p for p in parquet_files(out / "logs") if "syslog" in str(p)][:1]
    names = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM '{file}'").fetchall()]
    assert "source" in names and "day" in names
    # reading back gives exactly the store's columns and rows
    store_rows = store.con.execute("SELECT * FROM logs ORDER BY line_no").fetchall()
    assert exported(out, "SELECT * FROM logs ORDER BY line_no") == store_rows


def test_second_export_writes_only_new_rows_in_new_files(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    add_logs(store, 0, 10)
    export_tables(store, ["logs"], out)
    first_files = {p: p.stat().st_mtime_ns for p in parquet_files(out)}
    [again] = export_tables(store, ["logs"], out)
    assert (again.mode, again.rows, again.total_rows) == ("unchanged", 0, 10)
    add_logs(store, 10, 14)
    [more] = export_tables(store, ["logs"], out)
    assert (more.mode, more.rows, more.total_rows) == ("append", 4, 14)
    after = {p: p.stat().st_mtime_ns for p in parquet_files(out)}
    assert all(after[p] == mtime for p, mtime in first_files.items())  # never rewritten
    assert len(after) == len(first_files) + len(more.files)
    assert exported(out, "SELECT count(*), count(DISTINCT line_no) FROM logs") == [(14, 14)]
    assert not any((out / ".nodus-staging").iterdir())


def test_deletes_do_not_cause_duplicates_and_full_resyncs(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    add_logs(store, 0, 20)
    export_tables(store, ["logs"], out)
    with store.change({"test": "delete"}):
        store.con.execute("DELETE FROM logs WHERE line_no < 15")
    store.con.execute("CHECKPOINT")  # vacuum: row ids of the remaining rows change
    add_logs(store, 20, 25)
    [result] = export_tables(store, ["logs"], out)
    assert result.rows == 5
    assert exported(out, "SELECT count(*), count(DISTINCT line_no) FROM logs") == [(25, 25)]
    [full] = export_tables(store, ["logs"], out, full=True)
    assert (full.mode, full.rows, full.total_rows) == ("full", 10, 10)
    assert exported(out, "SELECT min(line_no), count(*) FROM logs") == [(15, 10)]


def test_identical_rows_are_counted_not_merged(store: Store, tmp_path: Path) -> None:
    store.con.execute("CREATE TABLE pings (host VARCHAR, ok BOOLEAN)")
    out = tmp_path / "out"
    for copies in (2, 3, 3, 5):
        store.con.execute("DELETE FROM pings")
        store.con.execute("INSERT INTO pings SELECT 'a', true FROM range(?)", [copies])
        export_tables(store, ["pings"], out)
        assert exported(out, "SELECT count(*) FROM pings") == [(copies,)]


# A model of the ledger: for each distinct row, the export holds as many copies as the
# table ever held at an export.
operation = st.one_of(
    st.tuples(st.just("insert"), st.lists(st.integers(0, 4), min_size=1, max_size=6)),
    st.tuples(st.just("delete"), st.integers(0, 4)),
    st.tuples(st.just("export"), st.booleans()),
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(operation, min_size=1, max_size=10))
def test_incremental_export_matches_the_ledger_model(tmp_path: Path, ops: list) -> None:
    import uuid

    home = tmp_path / uuid.uuid4().hex
    out = home / "out"
    model: Counter[int] = Counter()
    exported_model: Counter[int] = Counter()
    with open_store(Workspace(home / "ws", "--home")) as store:
        store.con.execute("CREATE TABLE t (v BIGINT, label VARCHAR)")
        for kind, arg in [*ops, ("export", False)]:
            if kind == "insert":
                for v in arg:
                    store.con.execute("INSERT INTO t VALUES (?, ?)", [v, f"v{v}"])
                    model[v] += 1
            elif kind == "delete":
                store.con.execute("DELETE FROM t WHERE v = ?", [arg])
                model.pop(arg, None)
            else:
                export_tables(store, ["t"], out, full=arg)
                if arg:
                    exported_model = Counter(model)
                else:
                    for v, n in model.items():
                        exported_model[v] = max(exported_model[v], n)
        rows = exported(out, "SELECT v, label FROM t")
    assert Counter(v for v, _ in rows) == +exported_model
    assert all(label == f"v{v}" for v, label in rows)


def test_metrics_and_a_user_table_with_explicit_partitioning(store: Store, tmp_path: Path) -> None:
    store.con.execute(
        "CREATE TABLE hosts AS SELECT 'h' || i AS name, i % 2 AS rack, "
        "DATE '2026-01-01' + i::INTEGER AS since FROM range(6) t(i)"
    )
    out = tmp_path / "out"
    [hosts] = export_tables(store, ["hosts"], out, partition_by="rack,month(since)")
    assert hosts.partitions == 2
    folders = {p.parent.relative_to(out / "hosts").as_posix() for p in parquet_files(out)}
    assert folders == {"rack=0/month=2026-01", "rack=1/month=2026-01"}
    assert exported(out, "SELECT count(*) FROM hosts") == [(6,)]
    [metrics] = export_tables(store, ["metrics"], out)  # empty table: a manifest, no files
    assert (metrics.rows, metrics.files) == (0, [])
    assert exported(out, "SELECT count(*) FROM metrics") == [(0,)]
    [unpartitioned] = export_tables(store, ["hosts"], out / "flat", partition_by="none")
    assert [p.parent for p in parquet_files(out / "flat")] == [out / "flat" / "hosts"]
    assert unpartitioned.partitions == 1


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nosuch", "no column 'nosuch'"),
        ("week(time)", "unknown function week()"),
        ("day(level)", "not a date or time"),
        ("source,source", "repeat"),
        ("day(", "bad partition key"),
    ],
)
def test_bad_partition_specs_are_usage_errors(spec: str, message: str) -> None:
    columns = [("time", "TIMESTAMP WITH TIME ZONE"), ("level", "VARCHAR"), ("source", "VARCHAR")]
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_partition_spec(spec, columns)


def test_refusals(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    add_logs(store, 0, 5)
    with pytest.raises(NotFoundError, match="no such table: nope"):
        export_tables(store, ["nope"], out)
    (out / "logs").mkdir(parents=True)
    (out / "logs" / "theirs.parquet").write_bytes(b"not ours")
    with pytest.raises(UsageError, match="not exported from this store; pass --full"):
        export_tables(store, ["logs"], out)
    export_tables(store, ["logs"], out, full=True)
    assert not (out / "logs" / "theirs.parquet").exists()
    with pytest.raises(UsageError, match="changing the partitioning rewrites it"):
        export_tables(store, ["logs"], out, partition_by="source")
    store.con.execute("CREATE TABLE wide AS SELECT i AS k FROM range(20000) t(i)")
    with pytest.raises(UsageError, match="20,000 directories"):
        export_tables(store, ["wide"], out, partition_by="k")
    assert not (out / "wide").exists()
    store.con.execute("CREATE TABLE grows AS SELECT 1 AS a")
    export_tables(store, ["grows"], out)
    store.con.execute("ALTER TABLE grows ADD COLUMN b INTEGER")
    with pytest.raises(UsageError, match="columns of grows changed"):
        export_tables(store, ["grows"], out)


def test_export_cli_json_and_journal(cli, tmp_path: Path) -> None:
    assert cli("query", "SELECT 1").exit_code == 0  # creates the store
    with open_store(Workspace(Path(cli_home()), "--home")) as store:
        add_logs(store, 0, 12)
    out = tmp_path / "out"
    result = cli("export", "logs", "metrics", "--to", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["to"] == str(out)
    assert [(t["table"], t["mode"], t["tracking"], t["rows"]) for t in doc["tables"]] == [
        ("logs", "full", "commit", 12),
        ("metrics", "full", "commit", 0),
    ]
    again = cli("export", "logs", "--to", str(out))
    assert again.exit_code == 0 and "no new rows" in again.stderr
    assert "tracked by commit" in again.stderr
    journal = cli("journal", "--json").json()
    exports = [
        json.loads(e["summary"]) if isinstance(e["summary"], str) else e["summary"]
        for e in journal
        if e["command"] == "export"
    ]
    assert [e["mode"] for e in exports] == ["full", "full", "unchanged"]
    missing = cli("export", "nope", "--to", str(out))
    assert missing.exit_code == 2 and "no such table" in missing.stderr
    bad = cli("export", "logs", "--to", str(out), "--partition-by", "nosuch")
    assert bad.exit_code == 2 and "no column" in bad.stderr


def cli_home() -> str:
    import os

    return os.environ["NODUS_HOME"]


# --- tracking by commit (tables stamped with committed_at) ---------------------------


def ledger(store: Store) -> list[tuple]:
    return store.con.execute("SELECT * FROM export_commits ORDER BY ALL").fetchall()


def export_is_the_table(store: Store, out: Path) -> bool:
    everything = "SELECT * FROM logs ORDER BY ALL"
    return exported(out, everything) == store.con.execute(everything).fetchall()


def snapshot(out: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}


def test_export_twice_rewrites_nothing(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    add_logs(store, 0, 10)
    add_logs(store, 10, 20)
    [first] = export_tables(store, ["logs"], out)
    assert (first.mode, first.tracking, first.rows) == ("full", "commit", 20)
    assert [row[2:] for row in ledger(store)] == [(10, 10), (10, 10)]
    assert store.con.execute("SELECT count(*) FROM export_rows").fetchone() == (0,)
    files, commits = snapshot(out), ledger(store)
    [again] = export_tables(store, ["logs"], out)
    assert (again.mode, again.tracking, again.rows, again.total_rows) == (
        "unchanged",
        "commit",
        0,
        20,
    )
    assert again.batch is None and again.files == []
    assert snapshot(out) == files
    assert ledger(store) == commits
    assert store.con.execute("SELECT count(*) FROM export_batches").fetchone() == (1,)


@pytest.mark.parametrize("listed", [1_000, 0])  # commit times in the SQL text, or not
def test_rows_added_after_an_export_are_exported_exactly_once(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listed: int
) -> None:
    monkeypatch.setattr("nodus_cli.scaleout.export.MAX_LISTED_COMMITS", listed)
    out = tmp_path / "out"
    add_logs(store, 0, 5)
    export_tables(store, ["logs"], out)
    for start in (5, 9, 30):
        add_logs(store, start, start + 4)
        add_logs(store, start + 100, start + 101)
        [result] = export_tables(store, ["logs"], out)
        assert (result.mode, result.rows) == ("append", 5)
        [again] = export_tables(store, ["logs"], out)
        assert again.mode == "unchanged"
    assert exported(out, "SELECT count(*), count(DISTINCT line_no) FROM logs") == [(20, 20)]
    assert export_is_the_table(store, out)


def test_a_commit_time_before_the_last_export_is_still_exported(
    store: Store, tmp_path: Path
) -> None:
    """A wall clock stepping back stamps new rows earlier than rows already exported."""
    out = tmp_path / "out"
    add_logs(store, 0, 10)
    export_tables(store, ["logs"], out)
    with store.change({"test": "clock stepped back"}):
        store.con.execute(
            "INSERT INTO logs (message, line_no, source, committed_at) "
            "VALUES ('late', 100, 'syslog', TIMESTAMPTZ '2001-01-01 00:00:00+00')"
        )
    [result] = export_tables(store, ["logs"], out)
    assert (result.mode, result.rows, result.total_rows) == ("append", 1, 11)
    assert exported(out, "SELECT line_no FROM logs WHERE message = 'late'") == [(100,)]
    assert export_tables(store, ["logs"], out)[0].mode == "unchanged"


def test_rows_sharing_an_exported_commit_time_are_settled_row_by_row(
    store: Store, tmp_path: Path
) -> None:
    """Same committed_at as exported rows (or none, as rows from before migration 12)."""
    out = tmp_path / "out"
    add_logs(store, 0, 6)
    store.con.execute("INSERT INTO logs (message, line_no, committed_at) VALUES ('old', 50, NULL)")
    export_tables(store, ["logs"], out)
    [[stamp]] = store.con.execute(
        "SELECT DISTINCT committed_at FROM logs WHERE line_no < 6"
    ).fetchall()
    with store.change({"test": "same commit time"}):
        store.con.execute(
            "INSERT INTO logs (time, level, message, attrs, source, line_no, committed_at) "
            "SELECT time, level, message, attrs, source, line_no, committed_at FROM logs "
            "WHERE line_no IN (1, 2)"  # identical rows: counted, not merged
        )
        store.con.execute(
            "INSERT INTO logs (message, line_no, committed_at) VALUES ('new', 7, ?), "
            "('older', 51, NULL)",
            [stamp],
        )
    [result] = export_tables(store, ["logs"], out)
    assert (result.rows, result.total_rows) == (4, 11)
    assert export_is_the_table(store, out)
    assert export_tables(store, ["logs"], out)[0].mode == "unchanged"


def test_deletes_and_regrown_records(store: Store, tmp_path: Path) -> None:
    """A deleted row stays exported; a record that ingest grows (new committed_at) is new."""
    out = tmp_path / "out"
    add_logs(store, 0, 10)
    export_tables(store, ["logs"], out)
    with store.change({"test": "delete and grow"}):
        store.con.execute("DELETE FROM logs WHERE line_no < 3")
        store.con.execute(
            "UPDATE logs SET message = message || chr(10) || 'more', committed_at = now() "
            "WHERE line_no = 9"
        )
    [result] = export_tables(store, ["logs"], out)
    assert (result.mode, result.rows, result.total_rows) == ("append", 1, 11)
    assert exported(out, "SELECT message FROM logs WHERE line_no = 9 ORDER BY 1") == [
        ("message 9",),
        ("message 9\nmore",),
    ]
    assert [row[2:] for row in ledger(store)] == [(6, 10), (1, 1)]  # seen, exported
    assert export_tables(store, ["logs"], out)[0].mode == "unchanged"


def test_user_tables_are_tracked_by_row(store: Store, tmp_path: Path) -> None:
    store.con.execute("CREATE TABLE logs_copy AS SELECT 1 AS a, now() AS committed_at")
    [result] = export_tables(store, ["logs_copy"], tmp_path / "out")
    assert result.tracking == "row"
    assert store.con.execute("SELECT count(*) FROM export_rows").fetchone() == (1,)


stamp = st.sampled_from([None, "null", "2001-01-01", "2030-01-01"])  # None: the default


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("insert"), st.lists(st.tuples(st.integers(0, 3), stamp), max_size=4)),
            st.tuples(st.just("export"), st.booleans()),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_commit_tracking_exports_every_row_once(tmp_path: Path, ops: list) -> None:
    """Without deletes the export ends equal to the table, whatever the commit times."""
    import uuid

    home = tmp_path / uuid.uuid4().hex
    out = home / "out"
    with open_store(Workspace(home / "ws", "--home")) as store:
        for kind, arg in [*ops, ("export", False)]:
            if kind == "export":
                assert export_tables(store, ["logs"], out, full=arg)[0].tracking == "commit"
                continue
            with store.change({"test": "insert"}):
                for value, when in arg:
                    stamped = "now()" if when is None else f"CAST({when!r} AS TIMESTAMPTZ)"
                    if when == "null":
                        stamped = "NULL"
                    store.con.execute(
                        "INSERT INTO logs (message, line_no, committed_at) "
                        f"VALUES ('v' || ?, ?, {stamped})",
                        [value, value],
                    )
        table = store.con.execute("SELECT message, committed_at FROM logs ORDER BY ALL")
        expected = table.fetchall()
    assert exported(out, "SELECT message, committed_at FROM logs ORDER BY ALL") == expected


def test_a_commit_that_shrank_then_grew_brings_its_new_rows(store: Store, tmp_path: Path) -> None:
    """Deleted rows only lower a commit's count, even all of them: later rows still count."""
    out = tmp_path / "out"
    add_logs(store, 0, 10)
    add_logs(store, 10, 12)
    export_tables(store, ["logs"], out)
    [[big], [small]] = store.con.execute(
        "SELECT committed_at FROM logs GROUP BY 1 ORDER BY count(*) DESC"
    ).fetchall()
    with store.change({"test": "delete"}):
        store.con.execute("DELETE FROM logs WHERE line_no < 3 OR line_no >= 10")
    assert export_tables(store, ["logs"], out)[0].mode == "unchanged"
    assert [row[1:] for row in ledger(store)] == [(big, 7, 10), (small, 0, 2)]
    with store.change({"test": "same commit times"}):
        store.con.execute(
            "INSERT INTO logs (message, line_no, committed_at) VALUES ('a', 20, ?), ('b', 21, ?)",
            [big, small],
        )
    [result] = export_tables(store, ["logs"], out)
    assert (result.rows, result.total_rows) == (2, 14)
    assert exported(out, "SELECT line_no FROM logs WHERE line_no >= 20 ORDER BY 1") == [
        (20,),
        (21,),
    ]


def test_a_record_that_ingest_grows_is_exported_again(store: Store, tmp_path: Path) -> None:
    """A continuation line written after an export joins its record: a new row to export."""
    from nodus_cli.ingest.engine import IngestOptions, ingest

    log = tmp_path / "app.log"
    log.write_text("2026-01-01 00:00:00,001 ERROR [main] boom\n")
    out = tmp_path / "out"
    ingest(store, [str(log)], IngestOptions())
    export_tables(store, ["logs"], out)
    with log.open("a") as handle:
        handle.write("java.lang.IllegalStateException: bad\n")
    ingest(store, [str(log)], IngestOptions())
    [result] = export_tables(store, ["logs"], out)
    assert (result.mode, result.rows, result.total_rows) == ("append", 1, 2)
    assert exported(out, "SELECT message FROM logs ORDER BY 1") == [
        ("ERROR [main] boom",),
        ("ERROR [main] boom\njava.lang.IllegalStateException: bad",),
    ]


def load_rows(store: Store, folder: Path, values: list[int], mode: str) -> None:
    """``nodus load`` of a CSV holding ``values`` into ``loaded`` (create/append/replace)."""
    import uuid

    csv = folder / f"{uuid.uuid4().hex}.csv"
    csv.write_text("v,label\n" + "".join(f"{v},v{v}\n" for v in values))
    load_file(store, csv, "loaded", mode=mode)  # type: ignore[arg-type]


def test_a_loaded_table_exported_twice_rewrites_nothing(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    load_rows(store, tmp_path, list(range(10)), "create")
    load_rows(store, tmp_path, list(range(10, 15)), "append")
    [first] = export_tables(store, ["loaded"], out)
    assert (first.mode, first.tracking, first.rows, first.total_rows) == ("full", "load", 15, 15)
    assert store.con.execute("SELECT count(*) FROM export_rows").fetchone() == (0,)
    files = snapshot(out)
    [again] = export_tables(store, ["loaded"], out)
    assert (again.mode, again.tracking, again.rows, again.total_rows) == (
        "unchanged",
        "load",
        0,
        15,
    )
    assert snapshot(out) == files
    assert store.con.execute("SELECT count(*) FROM export_batches").fetchone() == (1,)


def test_rows_appended_by_load_are_read_by_position_not_fingerprinted(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An export after appends reads only the rows past its mark: no row is hashed."""
    out = tmp_path / "out"
    load_rows(store, tmp_path, [1, 2, 2], "create")
    export_tables(store, ["loaded"], out)

    def hashed(*args: object) -> str:
        raise AssertionError("an append-only load was settled row by row")

    monkeypatch.setattr("nodus_cli.scaleout.export._multiset_difference", hashed)
    for values in ([2, 3], [2], [4, 5, 6]):
        load_rows(store, tmp_path, values, "append")
        [result] = export_tables(store, ["loaded"], out)
        assert (result.mode, result.tracking, result.rows) == ("append", "load", len(values))
        assert export_tables(store, ["loaded"], out)[0].mode == "unchanged"
    everything = "SELECT * FROM loaded ORDER BY ALL"
    assert exported(out, everything) == store.con.execute(everything).fetchall()
    assert store.con.execute("SELECT load_id, position, exported FROM export_loads").fetchall() == [
        (4, 9, 9)
    ]


def test_a_replaced_table_is_settled_against_the_files(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    load_rows(store, tmp_path, [1, 2, 3], "create")
    export_tables(store, ["loaded"], out)
    load_rows(store, tmp_path, [2, 3, 3, 4], "replace")
    [result] = export_tables(store, ["loaded"], out)
    assert (result.mode, result.rows, result.total_rows) == ("append", 2, 5)  # a 3 and the 4
    load_rows(store, tmp_path, [5], "append")  # the mark moved to the replaced table's end
    [appended] = export_tables(store, ["loaded"], out)
    assert (appended.rows, appended.total_rows) == (1, 6)
    assert exported(out, "SELECT v FROM loaded ORDER BY v") == [(1,), (2,), (3,), (3,), (4,), (5,)]


def test_a_table_exported_by_row_before_its_loads_were_recorded_stays_by_row(
    store: Store, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    store.con.execute("CREATE TABLE loaded AS SELECT 1::BIGINT AS v, 'v1' AS label")
    assert export_tables(store, ["loaded"], out)[0].tracking == "row"
    load_rows(store, tmp_path, [2], "append")
    [result] = export_tables(store, ["loaded"], out)
    assert (result.tracking, result.rows, result.total_rows) == ("row", 1, 2)
    [full] = export_tables(store, ["loaded"], out, full=True)  # a rewrite starts by load
    assert (full.tracking, full.rows) == ("load", 2)


def test_load_then_export_twice_through_the_cli(tmp_path: Path, run_nodus) -> None:
    home, out = tmp_path / "home", tmp_path / "out"
    csv = tmp_path / "hosts.csv"
    csv.write_text("name,rack\nh1,1\nh2,2\n")
    assert run_nodus("--home", str(home), "load", str(csv), "--table", "hosts").returncode == 0
    runs = []
    for _ in range(2):
        done = run_nodus("--home", str(home), "export", "hosts", "--to", str(out), "--json")
        assert done.returncode == 0, done.stderr
        runs.append(json.loads(done.stdout))
    assert json.dumps(runs).count('"tracking": "load"') == 2
    assert '"mode": "unchanged"' in json.dumps(runs[1])


# loads of ``loaded``: (mode, values), or an export (--full or not)
load_operation = st.one_of(
    st.tuples(
        st.sampled_from(("append", "replace")), st.lists(st.integers(0, 3), min_size=1, max_size=4)
    ),
    st.tuples(st.just("export"), st.booleans()),
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(load_operation, min_size=1, max_size=8))
def test_load_tracking_matches_its_model(tmp_path: Path, ops: list) -> None:
    """Appends since the mark are exported as they are; after a replace, the rows the
    export lacks (as a multiset). The export only grows, and always holds the table."""
    import uuid

    home = tmp_path / uuid.uuid4().hex
    home.mkdir()
    out = home / "out"
    table: list[int] = [0]
    model: Counter[int] = Counter()
    appended: list[int] | None = []  # since the last export; None once a replace came
    with open_store(Workspace(home / "ws", "--home")) as store:
        load_rows(store, home, table, "create")
        export_tables(store, ["loaded"], out)
        model.update(table)
        for kind, arg in [*ops, ("export", False)]:
            if kind == "export":
                export_tables(store, ["loaded"], out, full=arg)
                if arg:
                    model = Counter(table)
                elif appended is not None:
                    model.update(appended)
                else:
                    model |= Counter(table)  # a multiset union: the copies it lacks
                appended = []
                rows = exported(out, "SELECT v, label FROM loaded")
                assert Counter(v for v, _ in rows) == model
                assert not Counter(table) - model
            elif kind == "append":
                load_rows(store, home, arg, "append")
                table += arg
                if appended is not None:
                    appended += arg
            else:
                load_rows(store, home, arg, "replace")
                table, appended = list(arg), None
