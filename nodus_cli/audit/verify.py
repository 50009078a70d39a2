"""Verify bundles, chains and stand-alone inclusion proofs; write proofs.

Every check lands in a ``Report``: ``problems`` (exit 1: something does not hold)
and ``undecided`` (exit 3: nothing is wrong that we can see, but the signer is not
trusted). Unreadable or malformed input raises ``BundleError`` (exit 2) instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from nodus_cli.audit import merkle, note
from nodus_cli.audit.bundle import (
    EXT_KIND,
    EXT_MANIFEST,
    KINDS,
    NO_PREV,
    Bundle,
    BundleError,
    FileEntry,
    UnknownFormat,
    read_bundle,
)
from nodus_cli.audit.seal import hash_file, inside, safe_relative, walk_inputs
from nodus_cli.errors import (
    EXIT_OK,
    EXIT_PROBLEM,
    EXIT_UNVERIFIABLE,
    InputError,
    NodusError,
    NotFoundError,
)
from nodus_cli.fsutil import atomic_write, loads_bounded, open_regular, read_bounded
from nodus_cli.progress import SILENT, Progress, ProgressLike, reporter

if TYPE_CHECKING:
    from nodus_cli.store import Store


class TrustedKey(Protocol):
    """What verification needs of ``nodus_cli.keys.signing.SigningPublicKey``."""

    key_id: str
    ed25519: Any

    def to_bytes(self) -> bytes: ...

    def verify(self, message: bytes, signature: bytes, context: bytes = b"") -> bool: ...

    def usable_at(self, when: Any) -> bool: ...


@dataclass
class Report:
    """The outcome of one verification, rendered as the JSON report."""

    subject: str
    details: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    undecided: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.problems:
            return EXIT_PROBLEM
        return EXIT_UNVERIFIABLE if self.undecided else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "ok": self.exit_code == EXIT_OK,
            "exit_code": self.exit_code,
            **self.details,
            "problems": self.problems,
            "undecided": self.undecided,
        }


# --- signatures -------------------------------------------------------------------------


def check_signature(
    checkpoint_note: note.Note, trusted: Sequence[TrustedKey], created: Any, report: Report
) -> None:
    """Both lines (Ed25519 and composite ML-DSA-65) by one trusted key, valid when signed."""
    origin = note.parse_checkpoint(checkpoint_note.text).origin
    verifiers: list[note.Verifier] = []
    for key in trusted:
        verifiers.append(note.Ed25519Verifier(origin, key.ed25519))
        verifiers.append(note.CompositeVerifier(origin, key))
    try:
        opened = note.open_note(checkpoint_note, verifiers)
    except note.BadSignature as exc:
        report.problems.append(f"bad signature: {exc}")
        report.details["signature"] = {"status": "bad"}
        return
    except note.UntrustedSigner:
        report.undecided.append("the signer is not trusted (pass its key with --trust)")
        report.details["signature"] = {"status": "untrusted"}
        return
    for key in trusted:
        ed = note.Ed25519Verifier(origin, key.ed25519)
        composite = note.CompositeVerifier(origin, key)
        hashes = {v.key_hash for v in opened.verified if v.name == origin}
        if ed.key_hash in hashes or composite.key_hash in hashes:
            status = {"status": "ok", "key_id": key.key_id, "vkey": ed.vkey()}
            report.details["signature"] = status
            repeated = [
                sig
                for sig in checkpoint_note.signatures
                if sig.name == origin and sig.key_hash in (ed.key_hash, composite.key_hash)
            ]
            if len(repeated) > len({sig.key_hash for sig in repeated}):
                report.problems.append("bad signature: a signature line is repeated")
                status["status"] = "repeated"
            if not (ed.key_hash in hashes and composite.key_hash in hashes):
                missing = "ML-DSA-65" if ed.key_hash in hashes else "Ed25519"
                report.problems.append(f"bad signature: the {missing} line is missing")
                status["status"] = "incomplete"
            elif created is not None and not key.usable_at(created):
                report.problems.append(f"bad signature: key {key.key_id} was not valid then")
                status["status"] = "key not valid at signing time"
            return


def _created(bundle: Bundle, report: Report) -> Any:
    """The signed sealing time (with its UTC offset), against which key validity is judged."""
    import datetime as dt

    try:
        created = dt.datetime.fromisoformat(str(bundle.header.get("created")))
    except ValueError:
        created = None
    if created is None or created.tzinfo is None:
        report.problems.append("the bundle has no valid sealing time")
        return None
    return created


# --- one bundle -------------------------------------------------------------------------


def _check_structure(bundle: Bundle, report: Report) -> None:
    """Manifest digest, root and size: the checkpoint commits to exactly these entries."""
    checkpoint = bundle.checkpoint
    if checkpoint.extension(EXT_MANIFEST) != bundle.manifest_digest:
        report.problems.append("manifest does not match the signed checkpoint")
    if len(bundle.leaves) != checkpoint.size or bundle.header.get("origin") != checkpoint.origin:
        report.problems.append("entry count or origin does not match the signed checkpoint")
    if merkle.root_hash(bundle.leaves) != checkpoint.root:
        report.problems.append("root hash does not match the entries")
    signed_kind = checkpoint.extension(EXT_KIND)
    if signed_kind is not None and signed_kind != bundle.kind:
        report.problems.append("entry kind in the header and checkpoint differ")
    prev = bundle.header.get("prev")
    if (prev["digest"] if prev else NO_PREV) != (bundle.prev or NO_PREV):
        report.problems.append("previous checkpoint in the header and checkpoint differ")
    proof = bundle.trailer.get("consistency")
    if proof is not None:
        if not prev:
            report.problems.append("consistency proof without a previous checkpoint")
            return
        try:
            merkle.verify_consistency(
                prev["size"], checkpoint.size, bytes.fromhex(prev["root"]), checkpoint.root, proof
            )
        except (merkle.ProofError, ValueError, KeyError, TypeError) as exc:
            report.problems.append(f"consistency proof to the previous checkpoint fails: {exc}")


def _counted(entries: Iterator[FileEntry], progress: Progress) -> Iterator[FileEntry]:
    """``entries``, reporting each one's bytes and the entry as done once it is checked."""
    for entry in entries:
        yield entry
        progress.advance(entry.size, items=1)


