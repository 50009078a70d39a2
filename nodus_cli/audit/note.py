"""C2SP signed notes, tlog checkpoints and tlog proofs: parse, format, sign, verify.

A note is UTF-8 text ending in a newline, an empty line, then one or more lines
``— <name> <base64(key hash[4] || signature)>``. Verifier keys are matched by
name and 4-byte key hash; signatures by keys nobody trusts are ignored.

Signature types understood here:

* ``0x01`` Ed25519, key hash = SHA-256(name || 0x0A || 0x01 || public key)[:4]
  (exactly what C2SP signed-note and golang.org/x/mod/sumdb/note define);
* ``0x02`` ECDSA P-256 / SHA-256 as Rekor v1 checkpoints use it, key hash =
  SHA-256(SPKI DER)[:4];
* ``0xff`` + ``nodus-mldsa65-ed25519``: nodus's ML-DSA-65 line. Its signature is
  the composite ML-DSA-65 + Ed25519 signature of ``nodus_cli.keys.signing`` (IETF
  LAMPS composite construction) over the same note text, key hash =
  SHA-256(name || 0x0A || 0xFF || "nodus-mldsa65-ed25519" || 0x0A || composite
  public key)[:4]. 0xff is the signed-note type reserved for signature types named
  by an identifier string; the string keeps it apart from anyone else's. C2SP
  assigns no type to ML-DSA-65 (0x06 is ML-DSA-44 cosignatures).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from nodus_cli.errors import CannotVerify, CheckFailed, InputError

SIG_PREFIX = "\u2014 "  # em dash and a space
ALG_ED25519 = 0x01
ALG_ECDSA = 0x02
ALG_PRIVATE = 0xFF
COMPOSITE_IDENTIFIER = b"nodus-mldsa65-ed25519"
MAX_UINT64 = 2**64 - 1
TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"


class NoteError(InputError):
    """A note, checkpoint or proof text is malformed (exit 2)."""


class BadSignature(CheckFailed):
    """A signature by a trusted key does not verify (exit 1)."""


class UntrustedSigner(CannotVerify):
    """No signature is by a key the verifier trusts (exit 3)."""


@dataclass(frozen=True)
class Signature:
    name: str
    key_hash: bytes
    signature: bytes

    def line(self) -> str:
        blob = base64.b64encode(self.key_hash + self.signature).decode()
        return f"{SIG_PREFIX}{self.name} {blob}\n"


@dataclass(frozen=True)
class Note:
    text: str
    signatures: tuple[Signature, ...]

    def to_text(self) -> str:
        return self.text + "\n" + "".join(sig.line() for sig in self.signatures)


class Verifier(Protocol):
    """One verifier key: its name, 4-byte key hash and a signature check."""

    name: str
    key_hash: bytes

    def verify(self, message: bytes, signature: bytes) -> bool: ...


def valid_name(name: str) -> bool:
    return bool(name) and not any(c.isspace() or c == "+" for c in name)


def strict_b64decode(text: str) -> bytes:
    """Base64 that decodes only from its one canonical spelling (no ignored bits)."""
    raw = base64.b64decode(text.encode("ascii"), validate=True)
    if base64.b64encode(raw).decode("ascii") != text:
        raise binascii.Error("non-canonical base64")
    return raw


def _b64(text: str, what: str) -> bytes:
    try:
        return strict_b64decode(text)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise NoteError(f"malformed note: {what} is not base64") from exc


def parse_note(data: bytes | str) -> Note:
    """Split a signed note into its text and signature lines (no verification)."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError("malformed note: not UTF-8") from exc
    if any(ord(c) < 0x20 and c != "\n" for c in data) or "\x7f" in data:
        raise NoteError("malformed note: control characters")
    if not data.endswith("\n"):
        raise NoteError("malformed note: no final newline")
    split = data.rfind("\n\n")
    if split < 0:
        raise NoteError("malformed note: no signature block")
    text, block = data[: split + 1], data[split + 2 :]
    signatures = []
    for line in block.splitlines():
        if not line.startswith(SIG_PREFIX):
            raise NoteError("malformed note: unexpected line in the signature block")
        name, space, blob = line[len(SIG_PREFIX) :].partition(" ")
        if not space or not valid_name(name) or " " in blob:
            raise NoteError("malformed note: bad signature line")
        raw = _b64(blob, "a signature")
        if len(raw) < 5:
            raise NoteError("malformed note: signature too short")
        signatures.append(Signature(name, raw[:4], raw[4:]))
    if not signatures:
        raise NoteError("malformed note: no signatures")
    return Note(text, tuple(signatures))


