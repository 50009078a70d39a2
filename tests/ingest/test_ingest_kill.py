"""Exactly once under SIGKILL: kill an ingest anywhere, run it again, get one clean run."""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from nodus_cli.ingest.engine import IngestOptions, ingest
from nodus_cli.store import open_store
from nodus_cli.workspace import Workspace
from tests.conftest import PROJECT, nodus_command

WINDOW = 4096
CONTENT = (
    "SELECT time, level, host, app, pid, message, attrs, source, file_id, line_no, byte_offset "
    "FROM logs ORDER BY ALL",
    "SELECT * EXCLUDE (committed_at) FROM quarantine ORDER BY ALL",  # when, not what
    "SELECT file_id, path, fingerprint, byte_offset, line_no, head_hash, format, rows, "
    "quarantined, records, bytes_read FROM ingest_files ORDER BY ALL",
)


def write_inputs(directory: Path) -> list[str]:
    directory.mkdir()
    rng = random.Random(3)
    app = directory / "app.jsonl"
    with app.open("w") as out:
        for i in range(800):
            if i % 97 == 0:
                out.write(f"broken line {i}\n")
            else:
                out.write(
                    f'{{"ts": "2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z", '
                    f'"level": "{rng.choice(["info", "warn", "error"])}", "msg": "event {i}"}}\n'
                )
    java = directory / "server.log"
    with java.open("w") as out:
        for i in range(200):
            out.write(f"2026-01-01 00:00:{i % 60:02d},000 ERROR [main] failure {i}\n")
            if i % 5 == 0:
                out.write("java.lang.RuntimeException: boom\n\tat a.B.c(B.java:1)\n")
    small = []  # files far below a window: several commits share one checkpoint
    for number in range(12):
        small.append(directory / f"small-{number:02d}.jsonl")
        small[-1].write_text(
            "".join(f'{{"msg": "small {number} {i}", "level": "info"}}\n' for i in range(5))
        )
    return [str(app), str(java), *map(str, small)]


def run_child(home: Path, paths: list[str], progress_fd: int | None = None) -> int:
    """Fork a child that ingests; it writes one byte to ``progress_fd`` per window."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:

        def tick(_amount: int) -> None:
            if progress_fd is not None:
                os.write(progress_fd, b".")

        with open_store(Workspace(home, "test")) as store:
            ingest(store, paths, IngestOptions(window_bytes=WINDOW), on_progress=tick)
        code = 0
    finally:
        os._exit(code)


def kill_after_windows(home: Path, paths: list[str], windows: int, rng: random.Random) -> bool:
    """Run an ingest child, SIGKILL it after about ``windows`` windows; True if it died of it."""
    read_end, write_end = os.pipe()
    pid = run_child(home, paths, write_end)
    os.close(write_end)
    seen = 0
    while seen < windows:
        ready, _, _ = select.select([read_end], [], [], 60)
        chunk = os.read(read_end, 64) if ready else b""
        if not chunk:
            break
        seen += len(chunk)
    time.sleep(rng.random() * 0.02)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(read_end)
    return os.WIFSIGNALED(status)


def wait_ok(pid: int) -> None:
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def snapshot(home: Path) -> list[list[tuple]]:
    with open_store(Workspace(home, "test"), read_only=True) as store:
        return [store.con.execute(sql).fetchall() for sql in CONTENT]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_sigkill_at_random_points_then_rerun_equals_one_clean_run(tmp_path: Path) -> None:
    paths = write_inputs(tmp_path / "in")
    reference_home = tmp_path / "reference"
    wait_ok(run_child(reference_home, paths))
    reference = snapshot(reference_home)
    windows = sum(max(1, row[10] // WINDOW) for row in reference[2])
    assert sum(row[7] for row in reference[2]) > 900
    rng = random.Random(11)
    partial = interrupted = 0
    for trial in range(8):
        home = tmp_path / f"trial{trial}"
        for _kill in range(rng.randint(1, 3)):
            interrupted += kill_after_windows(home, paths, rng.randint(0, windows), rng)
        if snapshot(home)[0] != reference[0]:
            partial += 1
        wait_ok(run_child(home, paths))
        assert snapshot(home) == reference, f"trial {trial}"
    assert interrupted >= 8 and partial >= 1  # kills landed while work was going on


def test_real_nodus_ingest_killed_then_rerun(tmp_path: Path) -> None:
    source = tmp_path / "big.jsonl"
    with source.open("w") as out:
        for i in range(150_000):
            out.write(f'{{"ts": "2026-01-01T00:00:00Z", "level": "info", "msg": "m{i}"}}\n')
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT), env.get("PYTHONPATH")]))
    env["NODUS_HOME"] = str(tmp_path / "home")
    command = [*nodus_command(), "ingest", str(source), "--json"]
    for delay in (0.5, 1.2):
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    sql = "SELECT count(*) AS n, count(DISTINCT message) AS d FROM logs"
    counted = subprocess.run(
        [*nodus_command(), "query", sql, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert counted.returncode == 0, counted.stderr
    assert json.loads(counted.stdout) == [{"n": 150_000, "d": 150_000}]
