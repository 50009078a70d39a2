"""Build bundles over files (``audit build``) or store rows (``audit seal``), signed and chained."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

from nodus_cli.audit import merkle, note
from nodus_cli.audit.bundle import (
    HASH_ALGORITHM,
    NO_PREV,
    BundleWriter,
    checkpoint_for,
    file_entry,
    read_bundle,
)
from nodus_cli.errors import InputError, NotFoundError, UsageError
from nodus_cli.fsutil import atomic_writer
from nodus_cli.progress import SILENT, Progress, ProgressLike, reporter
from nodus_cli.workspace import is_workspace_dir

if TYPE_CHECKING:
    from nodus_cli.store import Store

CHUNK = 1 << 20
ROW_BATCH = 1 << 16
T = TypeVar("T")


class CompositeKey(Protocol):
    """What sealing needs of ``nodus_cli.keys.signing.SigningKey``."""

    key_id: str
    ed25519: Any

    def public(self) -> Any: ...

    def sign(self, message: bytes, context: bytes = b"") -> bytes: ...


@dataclass(frozen=True)
class PrevLink:
    """The checkpoint a new bundle follows: its digest, size and root."""

    digest: str
    size: int
    root: bytes
    origin: str

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "size": self.size, "root": self.root.hex()}


@dataclass(frozen=True)
class SealResult:
    path: Path
    kind: str
    origin: str
    size: int
    root: bytes
    digest: str
    checkpoint: str
    prev: PrevLink | None
    extends: bool
    key_id: str
    files_root: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "bundle": str(self.path),
            "kind": self.kind,
            "origin": self.origin,
            "size": self.size,
            "root": self.root.hex(),
            "checkpoint_digest": self.digest,
            "prev": self.prev.to_json() if self.prev else None,
            "extends_prev": self.extends,
            "key_id": self.key_id,
            **({"files_root": str(self.files_root)} if self.files_root else {}),
        }


def check_origin(origin: str) -> str:
    if not note.valid_name(origin) or not origin.isprintable():
        raise UsageError(f"origin {origin!r} must be non-empty, without spaces or '+'")
    return origin


def sign_checkpoint(body: str, key: CompositeKey) -> str:
    """Two signature lines: standard Ed25519, then the composite ML-DSA-65 line."""
    origin = note.parse_checkpoint(body).origin
    signed = note.sign_note(
        body, [note.Ed25519Signer(origin, key.ed25519), note.CompositeSigner(origin, key)]
    )
    return signed.to_text()


# --- chaining ---------------------------------------------------------------------------


def last_checkpoint(store: Store, origin: str) -> PrevLink | None:
    row = store.con.execute(
        "SELECT digest, size, root FROM audit_checkpoints WHERE origin = ?", [origin]
    ).fetchone()
    return PrevLink(row[0], row[1], bytes.fromhex(row[2]), origin) if row else None


def prev_from_bundle(path: Path) -> PrevLink:
    """The link to an existing bundle (``--prev``); its signature is checked at verify time."""
    prev = read_bundle(path, keep_entries=False)
    return PrevLink(prev.digest, prev.size, prev.checkpoint.root, prev.origin)


def remember(store: Store, result: SealResult) -> None:
    """Record the new checkpoint as the origin's latest, journaled with the seal."""
    with store.change({"audit": result.kind, **result.to_json()}):
        store.con.execute(
            "INSERT OR REPLACE INTO audit_checkpoints VALUES (?, ?, ?, ?, ?, ?, now())",
            [
                result.origin,
                result.size,
                result.root.hex(),
                result.digest,
                result.checkpoint,
                str(result.path),
            ],
        )


def _consistency(prev: PrevLink | None, leaves: merkle.PackedLeaves) -> list[bytes] | None:
    """A proof that ``prev`` is a prefix of these leaves, or None when it is not."""
    if prev is None or prev.size == 0 or prev.size > len(leaves):
        return None
    if merkle.subtree_hash(leaves, 0, prev.size) != prev.root:
        return None
    return merkle.consistency_proof(leaves, prev.size, len(leaves))