def _check_files(
    bundle: Bundle, root: Path | None, report: Report, progress: Progress = SILENT
) -> None:
    """Re-hash every file under ``root`` (or the embedded copies) and look for additions."""
    changed: list[str] = []
    missing: list[str] = []
    unsafe: list[str] = []
    recorded: set[str] = set()
    progress.total(sum(entry.size for entry in bundle.file_entries()), items=bundle.size)
    for entry in _counted(bundle.file_entries(), progress):
        recorded.add(entry.path)
        if entry.content is not None and (
            merkle.leaf_hash(entry.content) != entry.leaf or len(entry.content) != entry.size
        ):
            changed.append(entry.path)
            continue
        if root is None:
            continue
        if not safe_relative(entry.path):
            unsafe.append(entry.path)
            continue
        target = root / entry.path
        if not os.path.lexists(target):
            missing.append(entry.path)
        elif not inside(root, target):
            unsafe.append(entry.path)
        elif not target.is_file():
            changed.append(entry.path)
        else:
            leaf, size, _ = hash_file(target)
            if (leaf, size) != (entry.leaf, entry.size):
                changed.append(entry.path)
    added: list[str] = []
    if root is not None:
        inputs = [i for i in bundle.header.get("inputs", []) if i == "." or safe_relative(i)]
        present = [i for i in inputs if i == "." or (root / i).exists()]
        try:
            added = [p for p in walk_inputs(root, present) if p not in recorded]
        except NodusError as exc:
            report.problems.append(f"cannot walk the root: {exc.message}")
    entries = {"checked": len(recorded), "changed": changed, "missing": missing, "added": added}
    entries["unsafe"] = unsafe
    report.details["entries"] = entries
    for label, items in (("changed", changed), ("missing", missing), ("added", added)):
        report.problems.extend(f"{label}: {item}" for item in items)
    report.problems.extend(f"unsafe path (outside the root): {item}" for item in unsafe)


