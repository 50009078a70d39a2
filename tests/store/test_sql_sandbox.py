"""SQL that a user or a file supplied cannot write, read files, load code or change settings.

Each test reproduces a finding of issue 23 through the installed CLI (subprocess) or
the library; the property test at the end throws generated hostile SQL at ``query``
and ``detect --sql`` and checks that nothing changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodus_cli.errors import NodusError, NotFoundError, UsageError
from nodus_cli.sqltools.querylog import record_query
from nodus_cli.store import open_store
from nodus_cli.store.db import open_user_sql
from nodus_cli.store.query import run_query
from nodus_cli.store.sandbox import allow_files, check_read_only, connect_file, is_locked_down
from nodus_cli.workspace import Workspace

LOG_LINES = "".join(
    json.dumps({"time": f"2026-01-01T00:00:0{i}Z", "level": "info", "msg": f"m{i}"}) + "\n"
    for i in range(5)
)


@pytest.fixture
def workspace(run_nodus: Any, nodus_home: Path, tmp_path: Path) -> Path:
    """A workspace with five log rows; returns the directory commands run in."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "a.jsonl").write_text(LOG_LINES)
    result = run_nodus("ingest", "a.jsonl", cwd=cwd)
    assert result.returncode == 0, result.stderr
    (cwd / "a.jsonl").unlink()
    return cwd


def _count(run_nodus: Any, sql: str) -> int:
    result = run_nodus("query", sql, "--json")
    assert result.returncode == 0, result.stderr
    [row] = json.loads(result.stdout)
    return int(next(iter(row.values())))


def _one_line_error(result: Any, code: int = 2) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nodus: error: "), result.stderr
    return lines[0]


# --- nodus query --------------------------------------------------------------------------


def test_explain_analyze_copy_writes_no_file(run_nodus: Any, workspace: Path) -> None:
    result = run_nodus("query", "EXPLAIN ANALYZE COPY (SELECT 42) TO 'x.csv'", cwd=workspace)
    assert "COPY" in _one_line_error(result)
    assert not (workspace / "x.csv").exists()


def test_a_query_cannot_forge_the_checkpoint_guard(
    run_nodus: Any, workspace: Path, nodus_home: Path
) -> None:
    guard = nodus_home / "store.duckdb.guard"
    forged = (
        "EXPLAIN ANALYZE COPY (SELECT 'nodus checkpoint guard 1' AS g) "
        f"TO '{guard}' (FORMAT csv, HEADER false)"
    )
    _one_line_error(run_nodus("query", forged, cwd=workspace))
    assert not guard.exists()
    assert _count(run_nodus, "SELECT count(*) FROM logs") == 5


@pytest.mark.parametrize(
    "statement",
    [
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET threads = 1",
        "CHECKPOINT",
        "CREATE TEMP TABLE t AS SELECT 1",
        "COPY (SELECT 1) TO 'y.csv'",
        "ATTACH 'other.duckdb' AS other",
        "PRAGMA enable_profiling",
        "DELETE FROM logs",
    ],
)
@pytest.mark.parametrize("wrap", ["{}", "EXPLAIN ANALYZE {}"])
def test_statements_that_change_anything_are_refused(
    cli: Any, workspace: Path, monkeypatch: pytest.MonkeyPatch, statement: str, wrap: str
) -> None:
    monkeypatch.chdir(workspace)
    result = cli("query", wrap.format(statement))
    assert result.exit_code == 2, result.stdout
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("nodus: error: ")
    assert "read-only" in result.stderr or "syntax error" in result.stderr  # EXPLAIN ATTACH
    assert sorted(p.name for p in workspace.iterdir()) == []


def test_a_cte_that_deletes_is_refused(run_nodus: Any, workspace: Path) -> None:
    sql = "WITH x AS (DELETE FROM logs RETURNING *) SELECT count(*) FROM x"
    assert "read-only" in _one_line_error(run_nodus("query", sql, cwd=workspace))
    assert _count(run_nodus, "SELECT count(*) FROM logs") == 5


