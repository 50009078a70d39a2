"""The audit bundle file (nodus-bundle(5)): write it in one pass, read it in one pass.

Layout, all UTF-8, every line ending in ``\\n``::

    nodus-bundle/v1
    {header: one line of JSON, sorted keys}
    entry 0
    ...
    entry N-1
    {trailer: one line of JSON: the consistency proof to the previous bundle}
    <signed checkpoint note>

The checkpoint (C2SP tlog-checkpoint) commits to the origin, N and the RFC 9162
root over the entries' leaf hashes, and its extension lines bind the manifest
(SHA-256 of every byte before the checkpoint) and the previous checkpoint.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from nodus_cli.audit import merkle, note
from nodus_cli.errors import CannotVerify, CheckFailed, InputError
from nodus_cli.fsutil import loads_bounded, open_regular

MAGIC = b"nodus-bundle/v1\n"
MAGIC_PREFIX = b"nodus-bundle/"
VERSION_LINE = re.compile(rb"nodus-bundle/v[0-9]+\n")
KINDS = ("files", "rows")
HASH_ALGORITHM = "sha256"
EXT_MANIFEST = "nodus-manifest"
EXT_PREV = "nodus-prev"
EXT_KIND = "nodus-kind"
NO_PREV = "none"
MAX_HEADER_LINE = 16 << 20  # the header lists the inputs; a trailer holds <= 64 hashes
MAX_CHECKPOINT = 1 << 20


class BundleError(InputError):
    """The bundle cannot be read: not a bundle, truncated, malformed (exit 2)."""


class BundleDamaged(CheckFailed):
    """The bundle was altered or damaged in transit (exit 1): not a format we cannot read."""


class UnknownFormat(CannotVerify):
    """An intact bundle of a newer version, hash algorithm or entry kind (exit 3).

    ``signed`` is the bundle's checkpoint note when it could be read, so a verifier
    can still tell a bad signature (exit 1) from a format it does not know."""

    def __init__(self, message: str, *, signed: note.Note | None = None) -> None:
        super().__init__(message)
        self.signed = signed


def canonical_json(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def checkpoint_digest(checkpoint_note: str) -> str:
    """How a later bundle names this one: SHA-256 of the signed checkpoint note, hex."""
    return hashlib.sha256(checkpoint_note.encode("utf-8")).hexdigest()


def file_entry(path: str, size: int, leaf: bytes, content: bytes | None = None) -> bytes:
    entry: dict[str, Any] = {"leaf": leaf.hex(), "path": path, "size": size}
    if content is not None:
        entry["content"] = base64.b64encode(content).decode()
    return canonical_json(entry)


@dataclass
class FileEntry:
    path: str
    size: int
    leaf: bytes
    content: bytes | None = None


def parse_file_entry(line: bytes, index: int) -> FileEntry:
    try:
        data = loads_bounded(line)
        path, size, leaf = data["path"], data["size"], bytes.fromhex(data["leaf"])
        content = note.strict_b64decode(data["content"]) if "content" in data else None
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise BundleError(f"entry {index} is malformed") from exc
    if not isinstance(path, str) or not isinstance(size, int) or len(leaf) != merkle.HASH_SIZE:
        raise BundleError(f"entry {index} is malformed")
    return FileEntry(path, size, leaf, content)


class BundleWriter:
    """Streams a bundle: header, entries (hashed as they go), then the signed checkpoint.

    Blocks of entries are written and hashed into the manifest on a background
    thread (both release the GIL on large buffers) while the caller prepares the
    next block; every other write waits for it, so bytes land in order. Use it as
    a context manager so no write is left running when the block ends.
    """

    def __init__(self, handle: IO[bytes], header: dict[str, Any]) -> None:
        self.handle = handle
        self.manifest = hashlib.sha256()
        self.leaves = merkle.PackedLeaves()
        self.count = 0
        self._pending: _Background | None = None
        self._write(MAGIC)
        self._write(canonical_json(header) + b"\n")

    def __enter__(self) -> BundleWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.wait(reraise=exc_info[0] is None)

    def _settle(self) -> None:
        """Wait for the block being written in the background; raise its error."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.wait()

    def _write(self, data: bytes) -> None:
        self._settle()
        self._write_now(data)

    def _write_now(self, data: bytes) -> None:
        self.handle.write(data)
        self.manifest.update(data)

    def add(self, line: bytes, leaf: bytes) -> None:
        """One entry line (no newline inside) and its leaf hash."""
        self._write(line + b"\n")
        self.leaves.append(leaf)
        self.count += 1

    def add_block(self, block: bytes, leaves: bytes, count: int) -> None:
        """Many entry lines at once (``block`` ends in a newline), written in the background."""
        self._settle()
        self._pending = _Background(self._write_now, block)
        self.leaves.extend(leaves)
        self.count += count

    def close_manifest(self, trailer: dict[str, Any]) -> str:
        """Write the trailer line; return the manifest digest the checkpoint binds."""
        self._write(canonical_json(trailer) + b"\n")
        return self.manifest.hexdigest()

    def finish(self, checkpoint_note: str) -> None:
        self._settle()
        self.handle.write(checkpoint_note.encode("utf-8"))