def _check_rows(bundle: Bundle, store: Store, report: Report, progress: Progress = SILENT) -> None:
    """Compare the sealed rows with the table now, each row by its identity (its content in
    sequence), so one changed and one deleted row are those two, not every row after them.

    Rows appended after the seal are reported, not failed: the table is append-only
    and they belong to the next bundle.
    """
    import datetime as dt
    import hashlib

    from nodus_cli.audit.seal import RowSelection

    header = bundle.header
    window = [
        dt.datetime.fromisoformat(header[name]) if header.get(name) else None
        for name in ("since", "until")
    ]
    try:
        selection = RowSelection.of(store, str(header.get("table")), window[0], window[1])
    except NodusError as exc:
        report.problems.append(f"cannot compare with the store: {exc.message}")
        return
    current: list[bytes] = []
    store.con.execute("BEGIN TRANSACTION")
    try:
        count, top = selection.extent()
        progress.total(count, unit="rows")
        for batch in selection.batches(top):
            current.extend(hashlib.sha256(b"\x00" + line).digest() for line in batch)
            progress.advance(len(batch))
    finally:
        store.con.execute("ROLLBACK")  # a read-only snapshot: nothing to keep
    diff = align_rows(bundle.leaves[:], current)
    report.details["entries"] = {
        "checked": len(bundle.leaves),
        "changed": [str(i) for i in diff.changed],
        "missing": [str(i) for i in diff.missing],
        "added": [str(i) for i in diff.inserted],
        "appended_since": diff.appended,
    }
    report.problems.extend(f"changed: row {i}" for i in diff.changed)
    report.problems.extend(f"missing: row {i}" for i in diff.missing)
    report.problems.extend(f"added: a row before sealed row {i}" for i in diff.inserted)


@dataclass
class RowDiff:
    """Sealed row indices changed or missing, where rows were inserted, how many appended."""

    changed: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    inserted: list[int] = field(default_factory=list)
    appended: int = 0


