"""Running the installed CLI with one of its output streams on a pseudo-terminal."""

from __future__ import annotations

import os
import subprocess
from typing import Literal

from tests.conftest import PROJECT, nodus_command


def terminal_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without a fixed size (the pty's own size counts), nodus importable."""
    env = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "LINES")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


def run_with_pty(
    *args: str,
    on: Literal["stdout", "stderr"],
    columns: int = 80,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> tuple[int, str, str]:
    """``nodus ARGS`` with the stream ``on`` a pseudo-terminal ``columns`` wide, the other
    a pipe: (exit, stdout, stderr). The terminal's text is everything it received,
    escape sequences and CRLFs included; it is read as it comes (a pty's buffer is small).
    """
    import fcntl
    import pty
    import struct
    import termios
    import threading

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen(
        [*nodus_command(), *args],
        stdin=subprocess.DEVNULL,
        stdout=follower if on == "stdout" else subprocess.PIPE,
        stderr=follower if on == "stderr" else subprocess.PIPE,
        env=env if env is not None else terminal_env(),
    )
    os.close(follower)
    chunks: list[bytes] = []

    def pump() -> None:
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the other side closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    out, err = proc.communicate(timeout=timeout)
    reader.join(timeout)
    os.close(leader)
    shown = b"".join(chunks).decode("utf-8", errors="replace")
    piped = (out if on == "stderr" else err).decode("utf-8", errors="replace")
    return (proc.returncode, piped, shown) if on == "stderr" else (proc.returncode, shown, piped)
