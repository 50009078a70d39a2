"""Crash-safe file writes: temporary file in the same directory, fsync, rename, fsync dir."""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO


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


# --- bounded reads of untrusted inputs --------------------------------------------------
# Bundles, proofs, keys, signatures and trust files come from anywhere: a device, a FIFO
# or a file that never ends must give one clear error, not a hang or a MemoryError.

MAX_JSON_DEPTH = 64
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


def open_regular(path: Path | str, what: str) -> BinaryIO:
    """Open ``path`` for reading only when it is a regular file (never blocks on a FIFO)."""
    from nodus_cli.errors import InputError

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputError(f"{path}: {what} is not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bounded(path: Path | str, limit: int, what: str) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (InputError otherwise)."""
    from nodus_cli.errors import InputError

    with open_regular(path, what) as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise InputError(f"{path}: {exc.strerror}") from None
    if len(data) > limit:
        raise InputError(f"{path}: {what} is larger than {limit} bytes")
    return data


def json_depth_exceeds(data: bytes | str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON text nests arrays and objects deeper than ``limit`` (strings skipped)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub(b'""', raw)):
        depth += 1 if match.group() in (b"[", b"{") else -1
        if depth > limit:
            return True
    return False


def loads_bounded(data: bytes | str, limit: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that refuses nesting deeper than ``limit`` with ValueError."""
    import json

    if json_depth_exceeds(data, limit):
        raise ValueError(f"JSON nested deeper than {limit} levels")
    return json.loads(data)
