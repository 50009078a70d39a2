"""A key of the keyring: its purpose, state, dates and public part, as stored.

The keyring (``keyring.py``) holds these records and the key log (``keylog.py``)
signs entries about them; both depend on this module, neither on the other's
internals. Times are whole seconds in UTC.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from nodus_cli.keys import signing, xwing

FORMAT = "nodus-keyring/v1"
SIGN = "sign"
ENCRYPT = "encrypt"
PURPOSES = (SIGN, ENCRYPT)
ALGORITHMS = {SIGN: signing.ALGORITHM, ENCRYPT: xwing.ALGORITHM}

PRIMARY = "primary"
ACTIVE = "active"
RETIRED = "retired"  # decrypt-or-verify-only
REVOKED = "revoked"
DESTROYED = "destroyed"
STATES = (PRIMARY, ACTIVE, RETIRED, REVOKED, DESTROYED)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def canonical_json(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def parse_time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass
class KeyRecord:
    """One key: metadata, public part, and its private seed sealed (``None`` when gone)."""

    key_id: str
    purpose: str
    state: str
    created: dt.datetime
    public: bytes
    not_after: dt.datetime | None = None
    revoked_at: dt.datetime | None = None
    destroyed_at: dt.datetime | None = None
    sealed: dict[str, str] | None = None

    @property
    def algorithm(self) -> str:
        return ALGORITHMS[self.purpose]

    def expired(self, now: dt.datetime) -> bool:
        return self.not_after is not None and now >= self.not_after

    def can_create(self, now: dt.datetime) -> bool:
        """Whether this key may still sign or encrypt (not only verify or decrypt)."""
        return self.state in (PRIMARY, ACTIVE) and not self.expired(now)

    def recipient(self) -> str | None:
        """The ``age1pq1...`` recipient of an encryption key."""
        if self.purpose != ENCRYPT:
            return None
        from nodus_cli.keys.age import encode_recipient

        return encode_recipient(self.public)

    def signing_public_key(self) -> signing.SigningPublicKey:
        return signing.SigningPublicKey.from_bytes(
            self.key_id,
            self.public,
            created=self.created,
            not_after=self.not_after,
            revoked_at=self.revoked_at,
        )

    def seal_aad(self) -> bytes:
        return f"{FORMAT}\0{self.key_id}\0{self.purpose}\0{self.algorithm}\0".encode() + self.public

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.key_id,
            "purpose": self.purpose,
            "algorithm": self.algorithm,
            "state": self.state,
            "created": iso(self.created),
            "not_after": iso(self.not_after),
            "revoked_at": iso(self.revoked_at),
            "destroyed_at": iso(self.destroyed_at),
            "public": b64(self.public),
            "sealed": self.sealed,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyRecord:
        purpose = data["purpose"]
        if purpose not in PURPOSES or data["state"] not in STATES:
            raise ValueError("unknown purpose or state")
        if data["algorithm"] != ALGORITHMS[purpose]:
            raise ValueError("unknown algorithm")
        created = parse_time(data["created"])
        if created is None:
            raise ValueError("no creation time")
        return cls(
            key_id=data["id"],
            purpose=purpose,
            state=data["state"],
            created=created,
            public=unb64(data["public"]),
            not_after=parse_time(data["not_after"]),
            revoked_at=parse_time(data["revoked_at"]),
            destroyed_at=parse_time(data["destroyed_at"]),
            sealed=data["sealed"],
        )

    def public_summary(self, now: dt.datetime | None = None) -> dict[str, Any]:
        """What ``nodus keys list --json`` shows: no secret, ever."""
        now = now or utc_now()
        document: dict[str, Any] = {
            "id": self.key_id,
            "purpose": self.purpose,
            "algorithm": self.algorithm,
            "state": self.state,
            "created": self.created,
            "not_after": self.not_after,
            "expired": self.expired(now),
            "revoked_at": self.revoked_at,
            "destroyed_at": self.destroyed_at,
            "has_private": self.sealed is not None,
            "fingerprint": hashlib.sha256(self.public).hexdigest(),
        }
        if self.purpose == ENCRYPT:
            document["recipient"] = self.recipient()
        return document
