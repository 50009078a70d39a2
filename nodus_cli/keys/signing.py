"""Composite ML-DSA-65 + Ed25519 signatures (IETF LAMPS composite signatures draft).

The message representative is
``M' = "CompositeAlgorithmSignatures2025" || Label || len(ctx) || ctx || SHA-512(M)``
with ``Label = "COMPSIG-MLDSA65-Ed25519-SHA512"``. ML-DSA-65 signs ``M'`` with its
FIPS 204 context set to ``Label``; Ed25519 signs ``M'``. A signature is
``mldsaSig (3309) || ed25519Sig (64)``, a public key ``mldsaPK (1952) || ed25519PK (32)``
and a private key ``mldsaSeed (32) || ed25519SK (32)``. Both halves must verify.

Public keys travel in a line-oriented text file (``nodus-keyring(5)``)::

    nodus-sign-v1 KEYID BASE64(PUBLIC KEY) created=ISO [not_after=ISO] [revoked_at=ISO]
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nodus_cli.errors import InputError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )
    from cryptography.hazmat.primitives.asymmetric.mldsa import (
        MLDSA65PrivateKey,
        MLDSA65PublicKey,
    )

ALGORITHM = "MLDSA65-Ed25519-SHA512"
PREFIX = b"CompositeAlgorithmSignatures2025"
LABEL = b"COMPSIG-MLDSA65-Ed25519-SHA512"
MLDSA_PUBLIC_SIZE = 1952
MLDSA_SIGNATURE_SIZE = 3309
ED25519_SIZE = 32
ED25519_SIGNATURE_SIZE = 64
PUBLIC_KEY_SIZE = MLDSA_PUBLIC_SIZE + ED25519_SIZE
PRIVATE_KEY_SIZE = 32 + 32
SIGNATURE_SIZE = MLDSA_SIGNATURE_SIZE + ED25519_SIGNATURE_SIZE
PUBLIC_LINE_TAG = "nodus-sign-v1"
KEY_ID_PATTERN = re.compile(r"^[0-9a-z][0-9a-z_-]{0,63}$")
VALIDITY_FIELDS = ("created", "not_after", "revoked_at")
MAX_KEY_FILE = 16 << 20  # about 5,000 keys


def new_key_id() -> str:
    """A random key id: 16 lowercase hex digits."""
    return secrets.token_hex(8)


@functools.cache
def _verify_failures() -> tuple[type[Exception], ...]:
    """What a failed verify raises. An import statement in the verify itself cost 6% of a
    composite verify (measured by tests/bench/keys.py): the import machinery runs cold
    between two signature checks."""
    from cryptography.exceptions import InvalidSignature

    return (InvalidSignature, ValueError)


def message_representative(message_digest: bytes, context: bytes = b"") -> bytes:
    """``M'`` of the draft, from ``SHA-512(M)`` (so large files can be hashed in a stream)."""
    if len(context) > 255:
        raise InputError("signature context is longer than 255 bytes")
    if len(message_digest) != 64:
        raise ValueError("message_digest must be a SHA-512 digest")
    return PREFIX + LABEL + bytes([len(context)]) + context + message_digest


@dataclass
class SigningPublicKey:
    """The public half of a composite key, with the dates that bound its use."""

    key_id: str
    ed25519: Ed25519PublicKey
    mldsa: MLDSA65PublicKey
    created: dt.datetime | None = None
    not_after: dt.datetime | None = None
    revoked_at: dt.datetime | None = None

    def to_bytes(self) -> bytes:
        """The raw composite public key: ``mldsaPK || ed25519PK``."""
        return self.mldsa.public_bytes_raw() + self.ed25519.public_bytes_raw()

    @classmethod
    def from_bytes(
        cls, key_id: str, raw: bytes, **validity: dt.datetime | None
    ) -> SigningPublicKey:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PublicKey

        if len(raw) != PUBLIC_KEY_SIZE:
            raise InputError(f"composite public key is {len(raw)} bytes, not {PUBLIC_KEY_SIZE}")
        try:
            mldsa = MLDSA65PublicKey.from_public_bytes(raw[:MLDSA_PUBLIC_SIZE])
            ed25519 = Ed25519PublicKey.from_public_bytes(raw[MLDSA_PUBLIC_SIZE:])
        except ValueError as exc:
            raise InputError(f"invalid composite public key: {exc}") from None
        return cls(key_id, ed25519, mldsa, **validity)

    def verify(self, message: bytes, signature: bytes, context: bytes = b"") -> bool:
        """True only when both the ML-DSA-65 and the Ed25519 signature verify."""
        return self.verify_digest(hashlib.sha512(message).digest(), signature, context)

    def verify_digest(self, message_digest: bytes, signature: bytes, context: bytes = b"") -> bool:
        """``verify`` given ``SHA-512(message)``."""
        if len(signature) != SIGNATURE_SIZE:
            return False
        representative = message_representative(message_digest, context)
        try:
            self.mldsa.verify(signature[:MLDSA_SIGNATURE_SIZE], representative, LABEL)
            self.ed25519.verify(signature[MLDSA_SIGNATURE_SIZE:], representative)
        except _verify_failures():  # looked up only on failure: no import per verify
            return False
        return True

    def usable_at(self, when: dt.datetime) -> bool:
        """Whether a signature made at ``when`` is within this key's validity."""
        if self.created is not None and when < self.created:
            return False
        return not (self.revoked_at is not None and when > self.revoked_at)

    def to_line(self) -> str:
        """One line of the public key file (no newline)."""
        parts = [PUBLIC_LINE_TAG, self.key_id, base64.b64encode(self.to_bytes()).decode()]
        for name in VALIDITY_FIELDS:
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value.isoformat()}")
        return " ".join(parts)


