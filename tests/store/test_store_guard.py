"""The checkpoint guard: a write torn by SIGKILL never leaves a store that will not open.

``native/torn_write.c`` (preloaded into a child that ingests) cuts the N-th write to the
database file short and kills the child, for every N of a run: a torn write of a
metadata block, which DuckDB rewrites in place, is the case the guard exists for.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nodus_cli.ingest.engine import IngestOptions, ingest
from nodus_cli.store import guard, open_store
from nodus_cli.workspace import Workspace
from tests.conftest import PROJECT
from tests.ingest.test_ingest_kill import snapshot

WINDOW = 4096
CHILD = """
import sys
from pathlib import Path
from nodus_cli import schemas
from nodus_cli.ingest.engine import IngestOptions, ingest
from nodus_cli.store import open_store
from nodus_cli.workspace import Workspace
schemas.install()
with open_store(Workspace(Path(sys.argv[1]), "test")) as store:
    ingest(store, sys.argv[2:], IngestOptions(window_bytes=int({window})))
"""


def small_inputs(directory: Path) -> list[str]:
    """Two files of a few windows each: JSON lines with a bad line, and stack traces."""
    directory.mkdir()
    app = directory / "app.jsonl"
    app.write_text(
        "".join(
            "not json\n"
            if i == 50
            else f'{{"ts": "2026-01-01T00:00:{i % 60:02d}Z", "msg": "e{i}"}}\n'
            for i in range(160)
        )
    )
    java = directory / "server.log"
    java.write_text(
        "".join(
            f"2026-01-01 00:00:{i % 60:02d},000 ERROR [main] failure {i}\n"
            "java.lang.RuntimeException: boom\n\tat a.B.c(B.java:1)\n"
            for i in range(60)
        )
    )
    return [str(app), str(java)]


@pytest.fixture(scope="module")
def torn_write(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("needs a C compiler for the torn-write shim")
    library = tmp_path_factory.mktemp("native") / "torn_write.so"
    source = PROJECT / "tests" / "native" / "torn_write.c"
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-o", str(library), str(source), "-ldl"],
        check=True,
    )
    return library


def run_child(home: Path, paths: list[str], library: Path, torn_at: int) -> tuple[int, str]:
    env = dict(os.environ, LD_PRELOAD=str(library), TORN_AT=str(torn_at))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", CHILD.format(window=WINDOW), str(home), *paths],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stderr


def recoveries(home: Path) -> int:
    with open_store(Workspace(home, "test"), read_only=True) as store:
        return store.con.execute(
            "SELECT count(*) FROM journal WHERE summary LIKE '%torn checkpoint%'"
        ).fetchone()[0]


@pytest.mark.skipif(sys.platform != "linux", reason="LD_PRELOAD shim and /proc are Linux")
def test_every_torn_write_of_an_ingest_is_survived(tmp_path: Path, torn_write: Path) -> None:
    paths = small_inputs(tmp_path / "in")
    reference_home = tmp_path / "reference"
    code, stderr = run_child(reference_home, paths, torn_write, 0)
    assert code == 0, stderr
    writes = int(re.findall(r"torn_write: (\d+) database writes", stderr)[-1])
    reference = snapshot(reference_home)
    assert writes > 10
    repaired = torn = 0
    for torn_at in range(1, writes + 1):
        home = tmp_path / f"torn{torn_at}"
        code, stderr = run_child(home, paths, torn_write, torn_at)
        assert code in (0, -signal.SIGKILL), stderr  # 0: this run wrote less often
        torn += code != 0
        repaired += recoveries(home)  # opens, repairing when it must
        assert not guard.guard_path(home / "store.duckdb").exists()
        with open_store(Workspace(home, "test")) as store:
            ingest(store, paths, IngestOptions(window_bytes=WINDOW))
        assert snapshot(home) == reference, f"write {torn_at}"
    assert torn >= writes // 2 and repaired >= 1  # some torn write hit a metadata block


def fork_torn_commit(ws: Workspace, *, corrupt: bool = True) -> None:
    """A child commits under the guard, scribbles over metadata block 0, and dies."""
    pid = os.fork()
    if pid == 0:
        try:
            store = open_store(ws)
            store.con.execute("BEGIN TRANSACTION")
            store.con.execute("INSERT INTO meta VALUES ('k', 'v')")
            with store.guarded():
                if corrupt:  # the first page of a block rewrite, then the kill
                    fd = os.open(ws.store_path, os.O_WRONLY)
                    os.pwrite(fd, os.urandom(4096), guard.BLOCKS_START)
                os.kill(os.getpid(), signal.SIGKILL)
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status)


def test_a_torn_metadata_block_is_restored_on_open(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws", "test")
    with open_store(ws) as store, store.change():
        store.con.execute("INSERT INTO meta VALUES ('before', 'x')")
    fork_torn_commit(ws)
    assert guard.guard_path(ws.store_path).exists()
    with open_store(ws, read_only=True) as store:
        rows = dict(store.con.execute("SELECT key, value FROM meta").fetchall())
        journal = store.con.execute("SELECT summary FROM journal ORDER BY time").fetchall()
    assert rows["before"] == "x" and "k" not in rows  # the uncommitted row stays out
    assert '"blocks_restored": 1' in journal[-1][0]
    assert not guard.guard_path(ws.store_path).exists()


def test_a_guard_from_another_checkpoint_or_damaged_is_never_applied(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws", "test")
    open_store(ws).close()
    fork_torn_commit(ws, corrupt=False)
    saved = guard.guard_path(ws.store_path).read_bytes()
    with open_store(ws) as store, store.change():  # moves the checkpoint on
        store.con.execute("INSERT INTO meta VALUES ('later', 'y')")
    guard.guard_path(ws.store_path).write_bytes(saved)
    assert guard.repair(ws.store_path) == 0
    assert not guard.guard_path(ws.store_path).exists()
    guard.guard_path(ws.store_path).write_bytes(saved[:-1] + b"!")  # a flipped byte
    assert guard.repair(ws.store_path) == 0
    assert not guard.guard_path(ws.store_path).exists()
    unfinished = ws.root / ".store.duckdb.guard.x1y2.tmp"  # a writer killed mid-guard
    unfinished.write_bytes(saved[:100])
    assert guard.repair(ws.store_path) == 0
    assert not unfinished.exists()
    with open_store(ws, read_only=True) as store:
        assert store.con.execute("SELECT value FROM meta WHERE key = 'later'").fetchone() == ("y",)


def test_no_repair_while_another_process_has_the_store_open(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws", "test")
    open_store(ws).close()
    fork_torn_commit(ws, corrupt=False)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
            "print('open', flush=True); sys.stdin.read()",
            str(ws.store_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        assert guard.repair(ws.store_path) == 0
        assert guard.guard_path(ws.store_path).exists()
    finally:
        holder.communicate("")
    assert guard.repair(ws.store_path) == 0  # nothing was torn: the guard just goes
    assert not guard.guard_path(ws.store_path).exists()


def test_a_store_killed_while_being_created_leaves_nothing_that_blocks(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws", "test").ensure()
    stale = ws.root / ".store-new-abc123"
    stale.mkdir()
    (stale / "store.duckdb").write_bytes(b"")  # killed before DuckDB's first write
    os.utime(stale, (0, 0))
    with open_store(ws) as store:
        assert store.schema_version > 0
    assert not stale.exists() and not list(ws.root.glob(".store-new-*"))
