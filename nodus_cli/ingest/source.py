"""Input files: finding them, opening them (gzip by magic bytes), and cutting windows.

A window is a run of whole records (it ends after a newline, or at end of file,
and the next window starts with a line that starts a record) so that each
window can be parsed and committed on its own together with its checkpoint.
"""

from __future__ import annotations

import errno
import functools
import glob
import gzip
import hashlib
import os
import re
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from nodus_cli.errors import InputError, UsageError, describe_os_error

GZIP_MAGIC = b"\x1f\x8b"
HEAD_BYTES = 1024  # the "first KiB" whose hash identifies a file across renames
SNIFF_BYTES = 64 * 1024
STDIN = "-"


@dataclass(frozen=True)
class Found:
    """A file to ingest, or a path that cannot be listed or reached (``error`` says why)."""

    path: str
    error: str | None = None


_SIZE = re.compile(r"(\d+)\s*(|B|KiB|MiB|GiB|K|M|G)", re.IGNORECASE)
_UNITS = {"": 0, "b": 0, "k": 10, "kib": 10, "m": 20, "mib": 20, "g": 30, "gib": 30}


def parse_size(text: str, option: str) -> int:
    """``64MiB``, ``512K``, ``1048576``: a positive number of bytes (binary units)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None or int(match[1]) == 0:
        raise UsageError(f"{option} {text!r}: not a size (e.g. 1048576, 512KiB, 64MiB)")
    return int(match[1]) << _UNITS[match[2].lower()]


def expand_paths(paths: list[str]) -> list[Found]:
    """Files, directories (recursively, hidden entries skipped), globs, or ``-``.

    A directory that cannot be listed and a path that cannot be reached are
    returned with their error, in their place, so the rest of the run goes on.
    """
    found: list[Found] = []
    for raw in paths:
        if raw == STDIN:
            found.append(Found(STDIN))
            continue
        path = Path(raw).expanduser()
        kind = _kind(path)
        if isinstance(kind, Found):
            found.append(Found(raw, kind.error))
        elif kind == "dir":
            found.extend(_walk(path))
        elif kind == "missing" and glob.has_magic(raw):
            matches = sorted(glob.glob(str(path), recursive=True))
            for match in matches:
                if _kind(Path(match)) == "dir":
                    found.extend(_walk(Path(match)))
                elif not Path(match).name.startswith("."):
                    found.append(Found(match))
            if not matches:
                found.append(Found(raw))  # reported as not found
        else:
            found.append(Found(raw))
    # One file named twice (``a/x.log`` and ``a/../a/x.log``, a symlink) is read once:
    # the key is the resolved path, the path kept is the first spelling, made absolute.
    unique: dict[str, Found] = {}
    for item in found:
        if item.path == STDIN:
            unique.setdefault(STDIN, item)
            continue
        absolute = str(Path(item.path).absolute())
        unique.setdefault(os.path.realpath(absolute), Found(absolute, item.error))
    return list(unique.values())


def _kind(path: Path) -> str | Found:
    """'dir', 'missing' or 'other'; a Found with the error when the path cannot be reached."""
    try:
        return "dir" if stat.S_ISDIR(path.stat().st_mode) else "other"
    except FileNotFoundError:
        return "missing"
    except PermissionError:
        return Found(str(path), "permission denied (a directory on the way cannot be searched)")
    except OSError as exc:
        if exc.errno in (errno.ENOTDIR, errno.ENAMETOOLONG, errno.ELOOP):
            return "missing"
        return Found(str(path), f"cannot reach: {exc.strerror}")


def _walk(directory: Path) -> Iterator[Found]:
    """The files under ``directory``; a directory that cannot be listed is named, not skipped."""
    errors: list[OSError] = []
    walker = os.walk(directory, onerror=errors.append)
    while True:
        step = next(walker, None)
        for failed in errors:
            reason = failed.strerror or str(failed)
            yield Found(str(failed.filename or directory), f"cannot list the directory: {reason}")
        errors.clear()
        if step is None:
            return
        root, dirs, files = step
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Found(str(Path(root) / name))


@dataclass(frozen=True)
class Source:
    """One input file: where to read it and what it looked like when we started."""

    path: str  # as recorded in ingest_files ('-' for stdin)
    local: Path  # the readable file (stdin is spooled to a temporary file first)
    size: int
    mtime: datetime
    compression: str | None

    @classmethod
    def open_path(cls, path: str, local: Path | None = None) -> Source:
        target = local or Path(path)
        try:
            info = target.stat()
            if not target.is_file():
                raise InputError(f"{path}: not a regular file")
            with target.open("rb") as handle:
                magic = handle.read(2)
        except FileNotFoundError:
            raise InputError(f"{path}: no such file") from None
        except PermissionError:
            raise InputError(f"{path}: permission denied") from None
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror}") from None
        return cls(
            path=path,
            local=target,
            size=info.st_size,
            mtime=datetime.fromtimestamp(info.st_mtime, UTC),
            compression="gzip" if magic == GZIP_MAGIC else None,
        )

    def open(self) -> BinaryIO:
        handle = self.local.open("rb")
        if self.compression == "gzip":
            return gzip.GzipFile(fileobj=handle, mode="rb")  # type: ignore[return-value]
        return handle

    def read_prefix(self, count: int) -> bytes:
        with self.open() as stream:
            return read_full(stream, count)


def read_full(stream: BinaryIO, count: int) -> bytes:
    """Read ``count`` bytes unless the stream ends first (gzip reads come in pieces)."""
    return bytes(_read_up_to(stream, count))


def head_hash(head: bytes, offset: int = HEAD_BYTES) -> str:
    """Hash of the first KiB, or of the committed bytes while there are fewer."""
    return hashlib.sha256(head[: min(HEAD_BYTES, offset)]).hexdigest()


def fingerprint(head: bytes, tail: bytes, offset: int) -> str:
    """The first KiB and the KiB before the committed offset: a changed file shows here."""
    digest = hashlib.sha256(head[: min(HEAD_BYTES, offset)])
    digest.update(b"\0")
    digest.update(tail[-HEAD_BYTES:])
    return digest.hexdigest()


def skip_to(stream: BinaryIO, offset: int) -> bytes | None:
    """Move to ``offset``; return the KiB before it, or None if the file is shorter."""
    start = max(0, offset - HEAD_BYTES)
    if (
        not hasattr(stream, "seekable")
        or not stream.seekable()
        or isinstance(stream, gzip.GzipFile)
    ):
        remaining = start
        while remaining > 0:
            chunk = stream.read(min(remaining, 8 << 20))
            if not chunk:
                return None
            remaining -= len(chunk)
    else:
        stream.seek(start)
    tail = read_full(stream, offset - start)
    return tail if len(tail) == offset - start else None


@dataclass(frozen=True)
class LongLine:
    """A line longer than ``max_line``, read past without being kept whole."""

    head: bytes  # its first KiB
    size: int  # its bytes, newline included
    last_bytes: bytes  # the KiB that ends it (for the checkpoint's fingerprint)
    terminated: bool  # False: the file ended inside it


def windows(
    stream: BinaryIO,
    size: int,
    record_start: re.Pattern[str] | None,
    max_line: int | None = None,
) -> Iterator[bytes | bytearray | LongLine]:
    """Yield windows of about ``size`` bytes that end on a record boundary.

    A line found longer than ``max_line`` before its end was read is yielded as a
    ``LongLine``: its bytes are read past, so no line makes memory grow beyond
    ``size + max_line``. A record (lines from one record start to the next) longer
    than two windows is cut at a line boundary: the rest continues it in the next
    window (see the engine's ``_join_to_previous``).

    The lines of a window point into its buffer while DuckDB scans them, as the next
    window is being read. A buffer is read into again only once nothing points into
    it any more (see ``_reusable``): the pages of a fresh buffer must first be
    faulted in and cleared by the kernel, which costs about as much as the read.
    """
    leftover: bytes | bytearray = b""
    spare: list[bytearray] = []  # the buffers of the last two reads
    while True:
        reused = next((earlier for earlier in spare if _reusable(earlier, size)), None)
        chunk = _read_up_to(stream, size, reused)
        # by identity: two buffers may hold equal bytes (list.remove compares contents)
        others = [earlier for earlier in spare if earlier is not chunk]
        spare = [*others[-1:], chunk]
        if record_start is None and len(chunk) == size and not chunk.endswith(b"\n"):
            # end on the line's end (grows in place, no copy), at most max_line further
            chunk += stream.readline(-1 if max_line is None else max_line + 1)
        buffer = leftover + chunk if leftover else chunk
        if not buffer:
            return
        if len(chunk) < size:
            yield buffer
            return
        cut = buffer.rfind(b"\n") + 1
        if cut and record_start is not None and len(buffer) < 2 * size:
            cut = record_boundary(buffer, cut, record_start)
        if cut == 0 and max_line is not None and len(buffer) > max_line and b"\n" not in buffer:
            long_line, leftover = _read_past(stream, buffer, size)
            yield long_line
            continue
        if cut == 0:  # one line (or record) longer than the window: read on
            leftover = bytes(buffer)
            continue
        if cut == len(buffer):
            yield buffer
            leftover = b""
        else:
            yield buffer[:cut]
            leftover = bytes(buffer[cut:])


def _read_past(stream: BinaryIO, start: bytes | bytearray, size: int) -> tuple[LongLine, bytes]:
    """Read to the end of the line that ``start`` begins; return it and the bytes after it."""
    head, total, last = bytes(start[:HEAD_BYTES]), len(start), bytes(start[-HEAD_BYTES:])
    while chunk := _read_up_to(stream, size):
        end = chunk.find(b"\n")
        piece = chunk if end < 0 else chunk[:end]
        head = (head + piece[: HEAD_BYTES - len(head)]) if len(head) < HEAD_BYTES else head
        if end >= 0:
            total += end + 1
            last = (last + chunk[: end + 1])[-HEAD_BYTES:]
            return LongLine(head, total, last, terminated=True), bytes(chunk[end + 1 :])
        total += len(chunk)
        last = (last + chunk)[-HEAD_BYTES:]
    return LongLine(head, total, last, terminated=False), b""


def _reusable(buffer: bytearray, size: int) -> bool:
    """Cut ``buffer`` to ``size`` bytes, unless a view (NumPy, Arrow) still points into it.

    Python refuses to resize a bytearray while any view of it exists: that refusal is
    the proof that no window still being scanned uses this buffer. A shorter buffer
    (only the file's last read is short) is not grown: growing would zero it.
    """
    if len(buffer) < size:
        return False
    try:
        buffer.append(0)  # a resize, even when the length is already right
    except BufferError:
        return False
    del buffer[size:]
    return True


def _read_up_to(stream: BinaryIO, size: int, buffer: bytearray | None = None) -> bytearray:
    """Up to ``size`` bytes, read into ``buffer`` (``size`` long) or a new one, no copy."""
    buffer = _uninitialised(size) if buffer is None else buffer
    filled = 0
    try:
        with memoryview(buffer) as view:
            while filled < size:
                count = stream.readinto(view[filled:])  # type: ignore[attr-defined]
                if not count:
                    break
                filled += count
    except EOFError:
        raise InputError("cannot read: the compressed data ends early (truncated?)") from None
    except (gzip.BadGzipFile, zlib.error):
        raise InputError("cannot read: damaged gzip data") from None
    except OSError as exc:
        raise InputError(f"cannot read: {describe_os_error(exc)}") from None
    del buffer[filled:]
    return buffer


@functools.cache
def _bytearray_from_pointer() -> Any:
    """CPython's ``PyByteArray_FromStringAndSize``, or None where there is no C API."""
    import ctypes

    if not hasattr(ctypes, "pythonapi"):
        return None
    prototype = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_ssize_t)
    return prototype(("PyByteArray_FromStringAndSize", ctypes.pythonapi))


def _uninitialised(size: int) -> bytearray:
    """A new buffer of ``size`` bytes that the caller is about to overwrite.

    ``bytearray(size)`` zeroes its memory holding the GIL (about 40 ms for 64 MiB),
    which stalls the thread driving DuckDB. Left uninitialised, the pages are first
    touched by the read, which releases the GIL.
    """
    make = _bytearray_from_pointer()
    return bytearray(size) if make is None else make(None, size)


def record_boundary(buffer: bytes | bytearray, cut: int, record_start: re.Pattern[str]) -> int:
    """Move ``cut`` back to the start of the last line that starts a record (0: none)."""
    position = cut
    while position > 0:
        previous = buffer.rfind(b"\n", 0, position - 1) + 1
        if previous <= 0:
            return 0  # one record fills the buffer: read more before cutting
        line = buffer[previous : buffer.find(b"\n", previous)].decode("utf-8", "replace")
        if record_start.match(line.rstrip("\r")):
            return previous
        position = previous
    return 0
