"""The query log: `nodus query` spools, folding is exactly-once, advise reads the table."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from nodus_cli.sqltools.querylog import (
    SPOOL_NAME,
    fingerprint,
    fold_spool,
    record_query,
    slowest,
    spool_path,
)
from nodus_cli.store import open_store
from nodus_cli.workspace import Workspace


def test_fingerprint_ignores_literals_case_and_in_list_length() -> None:
    a = fingerprint("SELECT * FROM t WHERE x = 1 AND y IN (1, 2, 3) AND z = 'a'")
    b = fingerprint("select *  from T where X = 42 and Y in (7) and Z = 'bbb'")
    assert a == b
    assert "?" in a[0] and "42" not in a[0]
    assert fingerprint("SELECT x FROM t")[1] != fingerprint("SELECT y FROM t")[1]
    assert len(fingerprint("this is ((( not sql")[1]) == 16


@pytest.mark.usefixtures("tpch_home")
def test_nodus_query_spools_and_advise_folds(cli: Any, nodus_home: Path) -> None:
    for quantity in (3, 5, 7):
        sql = f"SELECT count(*) FROM lineitem WHERE l_quantity > {quantity}"
        assert cli("query", sql, "--json").exit_code == 0
    assert cli("query", "SELECT 1").exit_code == 0
    lines = spool_path(nodus_home).read_text().splitlines()
    assert len(lines) == 4
    entry = json.loads(lines[0])
    assert entry["rows"] == 1 and entry["ms"] >= 0 and "l_quantity > 3" in entry["sql"]
    result = cli("sql", "advise", "--runs", "1", "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["folded"] == 4
    top = {q["fingerprint"]: q for q in document["queries"]}
    assert sorted(q["runs"] for q in top.values()) == [1, 3]
    assert all(q["rewrite"] or q["note"] for q in top.values())
    assert not spool_path(nodus_home).exists()
    again = cli("sql", "advise", "--runs", "1", "--json")
    assert json.loads(again.stdout)["folded"] == 0


def test_failed_query_is_not_logged(cli: Any, nodus_home: Path) -> None:
    assert cli("query", "SELECT * FROM nowhere").exit_code == 2
    assert not spool_path(nodus_home).exists()


def _workspace(home: Path) -> Workspace:
    workspace = Workspace(home, "--home")
    with open_store(workspace):
        pass
    return workspace


def test_concurrent_appends_keep_every_line_whole(nodus_home: Path) -> None:
    workspace = _workspace(nodus_home)
    long_sql = "SELECT '" + "x" * 20000 + "'"
    children = []
    for index in range(8):
        pid = os.fork()
        if pid == 0:  # child: append 25 lines and leave without cleanup
            for n in range(25):
                record_query(workspace.root, f"{long_sql} -- {index}/{n}", 0.001, 1)
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    lines = spool_path(workspace.root).read_text().splitlines()
    assert len(lines) == 200
    assert all(json.loads(line)["sql"].startswith(long_sql) for line in lines)


def test_fold_killed_at_random_points_inserts_each_line_exactly_once(nodus_home: Path) -> None:
    """SIGKILL a folding child anywhere: the next fold leaves every line in once."""
    workspace = _workspace(nodus_home)
    rng = random.Random(8)
    written = 0
    for _round in range(12):
        for _ in range(rng.randint(1, 30)):
            record_query(workspace.root, f"SELECT {written} AS n", 0.5, 1)
            written += 1
        pid = os.fork()
        if pid == 0:
            try:
                with open_store(workspace) as store:
                    fold_spool(store)
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.0, 0.15))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    with open_store(workspace) as store:
        fold_spool(store)
        count, distinct = store.con.execute(
            "SELECT count(*), count(DISTINCT sql) FROM query_log"
        ).fetchone()
        (top,) = slowest(store, 1)
    assert count == distinct == written
    assert top.runs == written  # literals differ only: one fingerprint
    assert not list(workspace.root.glob(f"{SPOOL_NAME}*"))
