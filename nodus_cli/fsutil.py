"""Crash-safe file writes: temporary file in the same directory, fsync, rename, fsync dir.

Every file nodus writes (``-o``, reports, workspace files) goes through ``atomic_writer``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import sys
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


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Files created inside the block (by this process, DuckDB included) are owner-only."""
    previous = os.umask(0o077)
    os.umask(previous | 0o077)
    try:
        yield
    finally:
        os.umask(previous)


def current_umask() -> int:
    """The process umask (reading it means setting it, so it is put back at once)."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def temp_prefix(path: Path, tag: str = "") -> str:
    """The name prefix of ``atomic_writer``'s temporary files for ``path``."""
    return f".{Path(path).name}.{tag}"


_MAX_LINKS = 40  # as the kernel's own limit on a path's symbolic links


def _is_descriptor_link(path: Path) -> bool:
    """Whether ``path`` is one of /proc's links to an open file (/dev/stdout ends in one)."""
    parent = Path(os.path.realpath(path.parent))
    return parent.match("/proc/*/fd") or parent.match("/proc/*/task/*/fd")


def write_target(path: Path) -> tuple[Path, bool]:
    """Where writing ``path`` lands, and whether it must be written in place.

    Symbolic links are followed one by one, so that the file they name is replaced
    and the links stay. A device, a FIFO, a socket or a link to an open descriptor
    (``/proc/self/fd/1``) cannot be replaced by a rename: it is written in place.
    """
    current = Path(os.path.abspath(path))
    for _ in range(_MAX_LINKS):
        if _is_descriptor_link(current):
            return current, True
        try:
            link = os.readlink(current)
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.ENOENT):  # not a link, or a new file
                break
            raise
        current = Path(os.path.realpath(current.parent)) / link
    else:
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(path))
    current = Path(os.path.realpath(current.parent)) / current.name
    try:
        status = os.stat(current)
    except FileNotFoundError:
        return current, False
    if stat.S_ISDIR(status.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    return current, not stat.S_ISREG(status.st_mode)


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

    The one writer of every output file. On any exception the temporary file is
    removed and ``path`` is untouched. ``mode`` sets the permission bits (for example
    0o600 for secrets) before any byte is written, so a secret is never readable by
    others even briefly; without it a replaced file keeps its mode and a new one is
    0600. ``owner`` (uid, gid) is given to the new file too (PermissionError when this
    process may not). The temporary file is ``temp_prefix(path, tag)`` + random +
    ``.tmp``, so a caller can find the leftovers of a crashed writer by its ``tag``.
    Without ``mode`` a new file is private (0600) unless ``follow_umask`` asks for what
    ``open`` would create (0666 less the umask), for files that hold no secret.

    Only regular files are replaced: ``-`` is stdout, a symlink's target is replaced
    (the link stays), and a device, FIFO or open descriptor is written in place
    (``write_target``), never turned into a regular file.
    """
    if str(path) == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target, in_place = write_target(Path(path))
    if in_place:
        with os.fdopen(os.open(target, os.O_WRONLY | os.O_APPEND | os.O_NOCTTY), "wb") as handle:
            yield handle
        return
    if mode is None:
        with contextlib.suppress(FileNotFoundError):
            mode = stat.S_IMODE(os.stat(target).st_mode)
    if follow_umask and mode is None:
        mode = 0o666 & ~current_umask()
    directory = target.parent
    fd, tmp_name = tempfile.mkstemp(prefix=temp_prefix(target, tag), suffix=".tmp", dir=directory)
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
        os.replace(tmp_name, target)
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


TEXT_LIMIT = 64 << 20  # bytes: an SQL file or text argument larger than this is refused


def read_input(path: Path | str, kind: str, limit: int = TEXT_LIMIT) -> bytes:
    """A small input's bytes from a file, or from stdin for ``-``; a failure as one
    line in the user's words (``FILE: no such file``).

    The read is bounded: ``/dev/zero`` or an endless pipe is an error after ``limit``
    bytes, never a hang that eats memory. Pipes and FIFOs are read (``<(cmd)`` works).
    """
    from nodus_cli.errors import InputError, describe_os_error

    name = "stdin" if str(path) == "-" else str(path)
    try:
        if str(path) == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with open(path, "rb") as handle:
                data = handle.read(limit + 1)
    except OSError as exc:
        raise InputError(describe_os_error(exc)) from None
    if len(data) > limit:
        raise InputError(f"{name}: {kind} larger than {limit >> 20} MiB is not read")
    return data


def read_text(path: Path | str, kind: str, limit: int = TEXT_LIMIT) -> str:
    """A small UTF-8 text from a file, or from stdin for ``-`` (see ``read_input``)."""
    from nodus_cli.errors import InputError

    data = read_input(path, kind, limit)
    name = "stdin" if str(path) == "-" else str(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{name}: not {kind} (not UTF-8 text)") from None


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
