"""An export killed at any point leaves no half-written file and no duplicate row.

Children are forked from a forkserver (single-threaded, duckdb preloaded), so
each kill costs milliseconds: SIGKILL at every progress step of an export, and at
random moments. A few real ``nodus export`` processes are killed too.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from nodus_cli import schemas
from nodus_cli.scaleout.export import export_tables
from nodus_cli.store import open_store
from nodus_cli.workspace import Workspace

ROWS_PER_ROUND = 300
INSERT = """INSERT INTO logs (time, level, message, source, line_no, committed_at)
SELECT TIMESTAMPTZ '2026-05-01 00:00:00+00' + to_minutes((i * 37 % 4000)::BIGINT),
       'info', repeat('x', 40) || i, 'src' || (i % 3), i,
       coalesce(CAST(? AS TIMESTAMPTZ), now()) FROM range(?, ?) t(i)"""
# Every third round's rows share one early commit time, as after a clock step back:
# from the second such round on, the export settles that commit row by row.
STEPPED_BACK = "2001-01-01 00:00:00+00"


def _export_child(home: str, out: str, full: bool, kill_at_step: int | None) -> None:
    """Run an export; SIGKILL ourselves when progress reaches ``kill_at_step``."""
    steps = 0

    def progress(_amount: float) -> None:
        nonlocal steps
        steps += 1
        if kill_at_step is not None and steps >= kill_at_step:
            os.kill(os.getpid(), signal.SIGKILL)

    schemas.install()  # a forkserver child: the test process's registrations are not here
    with open_store(Workspace(Path(home), "--home")) as store:
        export_tables(store, ["logs"], Path(out), full=full, on_progress=progress)


@pytest.fixture(scope="module")
def forkserver() -> multiprocessing.context.BaseContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["duckdb", "nodus_cli.scaleout.export", __name__])
    return context


def _add_rows(home: Path, start: int) -> int:
    stamp = STEPPED_BACK if start // ROWS_PER_ROUND % 3 == 2 else None
    with open_store(Workspace(home, "--home")) as store, store.change({"test": "rows"}):
        store.con.execute(INSERT, [stamp, start, start + ROWS_PER_ROUND])
    return start + ROWS_PER_ROUND


def _visible(out: Path) -> tuple[int, int]:
    """(rows, distinct line numbers) in the files a reader sees; every file must be whole."""
    files = sorted((out / "logs").rglob("*.parquet")) if (out / "logs").is_dir() else []
    if not files:
        return 0, 0
    con = duckdb.connect()
    for file in files:  # a truncated or half-written file fails here
        con.execute("SELECT count(*) FROM parquet_metadata(?)", [str(file)]).fetchall()
    names = [str(f) for f in files]
    return con.execute(
        "SELECT count(*), count(DISTINCT line_no) FROM read_parquet(?)", [names]
    ).fetchone()


def _check_after_crash(out: Path) -> None:
    rows, distinct = _visible(out)
    assert rows == distinct, "an interrupted export left duplicate rows visible"
    for leftover in (out / "logs").rglob("*") if (out / "logs").is_dir() else []:
        assert leftover.is_dir() or leftover.suffix == ".parquet" or leftover.name == "_nodus.json"


def _check_complete(home: Path, out: Path, inserted: int) -> None:
    with open_store(Workspace(home, "--home")) as store:
        export_tables(store, ["logs"], out)
    assert _visible(out) == (inserted, inserted)
    assert list((out / ".nodus-staging").iterdir()) == []


def test_kill_at_every_step_and_at_random_moments(forkserver, tmp_path: Path) -> None:
    home, out = tmp_path / "ws", tmp_path / "out"
    rng = random.Random(9)
    inserted = _add_rows(home, 0)
    plan = [("step", k, False) for k in range(1, 9)] + [("step", k, True) for k in (1, 2)]
    plan += [("timer", rng.uniform(0.0, 0.6), rng.random() < 0.2) for _ in range(14)]
    for kind, when, full in plan:
        inserted = _add_rows(home, inserted)
        step = int(when) if kind == "step" else None
        child = forkserver.Process(target=_export_child, args=(str(home), str(out), full, step))
        child.start()
        if kind == "timer":
            child.join(timeout=when)
            if child.is_alive():
                os.kill(child.pid, signal.SIGKILL)
        child.join()
        if kind == "step":  # the kill landed inside the export: something was left to finish
            assert child.exitcode == -signal.SIGKILL
            assert any((out / ".nodus-staging").iterdir())
        _check_after_crash(out)
    _check_complete(home, out, inserted)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_killing_the_real_command(run_nodus, tmp_path: Path, seed: int) -> None:
    home, out = tmp_path / "ws", tmp_path / "out"
    inserted = _add_rows(home, 0)
    assert run_nodus("--home", str(home), "export", "logs", "--to", str(out)).returncode == 0
    inserted = _add_rows(home, inserted)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    command = [sys.executable, "-m", "nodus_cli", "--home", str(home), "export", "logs"]
    process = subprocess.Popen([*command, "--to", str(out)], env=env)
    time.sleep(random.Random(seed).uniform(0.3, 1.5))
    process.kill()
    process.wait()
    _check_after_crash(out)
    _check_complete(home, out, inserted)