def finish_bundle(
    writer: BundleWriter,
    *,
    kind: str,
    output: Path,
    origin: str,
    prev: PrevLink | None,
    key: CompositeKey,
) -> SealResult:
    """Trailer, checkpoint (root, manifest, previous link) and its two signatures."""
    proof = _consistency(prev, writer.leaves)
    trailer = {"consistency": None if proof is None else [p.hex() for p in proof]}
    manifest = writer.close_manifest(trailer)
    body = checkpoint_for(origin, writer.leaves, manifest, prev.digest if prev else NO_PREV, kind)
    signed = sign_checkpoint(body, key)
    writer.finish(signed)
    checkpoint = note.parse_checkpoint(body)
    return SealResult(
        output,
        kind,
        origin,
        checkpoint.size,
        checkpoint.root,
        hashlib.sha256(signed.encode()).hexdigest(),
        signed,
        prev,
        proof is not None,
        key.key_id,
    )


def bundle_header(
    kind: str, origin: str, count: int, prev: PrevLink | None, key: CompositeKey
) -> dict:
    """The header fields every bundle has (see nodus-bundle(5)); callers add their kind's."""
    return {
        "kind": kind,
        "origin": origin,
        "hash": HASH_ALGORITHM,
        "entries": count,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "signer": key.key_id,
        "prev": prev.to_json() if prev else None,
    }


# --- files ------------------------------------------------------------------------------


def safe_relative(path: str) -> bool:
    """A manifest path nodus will open: relative, no '..', no empty or odd parts."""
    if not path or path.startswith("/") or "\\" in path or "\x00" in path:
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


