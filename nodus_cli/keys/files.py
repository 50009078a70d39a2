"""File-level operations: detached signatures, recipients, sealing with atomic outputs.

A detached signature file (``nodus-keyring(5)``) is UTF-8 text::

    nodus-signature-v1
    key: KEYID
    algorithm: MLDSA65-Ed25519-SHA512
    signed: ISO-8601 TIME
    signature: BASE64(mldsaSig || ed25519Sig)

The composite signature covers ``SHA-512(file)`` with the context
``nodus-file-signature/v1 signed=TIME``, so the signing time cannot be changed
without breaking the signature; revoked keys verify nothing signed after revocation.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import os
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from nodus_cli.errors import InputError, UsageError, describe_os_error
from nodus_cli.fsutil import atomic_writer
from nodus_cli.keys import age, signing
from nodus_cli.keys.errors import AgeError, AgeNoMatch, SignatureInvalid, UnknownSigner
from nodus_cli.keys.keyring import Keyring, UnlockedKeyring, select_creating_key
from nodus_cli.keys.record import ENCRYPT, utc_now

SIGNATURE_TAG = "nodus-signature-v1"
READ_SIZE = 1 << 20
KEY_FILE_LIMIT = 1 << 20  # keys, identities, recipients and signatures are far smaller


def read_key_file(path: Path, what: str) -> str:
    """The text of a small file (a key, identity, recipients or signature file), checked
    before it is read: a directory, a device or FIFO, a huge or a binary file is an
    InputError that says so."""
    try:  # O_NONBLOCK: opening a FIFO must not wait for a writer
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise InputError(f"{describe_os_error(exc)} (expected {what})") from None
    try:
        info = os.fstat(descriptor)
        if stat.S_ISDIR(info.st_mode):
            raise InputError(f"{path}: is a directory (expected {what})")
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{path}: not a regular file (expected {what})")
        if info.st_size > KEY_FILE_LIMIT:
            raise InputError(f"{path}: {info.st_size} bytes is far too large for {what}")
        data = os.read(descriptor, KEY_FILE_LIMIT + 1)
        if len(data) > KEY_FILE_LIMIT:
            raise InputError(f"{path}: far too large for {what}")
    except OSError as exc:
        raise InputError(describe_os_error(exc)) from None
    finally:
        os.close(descriptor)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        kind = next((k for magic, k, _ in age.FORMAT_MAGIC if data.startswith(magic)), None)
        if data.startswith(age.VERSION_LINE):
            kind = "an age-encrypted file"
        raise InputError(f"{path}: {kind or 'binary data'}, not {what}") from None


def file_digest(source: IO[bytes], on_progress: Callable[[int], None] | None = None) -> bytes:
    """SHA-512 of a stream, read in 1 MiB blocks."""
    digest = hashlib.sha512()
    while block := source.read(READ_SIZE):
        digest.update(block)
        if on_progress:
            on_progress(len(block))
    return digest.digest()


def signature_context(signed_at: dt.datetime) -> bytes:
    return f"nodus-file-signature/v1 signed={signed_at.isoformat()}".encode()


@dataclass
class DetachedSignature:
    key_id: str
    signed_at: dt.datetime
    signature: bytes

    def to_text(self) -> str:
        return (
            f"{SIGNATURE_TAG}\nkey: {self.key_id}\nalgorithm: {signing.ALGORITHM}\n"
            f"signed: {self.signed_at.isoformat()}\n"
            f"signature: {base64.b64encode(self.signature).decode()}\n"
        )

    @classmethod
    def parse(cls, text: str, source: str = "signature") -> DetachedSignature:
        lines = text.splitlines()
        if len(lines) != 5 or lines[0] != SIGNATURE_TAG:
            raise InputError(f"{source}: not a {SIGNATURE_TAG} signature file")
        fields = {}
        for line, name in zip(lines[1:], ("key", "algorithm", "signed", "signature"), strict=True):
            prefix = f"{name}: "
            if not line.startswith(prefix):
                raise InputError(f"{source}: expected a '{name}:' line")
            fields[name] = line[len(prefix) :]
        if fields["algorithm"] != signing.ALGORITHM:
            raise InputError(f"{source}: unknown signature algorithm {fields['algorithm']!r}")
        if not signing.KEY_ID_PATTERN.match(fields["key"]):
            raise InputError(f"{source}: invalid key id")
        try:
            signed_at = dt.datetime.fromisoformat(fields["signed"])
            signature = base64.b64decode(fields["signature"], validate=True)
        except (ValueError, binascii.Error):
            raise InputError(f"{source}: unreadable time or signature") from None
        canonical_time = signed_at.tzinfo is not None and signed_at.isoformat() == fields["signed"]
        if not canonical_time or len(signature) != signing.SIGNATURE_SIZE:
            raise InputError(f"{source}: unreadable time or signature")
        return cls(fields["key"], signed_at, signature)


def sign_stream(
    key: signing.SigningKey,
    source: IO[bytes],
    now: dt.datetime | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> DetachedSignature:
    signed_at = now or utc_now()
    digest = file_digest(source, on_progress)
    return DetachedSignature(
        key.key_id, signed_at, key.sign_digest(digest, signature_context(signed_at))
    )


def verify_stream(
    source: IO[bytes],
    signature: DetachedSignature,
    trusted: Iterable[signing.SigningPublicKey],
    on_progress: Callable[[int], None] | None = None,
) -> signing.SigningPublicKey:
    """The key that made ``signature`` over ``source``; raises when it does not verify.

    Exit 1 when the signature is wrong or outside the key's validity; exit 3 when no
    trusted key has its id and none verifies it (unknown signer).
    """
    keys = list(trusted)
    digest = file_digest(source, on_progress)
    context = signature_context(signature.signed_at)
    named = [k for k in keys if k.key_id == signature.key_id]
    for key in named:
        if key.verify_digest(digest, signature.signature, context):
            if not key.usable_at(signature.signed_at):
                raise SignatureInvalid(
                    f"signature by key {key.key_id} made at {signature.signed_at.isoformat()}, "
                    f"outside the key's validity (revoked at {key.revoked_at})"
                    if key.revoked_at
                    else f"signature dated before key {key.key_id} was created"
                )
            return key
    if named:
        raise SignatureInvalid(f"the signature does not verify with key {signature.key_id}")
    if any(k.verify_digest(digest, signature.signature, context) for k in keys):
        raise SignatureInvalid("the signature's key id was altered")
    raise UnknownSigner(f"no trusted key {signature.key_id}: cannot verify the signature")


def resolve_recipients(specs: list[str], keyring: Keyring | None) -> list[age.HybridRecipient]:
    """``age1pq1...`` strings, ``@keyring`` (the primary), ``@KEYID``, or recipient files."""
    if not specs:
        raise UsageError("give at least one recipient (-r age1pq1..., -r @keyring or -r FILE)")
    now = utc_now()
    recipients = []
    for spec in specs:
        if spec.startswith("@"):
            if keyring is None:
                raise UsageError("no keyring for @ recipients")
            key_id = None if spec == "@keyring" else spec[1:]
            record = select_creating_key(keyring.vouched_records(), ENCRYPT, key_id, now)
            recipients.append(age.HybridRecipient(record.public))
        elif spec.startswith("age1"):
            recipients.append(age.parse_recipient(spec))
        else:
            recipients.extend(_recipients_file(Path(spec)))
    return recipients


def _recipients_file(path: Path) -> list[age.HybridRecipient]:
    text = read_key_file(path, "a recipient or a recipients file")
    lines = [line.strip() for line in text.splitlines()]
    recipients = [age.parse_recipient(line) for line in lines if line.startswith("age1")]
    if not recipients:
        raise InputError(f"{path}: no age1pq1 recipient in the file")
    return recipients


def keyring_identities(unlocked: UnlockedKeyring) -> list[age.Identity]:
    return [age.HybridIdentity(seed, record.key_id) for record, seed in unlocked.decryption_seeds()]


@contextlib.contextmanager
def naming(name: str, tried: str = "the identities given") -> Iterator[None]:
    """Age errors say which file they are about, and a no-match says what was tried."""
    try:
        yield
    except AgeNoMatch as exc:
        raise AgeNoMatch(
            f"{name}: {tried} cannot open it; {exc.recipients}", recipients=exc.recipients
        ) from None
    except AgeError as exc:
        raise type(exc)(f"{name}: {exc.message}", exit_code=exc.exit_code) from None


def check_sealed(path: Path, identities: list[age.Identity]) -> str:
    """The label of the identity that opens ``path``'s header (payload not read)."""
    try:
        with path.open("rb") as source, naming(str(path), "the keyring's keys"):
            header = age.read_header(age.unarmored(source))
            return age.unwrap_file_key(header, identities)[1].label
    except OSError as exc:
        raise InputError(describe_os_error(exc)) from None


def rewrap_file(
    path: Path, identities: list[age.Identity], recipients: list[age.HybridRecipient]
) -> str:
    """Replace the file's wrapped keys atomically; the payload bytes stay as they are.

    Returns the label of the keyring key that opened the file before."""
    try:
        with (
            path.open("rb") as source,
            atomic_writer(path, mode=path.stat().st_mode & 0o777) as target,
            naming(str(path), "the keyring's keys"),
        ):
            identity = age.rewrap(source, target, identities, recipients)
    except OSError as exc:
        raise InputError(describe_os_error(exc)) from None
    return identity.label


@contextlib.contextmanager
def reading(path: Path) -> Iterator[IO[bytes]]:
    """stdin for '-', else the file (an unreadable one is an InputError)."""
    if str(path) == "-":
        yield sys.stdin.buffer
        return
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputError(describe_os_error(exc)) from None
    with handle:
        yield handle


@contextlib.contextmanager
def writing(path: Path | None, mode: int | None = None) -> Iterator[IO[bytes]]:
    """stdout for '-', else an atomic file: a failed command leaves no partial output."""
    if path is None or str(path) == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    try:
        with atomic_writer(path, mode) as handle:
            yield handle
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as exc:
        raise InputError(describe_os_error(exc)) from None