def test_insert_keeps_the_friendly_refusal(run_nodus: Any, workspace: Path) -> None:
    result = run_nodus("query", "INSERT INTO logs SELECT * FROM logs", cwd=workspace)
    assert _one_line_error(result) == (
        "nodus: error: nodus query is read-only: refusing a INSERT statement "
        "(use nodus load or the command that owns the table to change data)"
    )


def test_the_redaction_secret_is_not_readable(
    run_nodus: Any, workspace: Path, nodus_home: Path
) -> None:
    secret = (nodus_home / "secret.key").read_text().strip()
    for sql in (
        f"SELECT * FROM read_text('{nodus_home / 'secret.key'}')",
        f"SELECT * FROM read_csv('{nodus_home}/*', header = false)",
        f"SELECT * FROM glob('{nodus_home}/keyring/*')",
    ):
        for extra in ([], ["--allow-files", str(nodus_home.parent)], ["--allow-files", "/"]):
            result = run_nodus("query", *extra, sql, cwd=workspace)
            _one_line_error(result)
            assert secret not in result.stdout + result.stderr


def test_allow_files_inside_the_workspace_is_refused(
    run_nodus: Any, workspace: Path, nodus_home: Path
) -> None:
    for inside in (nodus_home, nodus_home / "secret.key", nodus_home / "keyring"):
        result = run_nodus("query", "--allow-files", str(inside), "SELECT 1")
        assert "inside the workspace" in _one_line_error(result)


def test_own_files_are_read_only_with_allow_files(run_nodus: Any, workspace: Path) -> None:
    (workspace / "hosts.csv").write_text("host,rack\nweb1,r1\n")
    sql = "SELECT rack FROM 'hosts.csv'"
    refused = run_nodus("query", sql, cwd=workspace)
    assert "--allow-files" in _one_line_error(refused)
    allowed = run_nodus("query", "--allow-files", ".", sql, "--json", cwd=workspace)
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout) == [{"rack": "r1"}]


def test_allow_files_gives_no_write_access(run_nodus: Any, workspace: Path) -> None:
    (workspace / "hosts.csv").write_text("host\nweb1\n")
    for sql in (
        "EXPLAIN ANALYZE COPY (SELECT 1) TO 'hosts.csv'",
        "EXPLAIN ANALYZE COPY (SELECT 1) TO 'new.csv'",
        "EXPLAIN ANALYZE EXPORT DATABASE 'dump'",
    ):
        _one_line_error(run_nodus("query", "--allow-files", ".", sql, cwd=workspace))
    assert sorted(p.name for p in workspace.iterdir()) == ["hosts.csv"]
    assert (workspace / "hosts.csv").read_text() == "host\nweb1\n"


def test_query_over_an_export_cannot_write_into_it(run_nodus: Any, workspace: Path) -> None:
    assert run_nodus("export", "logs", "--to", "out", cwd=workspace).returncode == 0
    before = sorted(str(p) for p in (workspace / "out").rglob("*"))
    data = ["--data", "out"]
    assert run_nodus("query", *data, "SELECT count(*) FROM logs", cwd=workspace).returncode == 0
    for sql in (
        "EXPLAIN ANALYZE COPY (SELECT 1) TO 'out/logs/x.parquet'",
        "SELECT * FROM read_text('/etc/hostname')",
        "EXPLAIN ANALYZE INSTALL httpfs",
    ):
        _one_line_error(run_nodus("query", *data, sql, cwd=workspace))
    assert sorted(str(p) for p in (workspace / "out").rglob("*")) == before


# --- the other commands that run SQL a user or a file supplied ----------------------------


def _journal_sequence(run_nodus: Any) -> tuple[int, int]:
    """(last value of journal_id_seq, highest journal id): equal unless a query advanced it."""
    last = _count(
        run_nodus,
        "SELECT last_value FROM duckdb_sequences() WHERE sequence_name = 'journal_id_seq'",
    )
    return last, _count(run_nodus, "SELECT max(id) FROM journal")