def inside(root: Path, candidate: Path) -> bool:
    """Whether ``candidate`` (symlinks resolved) lies within ``root``."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(candidate)
    return real == real_root or real.startswith(real_root.rstrip("/") + "/")


def relative_input(root: Path, path: Path) -> str:
    """A PATH argument as a root-relative POSIX path ("." for the root itself)."""
    absolute = Path(os.path.abspath(path))
    try:
        relative = absolute.relative_to(os.path.abspath(root))
    except ValueError:
        raise UsageError(f"{path} is outside the root {root}") from None
    return relative.as_posix() if relative.parts else "."


def walk_inputs(root: Path, inputs: Sequence[str]) -> list[str]:
    """Every regular file under the inputs, root-relative, sorted; symlinked dirs skipped.

    A symlink to a file is included only when its target stays inside ``root``. A nodus
    workspace met on the way is not descended into (its secret and store are private).
    """
    found: set[str] = set()
    for item in inputs:
        start = root / item if item != "." else root
        if not inside(root, start):
            raise InputError(f"{item}: points outside the root {root}")
        if start.is_symlink() or start.is_file():
            found.add(_file_member(root, item))
            continue
        if not start.is_dir():
            raise NotFoundError(f"{start}: no such file or directory")
        for directory, dirnames, filenames in os.walk(start, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not is_workspace_dir(Path(directory) / d))
            for name in filenames:
                full = Path(directory) / name
                rel = full.relative_to(root).as_posix()
                if full.is_symlink() and not full.is_file():
                    continue  # a dangling symlink or one to something else
                found.add(_file_member(root, rel))
    return sorted(found, key=lambda p: p.encode("utf-8", "surrogateescape"))


def _file_member(root: Path, rel: str) -> str:
    full = root / rel
    if not inside(root, full):
        raise InputError(f"{rel}: symlink points outside the root {root}")
    if not full.is_file():
        raise InputError(f"{rel}: not a regular file")
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{rel!r}: file name is not UTF-8") from None
    return rel


def hash_file(
    path: Path, *, keep: bool = False, progress: Progress = SILENT
) -> tuple[bytes, int, bytes | None]:
    """Leaf hash SHA-256(0x00 || content), size, and the content when ``keep``;
    ``progress`` hears the bytes hashed."""
    digest = hashlib.sha256(b"\x00")
    size = 0
    kept = bytearray() if keep else None
    with open(path, "rb", buffering=0) as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            progress.advance(len(chunk))
            if kept is not None:
                kept += chunk
    return digest.digest(), size, bytes(kept) if kept is not None else None


def default_root(paths: Sequence[Path]) -> Path:
    """The directory itself for one directory, else the deepest common parent directory."""
    absolute = [Path(os.path.abspath(p)) for p in paths]
    if len(absolute) == 1 and absolute[0].is_dir():
        return absolute[0]
    common = Path(os.path.commonpath(absolute))
    return common if common.is_dir() or common not in absolute else common.parent


def _size(path: Path) -> int:
    """The size for the progress total; a file that cannot be read fails when hashed."""
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def build_files(
    paths: Sequence[Path],
    output: Path,
    *,
    root: Path | None = None,
    key: CompositeKey,
    origin: str = "nodus/files",
    prev: PrevLink | None = None,
    embed: bool = False,
    on_progress: ProgressLike | None = None,
) -> SealResult:
    """Seal files (directories recursively) into a bundle at ``output``.

    Paths are recorded relative to ``root`` (default: ``default_root``), whose absolute
    path the header keeps so that verify finds the files from any directory."""
    check_origin(origin)
    if not paths:
        raise UsageError("nothing to seal: give at least one PATH")
    root = Path(os.path.abspath(root if root is not None else default_root(paths)))
    inputs = sorted({relative_input(root, Path(p)) for p in paths})
    files = walk_inputs(root, inputs)
    out_rel = os.path.abspath(output)
    files = [f for f in files if os.path.abspath(root / f) != out_rel]
    header = bundle_header("files", origin, len(files), prev, key)
    header.update(inputs=inputs, embed=embed, root=str(root))
    progress = reporter(on_progress)
    progress.total(sum(_size(root / rel) for rel in files), items=len(files))
    try:
        with atomic_writer(output) as handle:
            writer = BundleWriter(handle, header)
            for rel in files:
                leaf, size, content = hash_file(root / rel, keep=embed, progress=progress)
                writer.add(file_entry(rel, size, leaf, content), leaf)
                progress.advance(items=1)
            result = finish_bundle(
                writer, kind="files", output=output, origin=origin, prev=prev, key=key
            )
    except OSError as exc:
        raise InputError(f"cannot write {output}: {exc.strerror}") from None
    return dataclasses.replace(result, files_root=root)


# --- store rows -------------------------------------------------------------------------


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def seal_rows(
    store: Store,
    table: str,
    output: Path,
    *,
    key: CompositeKey,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    origin: str | None = None,
    prev: PrevLink | None = None,
    on_progress: ProgressLike | None = None,
) -> SealResult:
    """Seal a table's rows (canonical JSON, storage order) into a self-contained bundle."""
    origin = check_origin(origin or f"nodus/{table}")
    selection = RowSelection.of(store, table, since, until)
    con = store.con
    con.execute("BEGIN TRANSACTION")  # one snapshot for the count and every batch
    try:
        count, top = selection.extent()
        progress = reporter(on_progress)
        progress.total(count, unit="rows")
        header = bundle_header("rows", origin, count, prev, key)
        header.update(
            table=table,
            columns=selection.columns,
            since=since.isoformat() if since else None,
            until=until.isoformat() if until else None,
            encoding="json-object-per-line",
            order="rowid",
        )
        try:
            with (
                atomic_writer(output) as handle,
                BundleWriter(handle, header) as writer,
                Prefetch(selection.batches(top)) as batches,
            ):
                for batch in batches:
                    block, leaves = _encode_batch(batch)
                    writer.add_block(block, leaves, len(batch))
                    progress.advance(len(batch))
                if writer.count != count:
                    raise InputError(f"table {table!r} changed while sealing")
                result = finish_bundle(
                    writer, kind="rows", output=output, origin=origin, prev=prev, key=key
                )
        except OSError as exc:
            raise InputError(f"cannot write {output}: {exc.strerror}") from None
    finally:
        con.execute("ROLLBACK")  # a read-only snapshot: nothing to keep
    return result