def align_rows(sealed: Sequence[bytes], current: Sequence[bytes]) -> RowDiff:
    """Align two row sequences (leaf hashes) by content: the common prefix and suffix are
    matched directly, the span between them by a longest-matching-blocks diff."""
    import difflib

    diff = RowDiff()
    low, limit = 0, min(len(sealed), len(current))
    while low < limit and sealed[low] == current[low]:
        low += 1
    if low == len(sealed):
        diff.appended = len(current) - low
        return diff
    high_s, high_c = len(sealed), len(current)
    while high_s > low and high_c > low and sealed[high_s - 1] == current[high_c - 1]:
        high_s, high_c = high_s - 1, high_c - 1
    matcher = difflib.SequenceMatcher(None, sealed[low:high_s], current[low:high_c], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        i1, i2, j1, j2 = i1 + low, i2 + low, j1 + low, j2 + low
        if tag in ("replace", "delete"):
            paired = min(i2 - i1, j2 - j1)
            diff.changed.extend(range(i1, i1 + paired))
            diff.missing.extend(range(i1 + paired, i2))
            j1 += paired
        if tag in ("replace", "insert") and j2 > j1:
            if i2 == len(sealed) and j2 == len(current):
                diff.appended += j2 - j1  # after the last sealed row: the next bundle's
            else:
                diff.inserted.append(i2)
    return diff


def _check_link(bundle: Bundle, prev: Bundle, report: Report) -> None:
    """The bundle names ``prev``'s checkpoint and, when it extends it, proves it."""
    link: dict[str, Any] = {"prev": str(prev.path), "expected": prev.digest, "named": bundle.prev}
    report.details["chain"] = link
    if bundle.origin != prev.origin:
        report.problems.append(f"broken chain: origin {bundle.origin!r} != {prev.origin!r}")
    if bundle.prev != prev.digest:
        report.problems.append(f"broken chain: {bundle.path} does not follow {prev.path}")
        link["status"] = "broken"
        return
    header_prev = bundle.header.get("prev") or {}
    if (
        header_prev.get("size") != prev.size
        or header_prev.get("root") != prev.checkpoint.root.hex()
    ):
        report.problems.append("broken chain: previous size or root misstated")
    link["status"] = "ok"
    link["extends"] = bundle.trailer.get("consistency") is not None


def verify_bundle(
    path: Path,
    trusted: Sequence[TrustedKey],
    *,
    root: Path | None = None,
    prev: Path | None = None,
    store: Store | None = None,
    files_default_root: bool = True,
    on_progress: ProgressLike | None = None,
) -> Report:
    """Check everything a bundle claims; files are re-hashed under ``root``, rows
    compared with the table in ``store`` when given (``on_progress`` hears the
    bytes re-hashed and files done, or the rows compared)."""
    try:
        bundle = read_bundle(path)
    except UnknownFormat as exc:
        return _judge_signature(path, exc, trusted)
    report = Report(str(path))
    report.details.update(
        kind=bundle.kind,
        origin=bundle.origin,
        size=bundle.size,
        root=bundle.checkpoint.root.hex(),
        checkpoint_digest=bundle.digest,
        prev_digest=bundle.prev,
    )
    report.details["entries"] = {"checked": bundle.size}
    _check_structure(bundle, report)
    if bundle.kind == "files":
        if root is None and files_default_root and not bundle.header.get("embed"):
            root = recorded_root(bundle)
        if root is not None:
            report.details["files_root"] = str(root)
        _check_files(bundle, root, report, reporter(on_progress))
    elif store is not None:
        _check_rows(bundle, store, report, reporter(on_progress))
    check_signature(bundle.signed, trusted, _created(bundle, report), report)
    if prev is not None:
        _check_link(bundle, read_bundle(prev, keep_entries=False), report)
    return report


def _judge_signature(path: Path, unknown: UnknownFormat, trusted: Sequence[TrustedKey]) -> Report:
    """A bundle of a format nodus does not know is undecided (exit 3) only when its
    checkpoint is signed by a trusted key; a bad signature is still tampering (exit 1)."""
    report = Report(str(path))
    if unknown.signed is not None:
        check_signature(unknown.signed, trusted, None, report)
    if not report.problems:
        raise unknown
    report.problems.append(unknown.message)
    return report


def recorded_root(bundle: Bundle) -> Path:
    """The build root the bundle records, when its inputs are there; else the current dir."""
    recorded = bundle.header.get("root")
    if isinstance(recorded, str) and os.path.isabs(recorded):
        inputs = [i for i in bundle.header.get("inputs", []) if i == "." or safe_relative(i)]
        base = Path(recorded)
        if base.is_dir() and any(i == "." or os.path.lexists(base / i) for i in inputs):
            return base
    return Path(".")


def verify_chain(
    paths: Sequence[Path], trusted: Sequence[TrustedKey], *, root: Path | None = None
) -> Report:
    """Verify each bundle and every link, oldest first (files re-hashed only under ``root``)."""
    report = Report(" ".join(str(p) for p in paths))
    if not paths:
        report.problems.append("no bundles given")
        return report
    links: list[dict[str, Any]] = []
    previous: Path | None = None
    for path in paths:
        one = verify_bundle(path, trusted, root=root, prev=previous, files_default_root=False)
        links.append(one.to_json())
        report.problems.extend(f"{path}: {problem}" for problem in one.problems)
        report.undecided.extend(f"{path}: {item}" for item in one.undecided)
        previous = path
    report.details["bundles"] = links
    return report


# --- inclusion proofs -------------------------------------------------------------------


def find_entry(bundle: Bundle, entry: str) -> int:
    """An entry by its recorded path (files) or its index."""
    if bundle.kind == "files":
        for index, item in enumerate(bundle.file_entries()):
            if item.path == entry:
                return index
    if entry.isdigit() and int(entry) < bundle.size:
        return int(entry)
    raise NotFoundError(f"no entry {entry!r} in {bundle.path}")


def prove(bundle_path: Path, entry: str, output: Path) -> dict[str, Any]:
    """Write a C2SP tlog-proof for one entry, with the bundle's signed checkpoint."""
    bundle = read_bundle(bundle_path)
    problems = Report(str(bundle_path))
    _check_structure(bundle, problems)
    if problems.problems:
        raise InputError(f"{bundle_path} does not hold together: {problems.problems[0]}")
    index = find_entry(bundle, entry)
    leaves = bundle.leaves
    hashes = merkle.inclusion_proof(leaves, index)
    hint = {"kind": bundle.kind, "entry": entry}
    proof = note.TlogProof(index, tuple(hashes), bundle.checkpoint_note, json.dumps(hint).encode())
    atomic_write(output, proof.to_text().encode("utf-8"))
    return {
        "proof": str(output),
        "index": index,
        "size": bundle.size,
        "hashes": len(hashes),
        "proof_bytes": 32 * len(hashes),
        "leaf": leaves[index].hex(),
    }


MAX_PROOF = 1 << 20  # a proof of 2**64 leaves is 64 hashes and a checkpoint: a few KiB


def _read_text(path: Path, what: str) -> str:
    try:
        return read_bounded(path, MAX_PROOF, what).decode("utf-8")
    except InputError as exc:
        raise BundleError(exc.message) from None
    except UnicodeDecodeError:
        raise BundleError(f"{path}: {what} is not UTF-8 text") from None


def entry_leaf(path: Path, kind: str) -> bytes:
    """The leaf hash of an entry file, streamed; for a row, one trailing newline is not
    part of the row. ``kind`` comes from the signed checkpoint, never from the proof."""
    import hashlib

    try:
        handle = open_regular(path, "the entry")
    except InputError as exc:
        raise BundleError(exc.message) from None
    digest, held = hashlib.sha256(b"\x00"), b""
    with handle:
        while chunk := handle.read(1 << 20):
            digest.update(held)
            held = chunk
    if kind == "rows" and held.endswith(b"\n"):
        held = held[:-1]
    digest.update(held)
    return digest.digest()


def verify_proof(proof_path: Path, entry_path: Path, trusted: Sequence[TrustedKey]) -> Report:
    """Check a stand-alone proof: the entry's bytes are in the signed checkpoint's tree.

    How the entry is hashed is decided by the signed checkpoint's entry kind; the
    proof's ``extra`` is an unsigned hint and must agree with it."""
    proof = note.parse_tlog_proof(_read_text(proof_path, "the proof"))
    signed = note.parse_note(proof.checkpoint)
    checkpoint = note.parse_checkpoint(signed.text)
    report = Report(str(proof_path))
    report.details.update(
        origin=checkpoint.origin, size=checkpoint.size, index=proof.index, entry=str(entry_path)
    )
    kind = checkpoint.extension(EXT_KIND) or "files"
    if kind not in KINDS:
        report.undecided.append(f"unknown entry kind {kind[:40]!r} in the checkpoint")
        return report
    hinted = _hint(proof).get("kind")
    if hinted is not None and hinted != kind:
        report.problems.append(
            f"the proof's unsigned hint says {str(hinted)[:40]!r} but the signed checkpoint "
            f"holds {kind} (the proof was edited)"
        )
    try:
        leaf = entry_leaf(entry_path, kind)
        merkle.verify_inclusion(proof.index, checkpoint.size, leaf, proof.hashes, checkpoint.root)
    except merkle.ProofError as exc:
        report.problems.append(f"inclusion proof fails: {exc}")
    check_signature(signed, trusted, None, report)
    return report


def _hint(proof: note.TlogProof) -> dict[str, Any]:
    try:
        value = loads_bounded(proof.extra or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
