"""Crash-safe file writes: temporary file in the same directory, fsync, rename, fsync dir."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def current_umask() -> int:
    """The process umask (reading it means setting it, so it is put back at once)."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def temp_prefix(path: Path, tag: str = "") -> str:
    """The name prefix of ``atomic_writer``'s temporary files for ``path``."""
    return f".{Path(path).name}.{tag}"


@contextlib.contextmanager
def atomic_writer(
    path: Path,
    mode: int | None = None,
    *,
    owner: tuple[int, int] | None = None,
    tag: str = "",
    follow_umask: bool = False,
) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces ``path`` atomically when the block succeeds.

    On any exception the temporary file is removed and ``path`` is untouched.
    ``mode`` sets the permission bits (for example 0o600 for secrets) before any
    byte is written, so a secret is never readable by others even briefly.
    ``owner`` (uid, gid) is given to the new file too (PermissionError when this
    process may not). The temporary file is ``temp_prefix(path, tag)`` + random +
    ``.tmp``, so a caller can find the leftovers of a crashed writer by its ``tag``.
    The file is private (0600) unless ``mode`` is given or ``follow_umask`` asks for
    what ``open`` would create (0666 less the umask), for files that hold no secret.
    """
    if follow_umask and mode is None:
        mode = 0o666 & ~current_umask()
    path = Path(path)
    directory = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=temp_prefix(path, tag), suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            created = os.fstat(fd)
            if owner is not None and owner != (created.st_uid, created.st_gid):
                os.fchown(fd, *owner)  # before chmod: chown clears set-id bits
            if mode is not None:
                os.fchmod(fd, mode)
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    fsync_dir(directory)


def atomic_write(
    path: Path, data: bytes, mode: int | None = None, *, follow_umask: bool = False
) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new bytes."""
    with atomic_writer(path, mode, follow_umask=follow_umask) as handle:
        handle.write(data)