@dataclass(frozen=True)
class RowSelection:
    """The rows a seal covers: a table, an optional time window, in rowid order."""

    store: Store
    table: str
    columns: list[dict[str, str]]
    filters: str
    params: list[Any]

    @classmethod
    def of(
        cls, store: Store, table: str, since: dt.datetime | None, until: dt.datetime | None
    ) -> RowSelection:
        if table not in store.table_names():
            raise NotFoundError(f"no table {table!r} in the store")
        described = store.con.execute(f"DESCRIBE {_quote(table)}").fetchall()
        columns = [{"name": c[0], "type": c[1]} for c in described]
        where, params = [], []
        if since or until:
            if "time" not in [c["name"] for c in columns]:
                raise UsageError(f"table {table!r} has no 'time' column for --since/--until")
            if since:
                where.append("time >= ?")
                params.append(since)
            if until:
                where.append("time < ?")
                params.append(until)
        return cls(store, table, columns, " AND ".join(where) or "true", params)

    def extent(self) -> tuple[int, int]:
        """How many rows match, and one past the largest rowid among them."""
        count, top = self.store.con.execute(
            f"SELECT count(*), coalesce(max(rowid) + 1, 0) FROM {_quote(self.table)} "
            f"WHERE {self.filters}",
            self.params,
        ).fetchone()
        return int(count), int(top)

    def batches(self, top: int) -> Iterator[list[bytes]]:
        """Each matching row as its canonical line (UTF-8), in rowid order, a batch at a time."""
        sql = (
            f"SELECT encode(to_json(t)::VARCHAR) FROM {_quote(self.table)} t "
            f"WHERE rowid >= ? AND rowid < ? AND {self.filters} ORDER BY rowid"
        )
        for low in range(0, top, ROW_BATCH):
            cursor = self.store.con.execute(sql, [low, low + ROW_BATCH, *self.params])
            try:
                values = cursor.fetchnumpy()
                batch = next(iter(values.values())).tolist()
            except (ImportError, AttributeError):  # pragma: no cover - numpy comes with river
                batch = [row[0] for row in cursor.fetchall()]
            if batch:
                yield batch


def _encode_batch(lines: list[bytes]) -> tuple[bytes, bytes]:
    """Entry lines and their leaf hashes; a row never holds a raw newline (JSON)."""
    sha = hashlib.sha256
    return b"\n".join(lines) + b"\n", b"".join([sha(b"\x00" + line).digest() for line in lines])


class Prefetch(Generic[T]):
    """Run an iterator one step ahead on a background thread.

    While this thread hashes one batch, DuckDB renders the next one (it releases
    the GIL while it works). Leaving the ``with`` block stops the producer and
    waits for it, so the connection is never used by two threads at once.
    """

    _DONE = object()

    def __init__(self, items: Iterator[T], depth: int = 1) -> None:
        self._items = items
        self._slots: queue.Queue[tuple[object, BaseException | None]] = queue.Queue(depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, daemon=True)

    def __enter__(self) -> Iterator[T]:
        self._thread.start()
        return self._consume()

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _offer(self, item: object, error: BaseException | None = None) -> bool:
        while not self._stop.is_set():
            try:
                self._slots.put((item, error), timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for item in self._items:
                if not self._offer(item):
                    return
        except BaseException as exc:  # handed to the consuming thread
            self._offer(self._DONE, exc)
            return
        self._offer(self._DONE)

    def _consume(self) -> Iterator[T]:
        while True:
            item, error = self._slots.get()
            if error is not None:
                raise error
            if item is self._DONE:
                return
            yield cast(T, item)