@dataclass(frozen=True)
class Opened:
    """The result of checking a note's signatures against trusted verifiers."""

    note: Note
    verified: tuple[Verifier, ...]
    unverified: tuple[Signature, ...]


def open_note(data: bytes | str | Note, verifiers: Iterable[Verifier]) -> Opened:
    """Verify a note: a known key's bad signature fails, unknown keys are ignored."""
    note = data if isinstance(data, Note) else parse_note(data)
    known = {(v.name, v.key_hash): v for v in verifiers}
    message = note.text.encode("utf-8")
    verified: list[Verifier] = []
    unverified: list[Signature] = []
    for sig in note.signatures:
        verifier = known.get((sig.name, sig.key_hash))
        if verifier is None:
            unverified.append(sig)
        elif verifier.verify(message, sig.signature):
            verified.append(verifier)
        else:
            raise BadSignature(f"invalid signature for known key {sig.name}")
    if not verified:
        raise UntrustedSigner("no verifiable signatures: the signer is not trusted")
    return Opened(note, tuple(verified), tuple(unverified))


# --- verifier keys ----------------------------------------------------------------------


def key_hash(name: str, alg: int, key: bytes, identifier: bytes = b"") -> bytes:
    """SHA-256(name || 0x0A || alg || [identifier || 0x0A] || key)[:4]."""
    extra = identifier + b"\n" if identifier else b""
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + extra + key).digest()[:4]