def test_detect_sql_cannot_advance_the_journal_sequence(run_nodus: Any, workspace: Path) -> None:
    sql = "SELECT now() AS t, nextval('journal_id_seq') AS v"
    result = run_nodus("detect", "--sql", sql, cwd=workspace)
    assert "read-only" in _one_line_error(result)
    last, highest = _journal_sequence(run_nodus)
    assert last == highest


def test_detect_sql_still_scores_and_resumes(run_nodus: Any, workspace: Path) -> None:
    sql = "SELECT time AS t, length(message) AS v FROM logs"
    first = run_nodus("detect", "--sql", sql, "--json", cwd=workspace)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["scored"] == 5
    again = run_nodus("detect", "--sql", sql, "--json", cwd=workspace)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["scored"] == 0


def test_detect_sql_reads_own_files_only_with_allow_files(run_nodus: Any, workspace: Path) -> None:
    (workspace / "m.csv").write_text("t,v\n2026-01-01T00:00:00Z,1\n2026-01-01T00:01:00Z,2\n")
    sql = "SELECT t, v FROM 'm.csv'"
    assert "--allow-files" in _one_line_error(run_nodus("detect", "--sql", sql, cwd=workspace))
    allowed = run_nodus("detect", "--allow-files", "m.csv", "--sql", sql, "--json", cwd=workspace)
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)["scored"] == 2


def test_export_takes_no_sql_in_its_names(run_nodus: Any, workspace: Path) -> None:
    """export builds its SQL from validated, quoted names: nothing of the user's runs."""
    for args in (
        ["logs", "--partition-by", "day(time)) TO 'pwn.csv'; --"],
        ["logs\" TO 'pwn.csv' --", "--partition-by", "none"],
    ):
        _one_line_error(run_nodus("export", *args, "--to", "out", cwd=workspace))
    assert not list(workspace.rglob("pwn.csv"))


def test_advise_does_not_run_a_spooled_delete(
    run_nodus: Any, workspace: Path, nodus_home: Path
) -> None:
    spooled = "WITH x AS (DELETE FROM logs RETURNING *) SELECT count(*) FROM x"
    record_query(nodus_home, spooled, 0.5, 1)
    result = run_nodus("sql", "advise", "--runs", "1", "--json", cwd=workspace)
    assert result.returncode == 0, result.stderr
    [advice] = json.loads(result.stdout)["queries"]
    assert advice["rewrite"] is None and "read-only" in advice["note"]
    assert _count(run_nodus, "SELECT count(*) FROM logs") == 5


def test_rewrite_verify_cannot_read_the_secret(
    run_nodus: Any, workspace: Path, nodus_home: Path
) -> None:
    source = workspace / "q.sql"
    source.write_text(f"SELECT content FROM read_text('{nodus_home / 'secret.key'}')\n")
    _one_line_error(run_nodus("sql", "rewrite", "--verify", "q.sql", cwd=workspace))
    db = ["--db", str(nodus_home / "store.duckdb")]
    _one_line_error(run_nodus("sql", "rewrite", "--verify", *db, "q.sql", cwd=workspace))
    source.unlink()
    assert sorted(p.name for p in workspace.iterdir()) == []


def test_db_connections_are_locked_down(tmp_path: Path) -> None:
    """``--db`` of sql rewrite --verify and lint --fix: the same lock-down as the store."""
    import duckdb

    path = tmp_path / "other.duckdb"
    duckdb.connect(str(path)).close()
    con = connect_file(path)
    try:
        assert is_locked_down(con)
        with pytest.raises(duckdb.Error):
            con.execute("SET enable_external_access = true")
        with pytest.raises(duckdb.Error):
            con.execute(f"COPY (SELECT 1) TO '{tmp_path / 'x.csv'}'")
    finally:
        con.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.duckdb"]


# --- the library --------------------------------------------------------------------------


def test_run_query_refuses_a_store_that_is_not_sandboxed(nodus_home: Path) -> None:
    ws = Workspace(nodus_home, "--home")
    with open_store(ws, read_only=True) as store, pytest.raises(ValueError):
        run_query(store, "SELECT 1")
    with open_user_sql(ws) as store:
        assert store.sandboxed and is_locked_down(store.con)
        assert list(run_query(store, "SELECT 42").rows) == [(42,)]


