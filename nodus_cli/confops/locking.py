"""One apply at a time per directory (a lock file beside TARGET), and the temporary
files an interrupted apply left there."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from nodus_cli.errors import InputError, NodusError
from nodus_cli.fsutil import temp_prefix

TEMP_TAG = "nodus-"


class TargetBusy(NodusError):
    """Another nodus process is changing a file in TARGET's directory (exit 2)."""


_HELD: dict[str, int] = {}  # directory -> nesting depth, so one process can re-enter


@contextlib.contextmanager
def directory_lock(directory: Path, timeout: float) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``directory`` (waits up to ``timeout`` seconds)."""
    key = str(directory)
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError as exc:
        raise InputError(f"cannot lock {directory}: {exc.strerror}") from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TargetBusy(
                        f"another nodus is changing a file in {directory}; gave up after "
                        f"{timeout:g} s (raise --lock-timeout to wait longer)"
                    ) from None
                time.sleep(0.05)
        _HELD[key] = 1
        try:
            yield
        finally:
            del _HELD[key]
    finally:
        os.close(fd)  # releases the flock


def remove_leftovers(real_path: Path) -> list[str]:
    """Delete temporary files a crashed switch left beside ``real_path`` (lock held)."""
    removed = []
    for leftover in real_path.parent.glob(temp_prefix(real_path, TEMP_TAG) + "*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
            removed.append(leftover.name)
    return removed
