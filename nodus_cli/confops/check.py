"""The health check after a switch: a shell command with a deadline, its output's tail
kept, its process group killed when it runs over or nodus is interrupted."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from nodus_cli.interrupts import terminate_as_interrupt

OUTPUT_TAIL = 4000


@dataclass(frozen=True)
class CheckResult:
    command: str
    outcome: str  # passed, failed, timeout
    exit_code: int | None
    seconds: float
    output: str

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"

    def to_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "seconds": round(self.seconds, 3),
            "output": self.output,
        }


def run_check(command: str, target: str, timeout: float) -> CheckResult:
    """Run ``command`` in a shell with ``NODUS_CONFIG_TARGET`` set; kill it at ``timeout``.

    The check runs in a session of its own, and that whole process group is killed
    when the shell exits or the time is up: nothing the check started in it outlives
    it. A process that left the group (``setsid``) may keep the output pipe open; its
    output is read only for ``DRAIN_GRACE`` seconds after the end, never waited for.
    """
    env = {**os.environ, "NODUS_CONFIG_TARGET": target}
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        shell=True,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a process group we can kill as a whole
    )
    assert process.stdout is not None
    output = _TailBuffer(OUTPUT_TAIL * 4)
    try:
        with terminate_as_interrupt():  # stop the check and restore, as Ctrl-C does
            exited = _wait_reading(process, output, started + timeout)
        _kill_group(process)
        _drain(process.stdout, output, time.monotonic() + DRAIN_GRACE)
    except BaseException:
        _kill_group(process)
        raise
    finally:
        process.stdout.close()
        process.wait()
    if exited:
        outcome = "passed" if process.returncode == 0 else "failed"
        exit_code: int | None = process.returncode
    else:
        outcome, exit_code = "timeout", None
    text = output.bytes().decode("utf-8", errors="replace")[-OUTPUT_TAIL:]
    return CheckResult(command, outcome, exit_code, time.monotonic() - started, text)


DRAIN_GRACE = 0.5  # seconds to read what is left in the pipe after the check's shell ended


class _TailBuffer:
    """The last ``limit`` bytes written to it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._data = bytearray()

    def add(self, chunk: bytes) -> None:
        self._data += chunk
        if len(self._data) > 2 * self.limit:
            del self._data[: -self.limit]

    def bytes(self) -> bytes:
        return bytes(self._data[-self.limit :])


def _exited(process: subprocess.Popen[bytes]) -> bool:
    """Whether the shell has exited, leaving it unreaped (its pid keeps naming the group)."""
    try:
        info = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def _wait_reading(process: subprocess.Popen[bytes], output: _TailBuffer, deadline: float) -> bool:
    """Collect output until the shell exits (True) or ``deadline`` passes (False)."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    open_pipe = True
    while not _exited(process):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        if not open_pipe:
            time.sleep(min(remaining, 0.05))
            continue
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.05))
        if ready:
            chunk = os.read(fd, 65536)
            if chunk:
                output.add(chunk)
            else:
                open_pipe = False
    return True


def _drain(pipe: Any, output: _TailBuffer, deadline: float) -> None:
    """Read what is left in the pipe, until its end or ``deadline``."""
    fd = pipe.fileno()
    while (remaining := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            return
        chunk = os.read(fd, 65536)
        if not chunk:
            return
        output.add(chunk)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
