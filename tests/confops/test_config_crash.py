"""Kill applies at random moments: TARGET is always exactly the old or the new bytes.

A forked child runs the library apply (or rollback) and is SIGKILLed after a random
delay, or kills itself at a named checkpoint. The next command settles the intent:
history must then agree with the disk, and no temporary file may be left.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from nodus_cli.confops.apply import apply_config, rollback_config, settle_pending
from nodus_cli.confops.history import current_generation, list_generations
from nodus_cli.store import open_store
from nodus_cli.workspace import Workspace
from tests.conftest import PROJECT, nodus_command

OLD = b'# service\n[pool]\nmax = 100  # keep\nmin = 1\n\n[log]\nlevel = "info"\n'
NEW = b'# service\n[pool]\nmax = 500  # keep\nmin = 1\n\n[log]\nlevel = "debug"\n'
PASSING, FAILING = "true", "exit 3"
# What TARGET holds after a kill at each checkpoint (the restore ones: a failing check).
# Until the check's result is committed the new bytes are not vouched for: settling
# rolls them back; a restore that was decided is completed.
EXPECTED = {
    "intent": "old",
    "written": "old",
    "switched": "old",
    "checked": "old",
    "committed": "new",
    "restore-intent": "old",
    "restored": "old",
    "restore-committed": "old",
}
RESTORE_CHECKPOINTS = ("restore-intent", "restored", "restore-committed")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Harness:
    def __init__(self, root: Path) -> None:
        self.workspace = Workspace(root / "ws", "--home")
        self.target = root / "etc" / "service.toml"
        self.target.parent.mkdir()
        self.target.write_bytes(OLD)
        with open_store(self.workspace) as store:  # history to roll back through
            apply_config(store, self.target, content=NEW)
            apply_config(store, self.target, content=OLD)

    def run_child(self, *, check: str | None, rollback: bool, kill_at: str | None) -> int:
        """Fork a child that applies the other content; returns its pid."""
        new = OLD if self.target.read_bytes() == NEW else NEW
        ready_read, ready_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never return into pytest
            code = 0
            try:
                os.close(ready_read)

                def checkpoint(name: str) -> None:
                    if name == kill_at:
                        os.kill(os.getpid(), signal.SIGKILL)

                with open_store(self.workspace) as store:
                    os.write(ready_write, b"1")
                    if rollback:
                        rollback_config(store, self.target, check=check, checkpoint=checkpoint)
                    else:
                        apply_config(
                            store, self.target, content=new, check=check, checkpoint=checkpoint
                        )
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(ready_write)
        self._ready = ready_read
        return pid

    def wait_ready(self) -> None:
        os.read(self._ready, 1)
        os.close(self._ready)

    def settle_and_verify(self, before: bytes) -> str:
        """The crash-safety property, checked after the next command settles."""
        assert self.target.read_bytes() in (OLD, NEW)
        with open_store(self.workspace) as store:
            settle_pending(store)
            after = self.target.read_bytes()  # settling may have rolled back
            assert after in (OLD, NEW), after
            if before in (OLD, NEW):
                assert after in (before, OLD if before == NEW else NEW)
            current = current_generation(store, str(self.target))
            pending = [
                g for g in list_generations(store, str(self.target)) if g.status == "pending"
            ]
            intents = store.con.execute(
                "SELECT count(*) FROM config_intents WHERE settled IS NULL"
            ).fetchone()[0]
        assert not pending and intents == 0
        if current is not None:
            assert current.sha256 == _sha(after), "history disagrees with the disk"
        leftovers = [p.name for p in self.target.parent.iterdir() if p.name != "service.toml"]
        assert leftovers == []
        return "new" if after != before else "old"


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def _calibrate(harness: Harness) -> tuple[float, float]:
    """How long a child takes to open the store, and then to apply (slowest of two runs)."""
    opening = applying = 0.0
    for _ in range(2):
        started = time.perf_counter()
        pid = harness.run_child(check=FAILING, rollback=False, kill_at=None)
        harness.wait_ready()
        ready = time.perf_counter()
        os.waitpid(pid, 0)
        opening = max(opening, ready - started)
        applying = max(applying, time.perf_counter() - ready)
        harness.settle_and_verify(harness.target.read_bytes())
    return opening, applying


@pytest.mark.parametrize("chunk", range(4))
def test_random_sigkill_during_apply_leaves_old_or_new(harness: Harness, chunk: int) -> None:
    rng = random.Random(chunk)
    opening, applying = _calibrate(harness)  # delays follow this machine's speed
    outcomes = {"old": 0, "new": 0}
    run = 0
    # 50 random kills, then more (up to 150) until both outcomes were seen: the delays
    # follow this machine's speed, but a loaded machine can skew a whole batch one way.
    while run < 50 or (run < 150 and not (outcomes["old"] and outcomes["new"])):
        run += 1
        before = harness.target.read_bytes()
        check = rng.choice([None, PASSING, FAILING])
        pid = harness.run_child(check=check, rollback=run % 5 == 4, kill_at=None)
        if rng.random() < 0.8:
            harness.wait_ready()  # aim at the apply itself rather than opening the store
            time.sleep(rng.uniform(0, 1.2 * applying))
        else:
            time.sleep(rng.uniform(0, opening + applying))
        _kill(pid)
        outcomes[harness.settle_and_verify(before)] += 1
    assert outcomes["old"] and outcomes["new"], outcomes


@pytest.mark.parametrize("kill_at", list(EXPECTED))
def test_kill_at_each_checkpoint(harness: Harness, kill_at: str) -> None:
    check = FAILING if kill_at in RESTORE_CHECKPOINTS else PASSING
    for rollback in (False, True, False, True, False, True):
        before = harness.target.read_bytes()
        pid = harness.run_child(check=check, rollback=rollback, kill_at=kill_at)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status), "the child should have died at the checkpoint"
        assert harness.settle_and_verify(before) == EXPECTED[kill_at]


def test_settled_generation_records_an_interrupted_check(harness: Harness) -> None:
    pid = harness.run_child(check=PASSING, rollback=False, kill_at="switched")
    os.waitpid(pid, 0)
    assert harness.target.read_bytes() == NEW  # killed after the switch, before the check
    harness.settle_and_verify(OLD)
    assert harness.target.read_bytes() == OLD
    with open_store(harness.workspace) as store:
        interrupted = list_generations(store, str(harness.target))[-1]
    assert interrupted.status == "abandoned"
    assert interrupted.check == {"command": PASSING, "outcome": "interrupted"}


def test_without_a_check_the_switched_bytes_stay(harness: Harness) -> None:
    pid = harness.run_child(check=None, rollback=False, kill_at="switched")
    os.waitpid(pid, 0)
    assert harness.settle_and_verify(OLD) == "new"


def test_leftover_temporary_files_are_removed(harness: Harness) -> None:
    pid = harness.run_child(check=None, rollback=False, kill_at="written")
    os.waitpid(pid, 0)
    leftovers = [p for p in harness.target.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers, "the kill should leave the temporary file behind"
    harness.settle_and_verify(OLD)


def test_sigkill_of_the_real_command_during_its_check(
    run_nodus, tmp_path: Path, nodus_home: Path
) -> None:
    """Issue 23.6: a kill during the check left the new bytes committed, never checked."""
    target = tmp_path / "service.toml"
    target.write_bytes(OLD)
    new = tmp_path / "new.toml"
    new.write_bytes(NEW)
    for check in ("sleep 30", "sleep 30; exit 3"):
        env = {**os.environ, "PYTHONPATH": str(PROJECT)}
        process = subprocess.Popen(
            [*nodus_command(), "config", "apply", str(target), str(new), "--check", check],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while target.read_bytes() != NEW and time.monotonic() < deadline:
            time.sleep(0.01)
        process.kill()
        process.wait()
        assert target.read_bytes() == NEW
        history = run_nodus("config", "history", str(target), "--json")
        assert history.returncode == 0, history.stderr
        assert "never finished its health check" in history.stderr
        assert target.read_bytes() == OLD, "the unchecked new bytes stayed in force"
        generations = json.loads(history.stdout)["generations"]
        last = generations[-1]
        assert last["status"] == "abandoned" and last["check"]["outcome"] == "interrupted"
        assert last["sha256"] == _sha(NEW)
        current = [g for g in generations if g["status"] == "committed"][-1]
        assert current["sha256"] == _sha(OLD)


def test_sigterm_during_the_check_restores_at_once_and_stops_the_check(
    run_nodus, tmp_path: Path
) -> None:
    """``kill PID`` during a check: the old bytes are back before nodus exits."""
    target = tmp_path / "service.toml"
    target.write_bytes(OLD)
    new = tmp_path / "new.toml"
    new.write_bytes(NEW)
    marker = tmp_path / "check-still-ran"
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    process = subprocess.Popen(
        [*nodus_command(), "config", "apply", str(target), str(new),
         "--check", f"sleep 5; touch {marker}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while target.read_bytes() != NEW and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # into the check
    process.terminate()
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert target.read_bytes() == OLD, "the unchecked bytes stayed after a SIGTERM"
    time.sleep(6)
    assert not marker.exists(), "the check kept running after nodus was stopped"
    history = run_nodus("config", "history", str(target), "--json")
    last = json.loads(history.stdout)["generations"][-1]
    assert last["status"] == "abandoned" and last["check"]["outcome"] == "interrupted"


def test_sigkill_of_the_real_command_at_random_moments(run_nodus, tmp_path: Path) -> None:
    target = tmp_path / "service.toml"
    target.write_bytes(OLD)
    rng = random.Random(7)
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    for _ in range(3):
        before = target.read_bytes()
        value = 500 if before == OLD else 100
        process = subprocess.Popen(
            [*nodus_command(), "config", "apply", str(target), "--set", f"pool.max={value}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.2, 0.8))
        process.kill()
        process.wait()
        after = target.read_bytes()
        assert after == before or after == before.replace(
            f"max = {100 if value == 500 else 500}".encode(), f"max = {value}".encode()
        )
        history = run_nodus("config", "history", str(target), "--json")
        assert history.returncode == 0, history.stderr
        generations = json.loads(history.stdout)["generations"]
        committed = [g for g in generations if g["status"] == "committed"]
        if committed:
            assert committed[-1]["sha256"] == _sha(after)
        assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".tmp") == []
