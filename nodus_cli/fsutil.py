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
) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces ``path`` atomically when the block succeeds.

    On any exception the temporary file is removed and ``path`` is untouched.
    ``mode`` sets the permission bits (for example 0o600 for secrets) before any
    byte is written, so a secret is never readable by others even briefly.
    ``owner`` (uid, gid) is given to the new file too (PermissionError when this
    process may not). The temporary file is ``temp_prefix(path, tag)`` + random +
    ``.tmp``, so a caller can find the leftovers of a crashed writer by its ``tag``.
    """
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


def atomic_write(path: Path, data: bytes, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new bytes."""
    with atomic_writer(path, mode) as handle:
        handle.write(data)


def read_text(path: Path, kind: str) -> str:
    """A small UTF-8 file's text; a failure as one line in the user's words
    (``FILE: no such file``, ``FILE: not an age identity file``)."""
    from nodus_cli.errors import InputError, describe_os_error

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(describe_os_error(exc)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not {kind} (not UTF-8 text)") from None