@dataclass
class SigningKey:
    """A private composite key. The halves are reachable for protocols that sign separately."""

    key_id: str
    ed25519: Ed25519PrivateKey
    mldsa: MLDSA65PrivateKey
    created: dt.datetime | None = None
    not_after: dt.datetime | None = None

    @classmethod
    def generate(cls, key_id: str | None = None) -> SigningKey:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey

        return cls(
            key_id or new_key_id(), Ed25519PrivateKey.generate(), MLDSA65PrivateKey.generate()
        )

    @classmethod
    def from_private_bytes(cls, key_id: str, raw: bytes) -> SigningKey:
        """From ``mldsaSeed (32) || ed25519SK (32)``."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey

        if len(raw) != PRIVATE_KEY_SIZE:
            raise InputError(f"composite private key is {len(raw)} bytes, not {PRIVATE_KEY_SIZE}")
        return cls(
            key_id,
            Ed25519PrivateKey.from_private_bytes(raw[32:]),
            MLDSA65PrivateKey.from_seed_bytes(raw[:32]),
        )

    def private_bytes(self) -> bytes:
        """``mldsaSeed || ed25519SK``: a secret, never print it."""
        return self.mldsa.private_bytes_raw() + self.ed25519.private_bytes_raw()

    def public(self) -> SigningPublicKey:
        return SigningPublicKey(
            self.key_id,
            self.ed25519.public_key(),
            self.mldsa.public_key(),
            created=self.created,
            not_after=self.not_after,
        )

    def sign(self, message: bytes, context: bytes = b"") -> bytes:
        """The composite signature ``mldsaSig || ed25519Sig`` over ``message``."""
        return self.sign_digest(hashlib.sha512(message).digest(), context)

    def sign_digest(self, message_digest: bytes, context: bytes = b"") -> bytes:
        """``sign`` given ``SHA-512(message)``."""
        representative = message_representative(message_digest, context)
        return self.mldsa.sign(representative, LABEL) + self.ed25519.sign(representative)


def _parse_time(text: str, where: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{where}: invalid time {text!r}") from None
    if value.tzinfo is None:
        raise InputError(f"{where}: time {text!r} has no UTC offset")
    return value


def parse_public_key_line(line: str, where: str = "public key") -> SigningPublicKey:
    """Parse one ``nodus-sign-v1`` line."""
    fields = line.split()
    if len(fields) < 3 or fields[0] != PUBLIC_LINE_TAG:
        raise InputError(f"{where}: not a {PUBLIC_LINE_TAG} line")
    key_id, encoded = fields[1], fields[2]
    if not KEY_ID_PATTERN.match(key_id):
        raise InputError(f"{where}: invalid key id {key_id!r}")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{where}: public key is not base64") from None
    validity: dict[str, dt.datetime | None] = {}
    for attribute in fields[3:]:
        name, sep, value = attribute.partition("=")
        if not sep or name not in VALIDITY_FIELDS or name in validity:
            raise InputError(f"{where}: unexpected field {attribute!r}")
        validity[name] = _parse_time(value, where)
    return SigningPublicKey.from_bytes(key_id, raw, **validity)


def parse_public_keys(text: str, source: str = "public keys") -> list[SigningPublicKey]:
    """Every ``nodus-sign-v1`` line of ``text``; other lines (comments, recipients) are skipped."""
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or not stripped.startswith(PUBLIC_LINE_TAG):
            continue
        keys.append(parse_public_key_line(stripped, f"{source}:{number}"))
    return keys


def load_public_keys(path: Path | str) -> list[SigningPublicKey]:
    """Read a public key file written by ``nodus keys export --purpose sign``."""
    from nodus_cli.fsutil import read_bounded

    try:
        text = read_bounded(path, MAX_KEY_FILE, "the public key file").decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file") from None
    keys = parse_public_keys(text, str(path))
    if not keys:
        raise InputError(f"{path}: no {PUBLIC_LINE_TAG} public key in the file")
    return keys


def dump_public_keys(keys: Iterable[SigningPublicKey]) -> bytes:
    """The public key file for ``keys`` (see ``nodus-keyring(5)``)."""
    lines = [f"# nodus signing public keys ({ALGORITHM}); format: nodus-keyring(5)"]
    lines.extend(key.to_line() for key in keys)
    return ("\n".join(lines) + "\n").encode()