class _Background:
    """One call run on its own thread; ``wait`` joins it and re-raises its error."""

    def __init__(self, call: Callable[[bytes], None], data: bytes) -> None:
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(call, data), daemon=True)
        self._thread.start()

    def _run(self, call: Callable[[bytes], None], data: bytes) -> None:
        try:
            call(data)
        except BaseException as exc:  # handed to the waiting thread
            self._error = exc

    def wait(self, *, reraise: bool = True) -> None:
        self._thread.join()
        if reraise and self._error is not None:
            raise self._error


def checkpoint_for(
    origin: str, leaves: merkle.PackedLeaves, manifest: str, prev: str, kind: str
) -> str:
    """The checkpoint body; the entry kind is signed too, since it fixes how a leaf is hashed."""
    root = merkle.root_hash(leaves)
    extensions = (f"{EXT_MANIFEST} {manifest}", f"{EXT_PREV} {prev}", f"{EXT_KIND} {kind}")
    return note.Checkpoint(origin, len(leaves), root, extensions).body()


@dataclass
class Bundle:
    """A bundle as read: header, leaf hashes, the raw entry lines if kept, the checkpoint."""

    path: Path
    header: dict[str, Any]
    leaves: merkle.PackedLeaves
    manifest_digest: str
    checkpoint_note: str
    signed: note.Note
    checkpoint: note.Checkpoint
    trailer: dict[str, Any]
    entries: list[bytes] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return str(self.header["kind"])

    @property
    def origin(self) -> str:
        return self.checkpoint.origin

    @property
    def size(self) -> int:
        return self.checkpoint.size

    @property
    def prev(self) -> str | None:
        value = self.checkpoint.extension(EXT_PREV)
        return None if value in (None, NO_PREV) else value

    @property
    def digest(self) -> str:
        return checkpoint_digest(self.checkpoint_note)

    def file_entries(self) -> Iterator[FileEntry]:
        for index, line in enumerate(self.entries):
            yield parse_file_entry(line, index)


def read_bundle(path: Path, *, keep_entries: bool = True, keep_rows: bool = False) -> Bundle:
    """Parse a bundle in one pass, hashing the manifest and every entry's leaf.

    Entry lines are kept for files bundles (``keep_entries``); the lines of a rows
    bundle only with ``keep_rows``, so verifying millions of rows stays flat.

    Raises BundleError (exit 2) for anything that is not a well-formed bundle,
    BundleDamaged (exit 1) for one altered in transit (line endings converted, a
    header field edited) and UnknownFormat (exit 3) for an intact later format.
    """
    try:
        handle = open_regular(path, "the bundle")
    except InputError as exc:
        raise BundleError(exc.message) from None
    with handle:
        magic = handle.readline(MAX_HEADER_LINE)
        _check_magic(path, magic)
        manifest = hashlib.sha256(magic)
        header_line = handle.readline(MAX_HEADER_LINE)
        manifest.update(header_line)
        header, unknown = _parse_header(path, header_line)
        if unknown:
            _judge_unknown(path, handle, manifest, header["entries"], unknown)
        kind, count = header["kind"], header["entries"]
        keep = keep_rows if kind == "rows" else keep_entries
        leaves = merkle.PackedLeaves()
        entries: list[bytes] = []
        sha = hashlib.sha256
        for index in range(count):
            line = handle.readline()
            if not line.endswith(b"\n"):
                raise BundleError(f"{path}: truncated after {index} of {count} entries")
            manifest.update(line)
            body = line[:-1]
            if kind == "rows":
                leaves.append(sha(b"\x00" + body).digest())
            else:
                leaves.append(parse_file_entry(body, index).leaf)
            if keep:
                entries.append(body)
        trailer_line = handle.readline(MAX_HEADER_LINE)
        manifest.update(trailer_line)
        trailer = _parse_trailer(path, trailer_line)
        checkpoint_text, parsed, checkpoint = _read_checkpoint(path, handle)
    return Bundle(
        path,
        header,
        leaves,
        manifest.hexdigest(),
        checkpoint_text,
        parsed,
        checkpoint,
        trailer,
        entries,
    )


