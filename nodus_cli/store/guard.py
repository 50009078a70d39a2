"""Undo a checkpoint that a killed process left half-written.

DuckDB writes a checkpoint's metadata into the free slots of the metadata blocks the
current checkpoint already uses, rewriting each such block (256 KiB) in place before
it writes the new database header. SIGKILL can stop that write part-way (the kernel
checks for a fatal signal between pages), and then the block no longer matches its
checksum: the store will not open ("Corrupt database file ... in block at location
12288"), although the header on disk still names the old checkpoint and the WAL still
holds every commit after it.

So before a nodus commit or checkpoint, the metadata blocks of the current checkpoint
are in ``store.duckdb.guard`` (written atomically, once per checkpoint: commits that
only append to the WAL reuse it), and a clean close removes it. Opening a store whose
guard outlived its writer puts the blocks back if the header still names the
checkpoint they belong to; DuckDB then replays the WAL as after any other crash. Only
the process that holds the database writes its guard, and a repair runs only while it
holds the same POSIX lock DuckDB takes, so the two never meet.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from nodus_cli.fsutil import atomic_writer, temp_prefix

# The DuckDB storage layout this relies on: a 4 KiB main header ("DUCK" at byte 8), two
# 4 KiB database headers that alternate between checkpoints (the higher iteration is
# the current one), then blocks of block_alloc_size bytes.
MAIN_MAGIC = b"DUCK"
DATABASE_HEADERS = (4096, 8192)
BLOCKS_START = 12288
_HEADER_FIELDS = struct.Struct("<QQqqQQ")  # checksum, iteration, meta, free list, count, size
GUARD_MAGIC = b"nodus checkpoint guard 1\n"

# Store files this process has open: their guard is never repaired from here, and the
# probe lock on the database file (whose close would drop DuckDB's own lock) is skipped.
OPEN_IN_PROCESS: Counter[str] = Counter()


@dataclass
class GuardState:
    """One connection's guard: the checkpoint and metadata blocks it holds a copy of."""

    written_for: int | None = None  # the checkpoint iteration
    failed: bool = False  # a guarded statement raised: the guard stays for the next open


@dataclass(frozen=True)
class Checkpoint:
    """What the current database header names: its iteration and the block size."""

    iteration: int
    block_size: int


def guard_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".guard")


def current_checkpoint(fd: int) -> Checkpoint | None:
    """The checkpoint the file's header names, or None if this is no layout we know."""
    if os.pread(fd, 4, 8) != MAIN_MAGIC:
        return None
    best: tuple[int, int] | None = None
    for offset in DATABASE_HEADERS:
        raw = os.pread(fd, _HEADER_FIELDS.size, offset)
        if len(raw) < _HEADER_FIELDS.size:
            return None
        _checksum, iteration, _meta, _free, _count, size = _HEADER_FIELDS.unpack(raw)
        if best is None or iteration > best[0]:
            best = (iteration, size)
    assert best is not None
    iteration, size = best
    if size < 4096 or size & (size - 1) or size > 1 << 30:
        return None
    return Checkpoint(iteration, size)


def _read_header(handle: BinaryIO) -> dict[str, Any]:
    """The guard's header line (raises ValueError if the file is not a guard)."""
    if handle.readline() != GUARD_MAGIC:
        raise ValueError("not a checkpoint guard")
    header = json.loads(handle.readline())
    if not isinstance(header, dict):
        raise ValueError("not a checkpoint guard")
    return header


