from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from nodus_cli.workspace import find_workspace, init_workspace, xdg_data_home


def test_lookup_order_home_flag_beats_everything(tmp_path: Path) -> None:
    (tmp_path / ".nodus").mkdir()
    ws = find_workspace(tmp_path / "flag", cwd=tmp_path, env={"NODUS_HOME": str(tmp_path / "e")})
    assert ws.root == tmp_path / "flag" and ws.found_by == "--home"


def test_lookup_order_env_beats_discovery(tmp_path: Path) -> None:
    (tmp_path / ".nodus").mkdir()
    ws = find_workspace(cwd=tmp_path, env={"NODUS_HOME": str(tmp_path / "env")})
    assert ws.root == tmp_path / "env" and ws.found_by == "NODUS_HOME"


def test_lookup_finds_nearest_dot_nodus_upward(tmp_path: Path) -> None:
    (tmp_path / ".nodus").mkdir()
    (tmp_path / "a" / ".nodus").mkdir(parents=True)
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    ws = find_workspace(cwd=deep, env={})
    assert ws.root == tmp_path / "a" / ".nodus" and ws.found_by == ".nodus"


def test_lookup_falls_back_to_xdg(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "xdg")}
    ws = find_workspace(cwd=tmp_path, env=env)
    assert ws.root == tmp_path / "xdg" / "nodus" and ws.found_by == "xdg"
    assert xdg_data_home({}).name == "nodus"


def test_init_creates_layout_with_private_secret(tmp_path: Path) -> None:
    ws, created = init_workspace(tmp_path)
    assert created
    assert ws.keyring_dir.is_dir() and ws.settings_path.is_file()
    assert stat.S_IMODE(ws.secret_path.stat().st_mode) == 0o600
    assert len(ws.secret()) == 32
    assert ws.settings()["store"]["lock_timeout"] == 10.0
    again, created_again = init_workspace(tmp_path)
    assert again.root == ws.root and not created_again


def test_init_command_and_discovery_from_subdirectory(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NODUS_HOME")
    result = cli("init", str(tmp_path), "--json")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["created"] is True and doc["schema_version"] >= 1
    assert Path(doc["store"]).is_file()
    sub = tmp_path / "x" / "y"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    info = cli("info", "--json").json()
    assert info["workspace"]["root"] == str(tmp_path / ".nodus")
    assert info["workspace"]["found_by"] == ".nodus"
    again = cli("init", str(tmp_path))
    assert again.exit_code == 0 and "Already initialised" in again.stderr


def test_home_option_overrides_env(cli, tmp_path: Path) -> None:
    result = cli("--home", str(tmp_path / "explicit"), "info", "--json")
    assert result.json()["workspace"]["root"] == str(tmp_path / "explicit")
    assert result.json()["workspace"]["found_by"] == "--home"


def test_info_json_lists_tables_versions_and_paths(cli, nodus_home: Path) -> None:
    assert cli("init").exit_code == 0  # NODUS_HOME names the workspace: init makes it
    doc = cli("info", "--json").json()
    assert doc["workspace"]["root"] == str(nodus_home)
    assert doc["schema_version"] >= 1
    assert {"journal", "logs", "metrics", "meta"} <= set(doc["tables"])
    assert doc["engines"]["duckdb"]
    text = cli("info")
    assert text.exit_code == 0 and "schema:" in text.stdout


def test_info_before_any_store_exists(cli) -> None:
    doc = cli("info", "--json").json()
    assert doc["schema_version"] is None and doc["tables"] == {}


def test_init_refuses_a_file(cli, tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    result = cli("init", str(target))
    assert result.exit_code == 2 and result.stderr.startswith("nodus: error:")


def test_settings_lock_timeout_is_read(tmp_path: Path) -> None:
    ws, _ = init_workspace(tmp_path)
    ws.settings_path.write_text("[store]\nlock_timeout = 2.5\n")
    from nodus_cli.cli import flags, state

    flags.reset([])
    assert state.lock_timeout(ws) == 2.5
    os.environ.pop("X", None)
    assert json.dumps(ws.settings())


# --- init and read-only commands (issue 15.7) -------------------------------------------


@pytest.mark.parametrize("how", ["NODUS_HOME", "--home"])
def test_init_initialises_the_named_workspace_not_the_current_directory(
    run_nodus, tmp_path: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    named = tmp_path / "x"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    if how == "NODUS_HOME":
        monkeypatch.setenv("NODUS_HOME", str(named))
        result = run_nodus("init", "--json", cwd=cwd)
    else:
        monkeypatch.delenv("NODUS_HOME")
        result = run_nodus("--home", str(named), "init", "--json", cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["workspace"] == str(named)
    assert (named / "store.duckdb").is_file() and (named / "nodus.toml").is_file()
    assert not (cwd / ".nodus").exists()
    assert stat.S_IMODE(named.stat().st_mode) == 0o700


def test_init_without_a_named_workspace_makes_dot_nodus_here(
    run_nodus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NODUS_HOME")
    result = run_nodus("init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / ".nodus" / "store.duckdb").is_file()


READ_ONLY = [
    (("query", "select count(*) AS n FROM logs", "--json"), 0, '[{"n":0}]'),
    (("tables", "--json"), 0, '"table":"logs"'),
    (("journal", "--json"), 0, "[]"),
    (("sources", "--json"), 0, "[]"),
    (("quarantine", "--json"), 0, "[]"),
    (("config", "history", "service.toml", "--json"), 0, '"generations":[]'),
    (("config", "show", "service.toml"), 2, ""),
    (("info", "--json"), 0, '"schema_version":null'),
    (("sql", "lint", "-"), 0, ""),
    (("sql", "transpile", "-", "--to", "postgres"), 0, "SELECT1"),
]


@pytest.mark.parametrize(("args", "code", "shows"), READ_ONLY, ids=lambda a: str(a)[:30])
def test_read_only_commands_never_create_a_workspace(
    run_nodus, nodus_home: Path, tmp_path: Path, args: tuple[str, ...], code: int, shows: str
) -> None:
    """Issue 15.7: where nothing was recorded they run on nothing, and leave nothing."""
    result = run_nodus(*args, cwd=tmp_path, input="SELECT 1\n")
    assert result.returncode == code, result.stderr
    assert shows in result.stdout.replace(" ", "").replace("\n", ""), result.stdout
    assert not nodus_home.exists(), f"{args[0]} created the workspace"
    assert not (tmp_path / ".nodus").exists()


def test_read_only_commands_do_not_create_a_store_in_an_existing_workspace(
    run_nodus, nodus_home: Path
) -> None:
    nodus_home.mkdir()
    assert run_nodus("query", "select 1").returncode == 0
    assert run_nodus("journal").returncode == 0
    assert list(nodus_home.iterdir()) == []


def test_the_wal_a_commit_creates_is_private(tmp_path: Path) -> None:
    from nodus_cli.store import open_store
    from nodus_cli.workspace import Workspace

    ws = Workspace(tmp_path / "ws", "test")
    previous = os.umask(0o022)
    try:
        with open_store(ws) as store:
            with store.change({"test": "wal"}):
                store.con.execute("INSERT INTO meta VALUES ('wal-test', 'x')")
            wal = ws.store_path.with_name("store.duckdb.wal")
            assert wal.exists(), "the commit should have left a WAL while the store is open"
            assert stat.S_IMODE(wal.stat().st_mode) == 0o600
            assert stat.S_IMODE(ws.store_path.stat().st_mode) == 0o600
            assert stat.S_IMODE(ws.root.stat().st_mode) == 0o700
    finally:
        os.umask(previous)