@dataclass
class Ed25519Verifier:
    name: str
    public: Any  # Ed25519PublicKey
    key_hash: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.key_hash = key_hash(self.name, ALG_ED25519, _raw(self.public))

    def verify(self, message: bytes, signature: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature

        try:
            self.public.verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True

    def vkey(self) -> str:
        """The C2SP verifier key string, for standard signed-note verifiers."""
        blob = base64.b64encode(bytes([ALG_ED25519]) + _raw(self.public)).decode()
        return f"{self.name}+{self.key_hash.hex()}+{blob}"


@dataclass
class CompositeVerifier:
    """nodus's ML-DSA-65 line: the composite signature of ``nodus_cli.keys.signing``."""

    name: str
    public: Any  # nodus_cli.keys.signing.SigningPublicKey
    key_hash: bytes = field(init=False)

    def __post_init__(self) -> None:
        raw = self.public.to_bytes()
        self.key_hash = key_hash(self.name, ALG_PRIVATE, raw, COMPOSITE_IDENTIFIER)

    def verify(self, message: bytes, signature: bytes) -> bool:
        return bool(self.public.verify(message, signature))


@dataclass
class EcdsaVerifier:
    """Rekor v1 checkpoints: ECDSA P-256 over SHA-256, key hash from the SPKI DER."""

    name: str
    spki_der: bytes
    key_hash: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.key_hash = hashlib.sha256(self.spki_der).digest()[:4]

    def verify(self, message: bytes, signature: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        key = serialization.load_der_public_key(self.spki_der)
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return False
        try:
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            return False
        return True


def _raw(public: Any) -> bytes:
    return bytes(public.public_bytes_raw())


def parse_vkey(vkey: str) -> Verifier:
    """A C2SP verifier key ``name+hash+base64(alg || key)`` (Ed25519 only)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    parts = vkey.strip().split("+", 2)
    if len(parts) != 3 or not valid_name(parts[0]) or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
        raise NoteError(f"malformed verifier key {vkey!r}")
    raw = _b64(parts[2], "the verifier key")
    if not raw or raw[0] != ALG_ED25519 or len(raw) != 33:
        raise CannotVerify(f"verifier key {parts[0]}: unknown algorithm")
    verifier = Ed25519Verifier(parts[0], Ed25519PublicKey.from_public_bytes(raw[1:]))
    if verifier.key_hash.hex() != parts[1]:
        raise NoteError(f"verifier key {parts[0]}: key hash does not match the key")
    return verifier


class Signer(Protocol):
    name: str
    key_hash: bytes

    def sign(self, message: bytes) -> bytes: ...


@dataclass
class Ed25519Signer:
    name: str
    private: Any  # Ed25519PrivateKey
    key_hash: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.key_hash = key_hash(self.name, ALG_ED25519, _raw(self.private.public_key()))

    def sign(self, message: bytes) -> bytes:
        return bytes(self.private.sign(message))


@dataclass
class CompositeSigner:
    name: str
    private: Any  # nodus_cli.keys.signing.SigningKey
    key_hash: bytes = field(init=False)

    def __post_init__(self) -> None:
        raw = self.private.public().to_bytes()
        self.key_hash = key_hash(self.name, ALG_PRIVATE, raw, COMPOSITE_IDENTIFIER)

    def sign(self, message: bytes) -> bytes:
        return bytes(self.private.sign(message))


def sign_note(text: str, signers: Sequence[Signer]) -> Note:
    """Sign ``text`` (ends in a newline, no empty line) with each signer, one line each."""
    if not text.endswith("\n") or "\n\n" in "\n" + text:
        raise ValueError("note text must end in one newline and have no empty line")
    message = text.encode("utf-8")
    return Note(text, tuple(Signature(s.name, s.key_hash, s.sign(message)) for s in signers))


# --- checkpoints ------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        return "".join(line + "\n" for line in (*lines, *self.extensions))

    def extension(self, key: str) -> str | None:
        """The value of the first extension line ``key value``."""
        for line in self.extensions:
            name, _, value = line.partition(" ")
            if name == key:
                return value
        return None


def parse_uint64(text: str, what: str) -> int:
    """A decimal uint64; the length is checked first, so a huge number is cheap to refuse."""
    shown = repr(text) if len(text) <= 24 else repr(text[:20] + "...")
    if (
        len(text) > len(str(MAX_UINT64))
        or not re.fullmatch(r"[0-9]+", text)
        or (len(text) > 1 and text[0] == "0")
        or int(text) > MAX_UINT64
    ):
        raise NoteError(f"{what} {shown} is not a valid uint64")
    return int(text)


def parse_checkpoint(body: str) -> Checkpoint:
    """The checkpoint body: origin, size, base64 root hash, then extension lines."""
    if not body.endswith("\n"):
        raise NoteError("malformed checkpoint: no final newline")
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("malformed checkpoint: fewer than three lines")
    origin, size_text, root_text, *rest = lines
    if not origin:
        raise NoteError("malformed checkpoint: empty origin")
    size = parse_uint64(size_text, "checkpoint size")
    root = _b64(root_text, "the root hash")
    return Checkpoint(origin, size, root, tuple(rest))


def checkpoint_rest(body: str) -> str:
    """Everything after the root hash line (extension data, verbatim)."""
    return body.split("\n", 3)[3] if body.count("\n") >= 3 else ""


# --- tlog proofs ------------------------------------------------------------------------


@dataclass(frozen=True)
class TlogProof:
    index: int
    hashes: tuple[bytes, ...]
    checkpoint: str  # the signed checkpoint note, verbatim
    extra: bytes | None = None

    def to_text(self) -> str:
        lines = [TLOG_PROOF_HEADER]
        if self.extra is not None:
            lines.append("extra " + base64.b64encode(self.extra).decode())
        lines.append(f"index {self.index}")
        lines.extend(base64.b64encode(h).decode() for h in self.hashes)
        return "\n".join(lines) + "\n\n" + self.checkpoint


def parse_tlog_proof(text: str) -> TlogProof:
    """C2SP tlog-proof: header, optional extra, index, hashes, empty line, checkpoint."""
    head, sep, checkpoint = text.partition("\n\n")
    lines = head.split("\n")
    if lines[0] != TLOG_PROOF_HEADER:
        raise NoteError("malformed proof: missing expected header")
    if not sep:
        raise NoteError("malformed proof: no checkpoint")
    position = 1
    extra = None
    if position < len(lines) and lines[position].startswith("extra "):
        extra = _proof_b64(lines[position][6:], "extra data not base64 encoded")
        position += 1
    if position >= len(lines) or not lines[position].startswith("index "):
        raise NoteError("malformed proof: missing required index")
    index = parse_uint64(lines[position][6:], "index")
    hashes = tuple(_proof_b64(line, "hash not base64 encoded") for line in lines[position + 1 :])
    return TlogProof(index, hashes, checkpoint, extra)


def _proof_b64(text: str, message: str) -> bytes:
    try:
        return strict_b64decode(text)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise NoteError(f"malformed proof: {message}") from exc
