from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from nodus_cli.errors import StoreError, StoreLockedError
from nodus_cli.store import Invocation, open_store
from nodus_cli.store import migrations as migrations_module
from nodus_cli.store.db import mask_args
from nodus_cli.workspace import Workspace

SCHEMA_VERSION = migrations_module.REGISTRY.version


def _register_only(
    monkeypatch: pytest.MonkeyPatch, known: list[migrations_module.Migration]
) -> None:
    """The store knows only ``known`` until the test ends."""
    monkeypatch.setattr(migrations_module, "REGISTRY", migrations_module.Registry(known))


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws", "test")


def test_fresh_store_is_migrated_and_journaled(ws: Workspace) -> None:
    with open_store(ws) as store:
        assert store.schema_version == SCHEMA_VERSION
        rows = store.con.execute("SELECT command, outcome, summary FROM journal").fetchall()
    assert rows[0][0] == "migrate" and rows[0][1] == "ok"


def test_old_store_is_upgraded_in_order(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_store(ws) as store:
        store.con.execute("CREATE TABLE keep (a INT)")
        store.con.execute("INSERT INTO keep VALUES (7)")
    applied: list[int] = []

    def step(version: int):
        def apply(con) -> None:
            applied.append(version)
            con.execute(f"CREATE TABLE extra_{version} (x INT)")

        return apply

    newer = [
        *migrations_module.REGISTRY.migrations,
        migrations_module.Migration(SCHEMA_VERSION + 1, "extra a", step(SCHEMA_VERSION + 1)),
        migrations_module.Migration(SCHEMA_VERSION + 2, "extra b", step(SCHEMA_VERSION + 2)),
    ]
    _register_only(monkeypatch, newer)
    with open_store(ws) as store:
        assert store.schema_version == SCHEMA_VERSION + 2
        assert store.con.execute("SELECT a FROM keep").fetchall() == [(7,)]
        summary = store.con.execute(
            "SELECT summary->>'migrated_from' FROM journal WHERE command = 'migrate' ORDER BY id"
        ).fetchall()
    assert applied == [SCHEMA_VERSION + 1, SCHEMA_VERSION + 2]
    assert summary[-1][0] == str(SCHEMA_VERSION)


def test_logs_move_to_zstd_with_every_row(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    _register_only(monkeypatch, [m for m in migrations_module.REGISTRY.migrations if m.version < 9])
    with open_store(ws) as store:
        store.con.execute(
            "INSERT INTO logs (message, attrs, line_no) VALUES ('kept', '{\"a\": 1}', 7)"
        )
    monkeypatch.undo()
    with open_store(ws) as store:
        assert store.schema_version == SCHEMA_VERSION
        rows = store.con.execute("SELECT message, attrs->>'a', line_no FROM logs").fetchall()
        store.con.execute("INSERT INTO logs (message) SELECT 'x' || i FROM range(200000) t(i)")
        store.con.execute("CHECKPOINT")
        compressions = store.con.execute(
            "SELECT DISTINCT compression FROM pragma_storage_info('logs') "
            "WHERE column_name = 'message' AND segment_type = 'VARCHAR'"
        ).fetchall()
    assert rows == [("kept", "1", 7)]
    assert compressions == [("ZSTD",)]


def test_failed_migration_leaves_store_untouched(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_store(ws).close()

    def broken(con) -> None:
        con.execute("CREATE TABLE half (x INT)")
        raise RuntimeError("boom")

    newer = [
        *migrations_module.REGISTRY.migrations,
        migrations_module.Migration(99, "broken", broken),
    ]
    _register_only(monkeypatch, newer)
    with pytest.raises(StoreError, match="cannot migrate"):
        open_store(ws)
    monkeypatch.undo()
    with open_store(ws) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert "half" not in store.table_names()


def test_newer_store_is_refused_and_not_altered(ws: Workspace, cli) -> None:
    with open_store(ws) as store:
        store.con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    before = ws.store_path.read_bytes()
    with pytest.raises(StoreError, match="newer than this nodus"):
        open_store(ws)
    with pytest.raises(StoreError, match="newer than this nodus"):
        open_store(ws, read_only=True)
    assert ws.store_path.read_bytes() == before
    result = cli("--home", str(ws.root), "tables")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "newer than this nodus" in result.stderr
    assert result.stdout == ""


def test_change_commits_with_its_journal_row(ws: Workspace) -> None:
    with open_store(ws, invocation=Invocation("load", ["x"])) as store:
        with store.change({"what": "test"}) as summary:
            store.con.execute("CREATE TABLE t (a INT)")
            summary["rows"] = 0
        row = store.con.execute(
            "SELECT command, outcome, summary->>'rows' FROM journal ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert row == ("load", "ok", "0")


def test_failed_change_rolls_back_and_journals_the_error(ws: Workspace) -> None:
    with open_store(ws, invocation=Invocation("load")) as store:
        with pytest.raises(ValueError), store.change() as _summary:
            store.con.execute("CREATE TABLE t (a INT)")
            raise ValueError("bad input")
        assert "t" not in store.table_names()
        row = store.con.execute(
            "SELECT outcome, summary->>'error' FROM journal ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert row == ("error", "bad input")


def test_secrets_are_masked_in_journal_args() -> None:
    args = [
        "keys",
        "generate",
        "--passphrase",
        "hunter2",
        "--token=abc",
        "--passphrase-file",
        "p",
        "--set",
        "db.password=swordfish",
        "plain=ok",
    ]
    masked = mask_args(args)
    assert "hunter2" not in masked and "--token=***" in masked
    assert "swordfish" not in " ".join(masked) and "db.password=***" in masked
    assert "p" in masked and "plain=ok" in masked


HOLD_LOCK = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from nodus_cli import schemas
    from nodus_cli.store import open_store
    from nodus_cli.workspace import Workspace
    schemas.install()
    store = open_store(Workspace(Path(sys.argv[1]), "test"))
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    store.close()
    """
)


def _hold_lock(root: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(root), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_second_writer_times_out_cleanly(ws: Workspace, run_nodus) -> None:
    open_store(ws).close()
    holder = _hold_lock(ws.root, 8)
    try:
        started = time.monotonic()
        with pytest.raises(StoreLockedError, match="locked by another process"):
            open_store(ws, lock_timeout=0.5)
        assert time.monotonic() - started >= 0.5
        result = run_nodus("--home", str(ws.root), "--lock-timeout", "0.3", "tables")
        assert result.returncode == 2
        assert result.stderr.strip().count("\n") == 0 and "locked" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        holder.kill()
        holder.wait()
    with open_store(ws) as store:
        assert store.schema_version == SCHEMA_VERSION


def test_second_writer_waits_then_proceeds(ws: Workspace, tmp_path: Path, run_nodus) -> None:
    open_store(ws).close()
    data = tmp_path / "ref.csv"
    data.write_text("a,b\n1,x\n2,y\n")
    holder = _hold_lock(ws.root, 1.5)
    try:
        result = run_nodus("--home", str(ws.root), "load", str(data), "--table", "ref")
    finally:
        holder.wait()
    assert result.returncode == 0, result.stderr
    with open_store(ws, read_only=True) as store:
        assert store.con.execute("SELECT count(*) FROM ref").fetchone()[0] == 2


def test_migrations_are_in_strictly_increasing_order() -> None:
    versions = [m.version for m in migrations_module.REGISTRY.migrations]
    assert versions == sorted(set(versions)) and versions[0] == 1
    assert versions[-1] == SCHEMA_VERSION


def test_opening_with_nothing_registered_is_a_bug_not_an_empty_store(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    _register_only(monkeypatch, [])
    with pytest.raises(RuntimeError, match=r"schemas\.install"):
        open_store(ws)
    assert not ws.store_path.exists()


def test_two_packages_cannot_claim_one_version() -> None:
    registry = migrations_module.Registry(migrations_module.REGISTRY.migrations)
    registry.register(migrations_module.REGISTRY.migrations)  # the same again: no change
    clash = migrations_module.Migration(SCHEMA_VERSION, "another", lambda con: None)
    with pytest.raises(ValueError, match=f"migration {SCHEMA_VERSION} declared twice"):
        registry.register([clash])