def _check_magic(path: Path, magic: bytes) -> None:
    """v1; a later version (exit 3); a damaged v1 line, e.g. CRLF (exit 1); else exit 2."""
    if magic == MAGIC:
        return
    if VERSION_LINE.fullmatch(magic):
        raise UnknownFormat(f"{path}: unknown bundle version {magic.strip().decode()!r}")
    if magic.rstrip(b"\r\n") == MAGIC[:-1]:
        raise BundleDamaged(f"{path}: the bundle's line endings were changed (CRLF or CR)")
    if magic.startswith(MAGIC_PREFIX):
        raise BundleDamaged(f"{path}: the bundle's first line is damaged")
    raise BundleError(f"{path}: not a nodus bundle")


def _read_checkpoint(path: Path, handle: IO[bytes]) -> tuple[str, note.Note, note.Checkpoint]:
    rest = handle.read(MAX_CHECKPOINT + 1)
    if len(rest) > MAX_CHECKPOINT:
        raise BundleError(f"{path}: malformed checkpoint (longer than {MAX_CHECKPOINT} bytes)")
    try:
        text = rest.decode("utf-8")
    except UnicodeDecodeError:
        raise BundleError(f"{path}: the checkpoint is not UTF-8") from None
    parsed = note.parse_note(text)
    return text, parsed, note.parse_checkpoint(parsed.text)


def _judge_unknown(path: Path, handle: IO[bytes], manifest: Any, count: int, unknown: str) -> None:
    """An unknown hash or kind: exit 3 when the signed checkpoint covers these very bytes
    (a format this nodus does not know), exit 1 when it does not (the header was edited)."""
    for index in range(count):
        line = handle.readline()
        if not line.endswith(b"\n"):
            raise BundleError(f"{path}: truncated after {index} of {count} entries")
        manifest.update(line)
    manifest.update(handle.readline(MAX_HEADER_LINE))
    try:
        _, signed, checkpoint = _read_checkpoint(path, handle)
    except InputError:
        signed, checkpoint = None, None
    if checkpoint is not None and checkpoint.extension(EXT_MANIFEST) == manifest.hexdigest():
        raise UnknownFormat(f"{path}: {unknown}", signed=signed)
    raise BundleDamaged(
        f"{path}: the header was altered ({unknown}, and the manifest does not match "
        "the signed checkpoint)"
    )


def _parse_trailer(path: Path, line: bytes) -> dict[str, Any]:
    try:
        trailer = loads_bounded(line)
        proof = trailer["consistency"]
        if proof is not None:
            trailer["consistency"] = [bytes.fromhex(item) for item in proof]
    except (ValueError, KeyError, TypeError):
        raise BundleError(f"{path}: malformed trailer (truncated or extra entries?)") from None
    if not line.endswith(b"\n"):
        raise BundleError(f"{path}: malformed trailer")
    return dict(trailer)


def _parse_header(path: Path, line: bytes) -> tuple[dict[str, Any], str | None]:
    """The header, and what in it this nodus does not know (judged by ``_judge_unknown``)."""
    try:
        header = loads_bounded(line)
    except ValueError:
        raise BundleError(f"{path}: the header is not JSON") from None
    if not isinstance(header, dict) or not line.endswith(b"\n"):
        raise BundleError(f"{path}: malformed header")
    count = header.get("entries")
    if not isinstance(count, int) or count < 0 or isinstance(count, bool):
        raise BundleError(f"{path}: malformed entry count")
    if header.get("hash") != HASH_ALGORITHM:
        return header, f"unknown hash algorithm {_shown(header.get('hash'))}"
    if header.get("kind") not in KINDS:
        return header, f"unknown entry kind {_shown(header.get('kind'))}"
    if not _well_typed(header):
        raise BundleError(f"{path}: malformed header")
    return header, None


def _shown(value: Any) -> str:
    """A header value for a message: short, quoted, never markup or control characters."""
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_hex(value: Any, size: int) -> bool:
    return isinstance(value, str) and len(value) == 2 * size and _hex(value)


def _hex(value: str) -> bool:
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return value == value.lower()


def _well_typed(header: dict[str, Any]) -> bool:
    """Every field verify reads has the type the format gives it."""
    prev = header.get("prev")
    if prev is not None and not (
        isinstance(prev, dict)
        and _is_hex(prev.get("digest"), 32)
        and _is_hex(prev.get("root"), merkle.HASH_SIZE)
        and isinstance(prev.get("size"), int)
        and not isinstance(prev.get("size"), bool)
    ):
        return False
    texts = ("origin", "created", "signer") + (("table",) if header["kind"] == "rows" else ())
    if not all(isinstance(header.get(name), str) for name in texts):
        return False
    if not isinstance(header.get("root"), str | None):
        return False
    if header["kind"] == "rows":
        return all(isinstance(header.get(n), str | None) for n in ("since", "until"))
    inputs = header.get("inputs")
    return (
        isinstance(inputs, list)
        and all(isinstance(item, str) for item in inputs)
        and isinstance(header.get("embed"), bool)
    )
