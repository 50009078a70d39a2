"""A truncated or corrupt store is one line naming the file and what to do (exit 2, never 70)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodus_cli.store import open_store
from nodus_cli.store.db import set_aside
from nodus_cli.workspace import Workspace

HINT = "restore it from an export or a backup, or start over with `nodus init --force`"


@pytest.fixture
def store(run_nodus: Any, nodus_home: Path) -> Path:
    """A fresh workspace's store, as issue 23 damaged it (made by ``nodus init``; a
    query alone no longer creates one)."""
    assert run_nodus("init").returncode == 0
    return nodus_home / "store.duckdb"


def _assert_damage_line(result: Any, store: Path) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert (
        result.stderr == f"nodus: error: store {store} is damaged (truncated or corrupt): {HINT}\n"
    )


def test_truncated_store(run_nodus: Any, store: Path) -> None:
    with store.open("r+b") as handle:
        handle.truncate(store.stat().st_size // 2)
    for command in (["info"], ["query", "SELECT count(*) FROM journal"], ["tables"]):
        _assert_damage_line(run_nodus(*command), store)


def _data_block_offset(store: Path, table: str) -> int:
    """Where in the file a block of ``table``'s rows lies (DuckDB's 256 KiB blocks)."""
    import duckdb

    con = duckdb.connect(str(store), read_only=True)
    try:
        [(block_id,)] = con.execute(
            "SELECT min(block_id) FROM pragma_storage_info(?) WHERE block_id >= 0", [table]
        ).fetchall()
    finally:
        con.close()
    return 12288 + int(block_id) * 262144


def test_eight_bytes_overwritten_in_the_middle(run_nodus: Any, store: Path) -> None:
    """The issue's case: 8 bytes in the middle of a block every command reads at open."""
    offset = _data_block_offset(store, "meta") + 262144 // 2
    with store.open("r+b") as handle:
        handle.seek(offset)
        handle.write(b"XXXXXXXX")
    for command in (["info"], ["query", "SELECT count(*) FROM journal"], ["journal"]):
        _assert_damage_line(run_nodus(*command), store)


def test_init_force_starts_over_and_keeps_the_old_store(
    run_nodus: Any, store: Path, nodus_home: Path
) -> None:
    with store.open("r+b") as handle:
        handle.truncate(store.stat().st_size // 2)
    damaged = store.read_bytes()
    secret = (nodus_home / "secret.key").read_bytes()
    result = run_nodus("init", "--force", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    kept = Path(document["set_aside"])
    assert kept.parent == nodus_home and kept.name.startswith("store.duckdb.broken-")
    assert kept.read_bytes() == damaged
    assert (nodus_home / "secret.key").read_bytes() == secret
    info = run_nodus("info", "--json")
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["tables"]["journal"] >= 1


def test_set_aside_is_refused_while_the_store_is_open(nodus_home: Path) -> None:
    """DuckDB's lock is per process: another process holding the store keeps it in place."""
    ws = Workspace(nodus_home, "--home")
    probe = (
        "import sys; from pathlib import Path; from nodus_cli.store.db import set_aside\n"
        "from nodus_cli.errors import StoreLockedError\n"
        "try: set_aside(Path(sys.argv[1]))\n"
        "except StoreLockedError: sys.exit(9)\n"
    )
    with open_store(ws):
        refused = subprocess.run([sys.executable, "-c", probe, str(ws.store_path)], check=False)
    assert refused.returncode == 9 and ws.store_path.exists()
    kept = set_aside(ws.store_path)
    assert kept is not None and kept.exists() and not ws.store_path.exists()


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(position=st.floats(min_value=0, max_value=1, exclude_max=True), data=st.data())
def test_damage_anywhere_is_never_an_internal_error(
    cli: Any, nodus_home: Path, tmp_path: Path, position: float, data: Any
) -> None:
    store = nodus_home / "store.duckdb"
    pristine = tmp_path / "pristine.duckdb"
    if not pristine.exists():
        assert cli("init").exit_code == 0 and cli("query", "SELECT 1").exit_code == 0
        pristine.write_bytes(store.read_bytes())
    damaged = bytearray(pristine.read_bytes())
    offset = int(position * (len(damaged) - 8))
    if data.draw(st.booleans(), label="truncate"):
        del damaged[offset:]
    else:
        damaged[offset : offset + 8] = data.draw(st.binary(min_size=8, max_size=8))
    store.write_bytes(bytes(damaged))
    for command in (["info"], ["query", "SELECT * FROM journal, meta"], ["tables"]):
        result = cli(*command)
        assert result.exit_code in (0, 2), (offset, command, result.stderr)
        if result.exit_code == 2:
            assert result.stderr.count("\n") == 1 and "internal error" not in result.stderr