def _read_guard(path: Path) -> tuple[int, list[tuple[int, bytes]]] | None:
    """The guard's iteration and blocks (offset, bytes), or None if it is not intact."""
    try:
        with path.open("rb") as handle:
            header = _read_header(handle)
            size = int(header["block_size"])
            blocks = []
            for offset, digest in header["blocks"]:
                block = handle.read(size)
                if len(block) != size or hashlib.sha256(block).hexdigest() != digest:
                    return None
                blocks.append((int(offset), block))
            if handle.read(1):
                return None
            return int(header["iteration"]), blocks
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def _write_guard(path: Path, fd: int, checkpoint: Checkpoint, block_ids: list[int]) -> None:
    size = checkpoint.block_size
    offsets = [BLOCKS_START + block_id * size for block_id in block_ids]
    blocks = [(offset, os.pread(fd, size, offset)) for offset in offsets]
    blocks = [(offset, block) for offset, block in blocks if len(block) == size]
    header = {
        "iteration": checkpoint.iteration,
        "block_size": size,
        "blocks": [[offset, hashlib.sha256(block).hexdigest()] for offset, block in blocks],
    }
    with atomic_writer(path, 0o600) as handle:
        handle.write(GUARD_MAGIC)
        handle.write(json.dumps(header).encode() + b"\n")
        for _offset, block in blocks:
            handle.write(block)


def _guard_iteration(path: Path) -> int | None:
    """The checkpoint an existing guard was written for (its header line only)."""
    try:
        with path.open("rb") as handle:
            return int(_read_header(handle)["iteration"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextlib.contextmanager
def guarded(con: Any, db_fd: int, db_path: Path, state: GuardState) -> Iterator[None]:
    """Make sure the guard holds the current metadata blocks while the block may
    checkpoint (a COMMIT may too).

    ``db_fd`` is a descriptor of the database file that stays open as long as ``con``:
    closing any descriptor of the file would drop DuckDB's own POSIX lock on it. A
    guard already there for the same checkpoint is kept, whoever wrote it: it holds
    the blocks as they were before any write a failure may have torn. Metadata is
    only written by a checkpoint, which moves the iteration on: while it stands, the
    guard already written for it still holds the right blocks.
    """
    checkpoint = current_checkpoint(db_fd)
    if checkpoint is not None and state.written_for != checkpoint.iteration:
        metadata = con.execute("SELECT block_id FROM pragma_metadata_info() ORDER BY block_id")
        block_ids = [row[0] for row in metadata.fetchall()]
        if block_ids:
            path = guard_path(db_path)
            if _guard_iteration(path) != checkpoint.iteration:
                _write_guard(path, db_fd, checkpoint, block_ids)
            state.written_for = checkpoint.iteration
    try:
        yield
    except BaseException:
        state.failed = True
        raise


def discard(db_path: Path, state: GuardState) -> None:
    """At a clean close (the lock still held, nothing in flight) the guard can go."""
    if not state.failed:
        guard_path(db_path).unlink(missing_ok=True)


def _unfinished(path: Path) -> list[Path]:
    return list(path.parent.glob(temp_prefix(path) + "*.tmp"))


def repair(db_path: Path) -> int:
    """Put back the blocks of a checkpoint a killed process tore; how many were restored.

    Does nothing while any process (this one included) has the database open, or when
    the header has moved past the guard's checkpoint (that checkpoint completed).
    """
    path = guard_path(db_path)
    if OPEN_IN_PROCESS[str(db_path)] or not (path.exists() or _unfinished(path)):
        return 0
    try:
        fd = os.open(db_path, os.O_RDWR)
    except OSError:
        return 0  # not ours to repair (read-only file); DuckDB will say what is wrong
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the lock DuckDB takes
        except OSError:
            return 0  # another process has it open: the guard is that process's
        for leftover in _unfinished(path):  # a writer killed while writing its guard
            leftover.unlink(missing_ok=True)
        saved = _read_guard(path)
        restored = 0
        if saved is not None:  # a damaged guard is never written over the store
            iteration, blocks = saved
            checkpoint = current_checkpoint(fd)
            if checkpoint is not None and checkpoint.iteration == iteration:
                for offset, block in blocks:
                    if os.pread(fd, len(block), offset) != block:
                        os.pwrite(fd, block, offset)
                        restored += 1
                os.fsync(fd)
        path.unlink(missing_ok=True)
        return restored
    finally:
        os.close(fd)  # releases the probe lock