def test_allow_files_leaves_out_the_workspace(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    ws = tmp_path / "project" / ".nodus"
    (ws / "keyring").mkdir(parents=True)
    (ws / "secret.key").write_text("s")
    (tmp_path / "project" / "app.log").write_text("y")
    (tmp_path / "link-to-project").symlink_to(tmp_path / "project")  # pytest makes such links
    (tmp_path / "project" / "up").symlink_to(tmp_path)
    allowance = allow_files([tmp_path], protected=[ws])
    root = tmp_path.resolve()
    assert set(allowance.directories) == {f"{root / 'data'}{os.sep}"}
    assert set(allowance.files) == {str(root / "notes.txt"), str(root / "project" / "app.log")}
    with pytest.raises(UsageError, match="inside the workspace"):
        allow_files([ws / "keyring"], protected=[ws])
    with pytest.raises(NotFoundError):
        allow_files([tmp_path / "missing"], protected=[ws])


@pytest.mark.parametrize(
    ("sql", "refused"),
    [
        ("SELECT 1", False),
        ("EXPLAIN SELECT 1", False),
        ("EXPLAIN ANALYZE SELECT 1", False),
        ("/* c */ EXPLAIN -- x\n ANALYZE WITH a AS (SELECT 1) SELECT * FROM a", False),
        ("EXPLAIN (FORMAT json, ANALYZE) SELECT 1", False),
        ("EXPLAIN (FORMAT '(') SELECT 1", False),
        ("SELECT 1; EXPLAIN ANALYZE INSTALL httpfs", True),
        ("explain analyse copy (select 1) to 'x'", True),
        ("EXPLAIN (ANALYZE) COPY (SELECT 1) TO 'x'", True),
        ("EXPLAIN ANALYZE EXPORT DATABASE 'x'", True),
        ("CALL pragma_version()", True),
    ],
)
def test_explain_is_judged_by_what_it_wraps(sql: str, refused: bool) -> None:
    import duckdb

    con = duckdb.connect()
    try:
        if refused:
            with pytest.raises(NodusError):
                check_read_only(con, sql)
        else:
            check_read_only(con, sql)
    finally:
        con.close()


# --- property: generated hostile SQL changes nothing ---------------------------------------

_TARGETS = ["x.csv", "{home}/store.duckdb.guard", "{home}/secret.key", "~/x.parquet", "/tmp"]
_WRITES = [
    "COPY (SELECT 42) TO '{path}'",
    "COPY logs TO '{path}' (FORMAT parquet)",
    "EXPORT DATABASE '{path}'",
    "ATTACH '{path}' AS other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "RESET allowed_directories",
    "PRAGMA enable_profiling",
    "CREATE TABLE t AS SELECT 1",
    "CREATE TEMP TABLE t AS SELECT 1",
    "CREATE SEQUENCE s",
    "DELETE FROM logs",
    "DROP TABLE logs",
    "UPDATE logs SET msg = 'x'",
    "INSERT INTO journal (command) VALUES ('x')",
    "CHECKPOINT",
    "VACUUM",
]
_READS = [
    "SELECT nextval('journal_id_seq') AS t, 1 AS v",
    "SELECT * FROM read_text('{path}')",
    "SELECT * FROM read_csv('{path}')",
    "SELECT * FROM read_blob('{path}')",
    "SELECT * FROM glob('{path}/*')",
    "SELECT * FROM '{path}'",
    "WITH x AS (DELETE FROM logs RETURNING *) SELECT count(*) AS t, 1 AS v FROM x",
    "SELECT time AS t, 1 AS v FROM logs",
]
_WRAPS = [
    "{}",
    "EXPLAIN ANALYZE {}",
    "EXPLAIN (ANALYZE, FORMAT json) {}",
    "EXPLAIN {}",
    "SELECT 1; {}",
    "{}; SELECT 1",
    "/* x */ {} -- y",
    "WITH q AS (SELECT 1) {}",
]


@st.composite
def hostile_sql(draw: st.DrawFn, home: Path) -> str:
    statement = draw(st.sampled_from(_WRITES + _READS))
    path = draw(st.sampled_from(_TARGETS)).format(home=home)
    return draw(st.sampled_from(_WRAPS)).format(statement.format(path=path))


def _table_digests(store_path: Path) -> dict[str, str]:
    """Every row of every table (and the sequences), hashed per table.

    Rows, not file bytes: a checkpoint may move bytes without changing any row.
    """
    import duckdb

    con = duckdb.connect(str(store_path), read_only=True)
    try:
        digests = {}
        tables = con.execute(
            "SELECT table_name FROM information_schema.tables ORDER BY table_name"
        ).fetchall()
        for (name,) in tables:
            rows = con.execute(f'SELECT * FROM "{name}" ORDER BY ALL').fetchall()
            digests[name] = hashlib.sha256(repr(rows).encode()).hexdigest()
        sequences = con.execute("SELECT sequence_name, last_value FROM duckdb_sequences()")
        digests["(sequences)"] = repr(sorted(sequences.fetchall()))
        return digests
    finally:
        con.close()


def _listing(*folders: Path) -> list[str]:
    return sorted(str(p) for folder in folders for p in folder.rglob("*"))


# What a detect run that was allowed to read its points writes, journaled.
DETECT_WRITES = {"journal", "detector_state", "anomalies", "(sequences)"}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_hostile_sql_changes_nothing(
    cli: Any,
    workspace: Path,
    nodus_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    data: Any,
) -> None:
    user_home = tmp_path / "user-home"
    user_home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(user_home))
    monkeypatch.chdir(workspace)
    store = nodus_home / "store.duckdb"
    secret = (nodus_home / "secret.key").read_text().strip()
    sql = data.draw(hostile_sql(nodus_home))
    command = data.draw(st.sampled_from([["query"], ["detect", "--sql"]]))
    before, files = _table_digests(store), _listing(workspace, user_home)
    result = cli(*command, sql)
    assert result.exit_code in (0, 1, 2), result.stderr
    assert secret not in result.stdout + result.stderr
    after = _table_digests(store)
    changed = {name for name in after if after[name] != before.get(name)}
    if command == ["query"] or result.exit_code == 2:
        assert not changed, (sql, changed)
    else:  # a detect that read its points saves them: nothing else
        assert changed <= DETECT_WRITES, (sql, changed)
    sequence = _count_in(
        store, "SELECT last_value FROM duckdb_sequences() WHERE sequence_name = 'journal_id_seq'"
    )
    assert sequence == _count_in(store, "SELECT max(id) FROM journal")
    assert _listing(workspace, user_home) == files
    assert not (nodus_home / "store.duckdb.guard").exists()


def _count_in(store: Path, sql: str) -> int:
    import duckdb

    con = duckdb.connect(str(store), read_only=True)
    try:
        return int(con.execute(sql).fetchone()[0])
    finally:
        con.close()


@pytest.mark.parametrize(
    "command",
    [
        ["query", "SELECT 1 AS a; SELECT 2 AS b"],
        ["query", "SELECT 1 AS a; SELECT 2 AS b", "--engine", "spark", "--data", "{export}"],
        ["detect", "--sql", "SELECT now() AS t, 1 AS v; SELECT now() AS t, 2 AS v"],
    ],
)
def test_sql_of_several_statements_is_refused_not_cut_to_the_last(
    run_nodus, tmp_path: Path, command: list[str]
) -> None:
    """The rows of all but the last statement would be dropped unseen: exit 2, saying so.

    With Spark the refusal comes before the JVM starts."""
    export = tmp_path / "export"
    if "spark" in command:
        log = tmp_path / "app.jsonl"
        log.write_text('{"time": "2026-01-01T00:00:00Z", "level": "info", "msg": "x"}\n')
        assert run_nodus("ingest", str(log)).returncode == 0
        assert run_nodus("export", "logs", "--to", str(export)).returncode == 0
    result = run_nodus(*(part.format(export=export) for part in command))
    assert result.returncode == 2, result.stderr
    assert "the SQL holds 2 statements" in result.stderr
    assert result.stdout == ""
