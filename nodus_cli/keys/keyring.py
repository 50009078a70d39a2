"""The workspace keyring: hybrid keys, their states, and the private seeds sealed at rest.

``keyring/keyring.json`` is one canonical JSON line (sorted keys, no spaces) that holds
every key's public part and metadata, each private seed sealed with ChaCha20-Poly1305
under a key derived once per unlock from the passphrase by scrypt (parameters stored,
tuned to cost at least 0.25 s), a MAC over the whole document under that same key, the
head of the key log, and a plain SHA-256 checksum. ``keyring/log.jsonl`` is the key
log (``nodus_cli.keys.keylog``); a key's record is ``nodus_cli.keys.record``. The
format is documented in ``nodus-keyring(5)``.
"""

from __future__ import annotations

import binascii
import dataclasses
import datetime as dt
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodus_cli.errors import CannotVerify, NotFoundError, UsageError
from nodus_cli.fsutil import atomic_write, loads_bounded, read_bounded
from nodus_cli.keys import keylog, signing, xwing
from nodus_cli.keys.errors import KeyringTampered, KeyUnusable, WrongPassphrase
from nodus_cli.keys.kdf import (
    SCRYPT_MAX_LOG2_N,
    SCRYPT_MIN_LOG2_N,
    SCRYPT_P,
    SCRYPT_R,
    calibrate_log2_n,
    derive_master,
    subkey,
)
from nodus_cli.keys.record import (
    ACTIVE,
    DESTROYED,
    ENCRYPT,
    FORMAT,
    PRIMARY,
    RETIRED,
    REVOKED,
    SIGN,
    KeyRecord,
    b64,
    canonical_json,
    iso,
    unb64,
    utc_now,
)
from nodus_cli.workspace import Workspace

KEYRING_FILE = "keyring.json"
VERIFIER_PLAINTEXT = b"nodus-keyring/v1 passphrase verifier"
MAX_KEYRING_BYTES = 16 << 20
MIN_PINNED_DIGITS = 16
NO_SIGNING_KEY = "no signing key: run `nodus keys generate --purpose sign`"


@dataclass
class KeyringDocument:
    """The parsed keyring file, checked only for integrity (no passphrase needed)."""

    kdf: dict[str, Any]
    verifier: dict[str, str]
    keys: list[KeyRecord]
    log_head: dict[str, Any]
    mac: str = ""

    def body(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "kdf": self.kdf,
            "verifier": self.verifier,
            "keys": [key.to_json() for key in self.keys],
            "log_head": self.log_head,
        }


@dataclass
class Keyring:
    """The keyring of a workspace (``Keyring(workspace)``)."""

    workspace: Workspace
    _document: KeyringDocument | None = field(default=None, repr=False)

    @property
    def directory(self) -> Path:
        return self.workspace.keyring_dir

    @property
    def path(self) -> Path:
        return self.directory / KEYRING_FILE

    @property
    def log_path(self) -> Path:
        return self.directory / keylog.LOG_FILE

    @property
    def exists(self) -> bool:
        return self.path.exists()

    def document(self) -> KeyringDocument:
        """The keyring file, its checksum checked (exit 1 when edited)."""
        if self._document is None:
            self._document = self._read()
        return self._document

    def _read(self) -> KeyringDocument:
        if not os.path.lexists(self.path):
            raise NotFoundError(
                f"no keyring in {self.directory} (create one with 'nodus keys generate')"
            )
        raw = read_bounded(self.path, MAX_KEYRING_BYTES, "the keyring")
        try:
            data = loads_bounded(raw)
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError("not a nodus keyring")
            if canonical_json(data) + b"\n" != raw:
                raise ValueError("not in canonical form")
            checksum = data.pop("sha256")
            if not hmac.compare_digest(checksum, hashlib.sha256(canonical_json(data)).hexdigest()):
                raise ValueError("checksum mismatch")
            document = KeyringDocument(
                kdf=data["kdf"],
                verifier=data["verifier"],
                keys=[KeyRecord.from_json(item) for item in data["keys"]],
                log_head=data["log_head"],
                mac=data["mac"],
            )
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise KeyringTampered(
                f"{self.path}: keyring file is damaged or edited ({exc})"
            ) from None
        return document

    def records(self) -> list[KeyRecord]:
        return list(self.document().keys) if self.exists else []

    def find(self, key_id: str) -> KeyRecord:
        for record in self.records():
            if record.key_id == key_id:
                return record
        raise NotFoundError(f"no key {key_id!r} in the keyring")

    def public_signing_keys(
        self, trust_root: str | None = None, now: dt.datetime | None = None
    ) -> list[signing.SigningPublicKey]:
        """The signing keys this workspace trusts: those the signed key log vouches for,
        back to its first key (``trust_root`` pins that key's fingerprint, or a prefix of
        at least 16 hex digits). A key listed in the keyring but not vouched for by the
        log is left out, so its signatures are "not trusted" (exit 3). States and dates
        come from the log too, never from the unkeyed keyring file."""
        if not self.exists:
            if trust_root is not None:
                raise CannotVerify(f"no keyring in {self.directory} to check --trust-root against")
            return []
        return [
            record.signing_public_key()
            for record in self.vouched_records(trust_root, now)
            if record.purpose == SIGN
        ]

    def vouched_records(
        self, trust_root: str | None = None, now: dt.datetime | None = None
    ) -> list[KeyRecord]:
        """The keyring's keys that the key log vouches for, with the log's states and dates;
        what every command that does not unlock the keyring may rely on."""
        report = self.log_report(now)
        if trust_root is not None:
            check_pinned_root(report, trust_root)
        vouched = []
        for record in self.records():
            key = report.keys.get(record.key_id)
            if key is None or not key.vouched:
                continue
            if (key.purpose, key.public) != (record.purpose, record.public):
                continue
            vouched.append(
                dataclasses.replace(
                    record,
                    state=key.state,
                    created=key.created,
                    not_after=key.not_after,
                    revoked_at=key.revoked_at,
                    destroyed_at=key.destroyed_at,
                )
            )
        return vouched

    def log_report(self, now: dt.datetime | None = None) -> keylog.LogReport:
        """The key log replayed against this keyring (``nodus keys log --verify``)."""
        document = self.document()
        return keylog.verify_log(self.log_path, document.log_head, document.keys, now or utc_now())

    def root_fingerprint(self) -> str | None:
        """SHA-256 of the key log's first key: what ``--trust-root`` pins."""
        if not self.exists:
            return None
        root = self.log_report().root
        return root.fingerprint if root is not None else None

    def check_can_sign(self, now: dt.datetime | None = None) -> None:
        """Before asking for the passphrase: is there a signing key to unlock at all?"""
        records = self.records()
        if not any(r.purpose == SIGN and r.state in (PRIMARY, ACTIVE) for r in records):
            raise KeyUnusable(NO_SIGNING_KEY)
        select_creating_key(records, SIGN, None, now or utc_now())

    def unlock(
        self,
        passphrase: bytes,
        *,
        create: bool = False,
        on_progress: Callable[[str], None] | None = None,
    ) -> UnlockedKeyring:
        """Derive the keyring key once (scrypt); ``create`` makes a new, empty keyring."""
        if not self.exists:
            if not create:
                self.document()  # raises NotFoundError with a hint
            if keylog.read_entries(self.log_path):
                raise UsageError(
                    f"{self.log_path} exists but {self.path} does not: move the old key log "
                    "away before making a new keyring"
                )
            return UnlockedKeyring.create(self, passphrase)
        document = self.document()
        try:
            kdf = document.kdf
            if (
                kdf["name"] != "scrypt"
                or not SCRYPT_MIN_LOG2_N <= kdf["log2_n"] <= SCRYPT_MAX_LOG2_N
            ):
                raise KeyringTampered(f"{self.path}: unsupported KDF parameters")
            if on_progress:
                on_progress("unlocking the keyring")
            master = derive_master(
                passphrase, unb64(kdf["salt"]), kdf["log2_n"], kdf["r"], kdf["p"]
            )
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise KeyringTampered(f"{self.path}: damaged KDF parameters") from None
        unlocked = UnlockedKeyring(self, document, master)
        unlocked.check()
        return unlocked

    def primary_signing_key(self, passphrase: bytes) -> signing.SigningKey:
        """The workspace's primary signing key (refused when expired)."""
        return self.unlock(passphrase).signing_key()


def trusted_signing_keys(
    workspace: Workspace, trust_files: list[Path], trust_root: str | None
) -> list[signing.SigningPublicKey]:
    """The keys a signature may be made by: those of ``--trust`` files, else the
    signing keys the workspace's key log vouches for (``--trust-root`` pins its root)."""
    if trust_files:
        if trust_root is not None:
            raise UsageError("--trust-root pins the workspace keyring; --trust names keys itself")
        return [key for path in trust_files for key in signing.load_public_keys(path)]
    return Keyring(workspace).public_signing_keys(trust_root)


def check_pinned_root(report: keylog.LogReport, pinned: str) -> None:
    """The log's root key must be the pinned one (exit 3 otherwise: nothing to trust)."""
    wanted = pinned.strip().lower().removeprefix("sha256:")
    if len(wanted) < MIN_PINNED_DIGITS or any(c not in "0123456789abcdef" for c in wanted):
        raise UsageError(
            f"--trust-root takes a key fingerprint (at least {MIN_PINNED_DIGITS} hex digits; "
            "'nodus info' shows it)"
        )
    root = report.root
    if root is None:
        raise CannotVerify("the key log has no verifiable first key to compare with --trust-root")
    if not root.fingerprint.startswith(wanted):
        raise CannotVerify(
            f"the keyring's root key {root.fingerprint[:16]} is not the pinned {wanted[:16]}: "
            "this keyring was replaced or is another workspace's"
        )


def select_creating_key(
    records: list[KeyRecord], purpose: str, key_id: str | None, now: dt.datetime
) -> KeyRecord:
    """The key that may sign or encrypt now: the primary, or an active key named by id."""
    if key_id is None:
        record = next((r for r in records if r.purpose == purpose and r.state == PRIMARY), None)
        if record is None:
            raise KeyUnusable(
                f"no primary {purpose} key (create one with "
                f"'nodus keys generate --purpose {purpose}' or 'nodus keys rotate')"
            )
    else:
        record = next((r for r in records if r.key_id == key_id), None)
        if record is None:
            raise NotFoundError(f"no key {key_id!r} in the keyring")
        if record.purpose != purpose:
            raise KeyUnusable(f"key {key_id} is a {record.purpose} key, not a {purpose} key")
    if record.state not in (PRIMARY, ACTIVE):
        verb = "verify" if purpose == SIGN else "decrypt"
        raise KeyUnusable(f"key {record.key_id} is {record.state}: it can only {verb}")
    if record.expired(now):
        raise KeyUnusable(
            f"key {record.key_id} expired at {iso(record.not_after)}: it can no longer "
            f"{purpose}; rotate to a new key"
        )
    return record


class UnlockedKeyring:
    """A keyring whose passphrase was checked: can read private keys and change state."""

    def __init__(self, keyring: Keyring, document: KeyringDocument, master: bytes) -> None:
        self.keyring = keyring
        self.document = document
        self._seal_key = subkey(master, b"seal")
        self._mac_key = subkey(master, b"mac")
        self._pending_log: list[bytes] = []
        self._committed_head = dict(document.log_head)

    @classmethod
    def create(cls, keyring: Keyring, passphrase: bytes) -> UnlockedKeyring:
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        salt = secrets.token_bytes(16)
        log2_n, master = calibrate_log2_n(passphrase, salt)
        kdf = {"name": "scrypt", "salt": b64(salt), "log2_n": log2_n, "r": SCRYPT_R, "p": SCRYPT_P}
        nonce = secrets.token_bytes(12)
        seal_key = subkey(master, b"seal")
        token = ChaCha20Poly1305(seal_key).encrypt(nonce, VERIFIER_PLAINTEXT, b"verifier")
        verifier = {"nonce": b64(nonce), "ciphertext": b64(token)}
        document = KeyringDocument(kdf, verifier, [], keylog.empty_head())
        return cls(keyring, document, master)

    # --- integrity ----------------------------------------------------------------

    def check(self) -> None:
        """Wrong passphrase (exit 2) or an edited keyring (exit 1)."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        verifier = self.document.verifier
        try:
            plain = ChaCha20Poly1305(self._seal_key).decrypt(
                unb64(verifier["nonce"]), unb64(verifier["ciphertext"]), b"verifier"
            )
        except (InvalidTag, KeyError, ValueError, binascii.Error):
            raise WrongPassphrase("wrong passphrase for the keyring") from None
        if plain != VERIFIER_PLAINTEXT:
            raise WrongPassphrase("wrong passphrase for the keyring")
        if not hmac.compare_digest(self._mac(), self.document.mac):
            raise KeyringTampered(
                f"{self.keyring.path}: keyring MAC mismatch (the file was edited)"
            )

    def _mac(self) -> str:
        return hmac.new(self._mac_key, canonical_json(self.document.body()), "sha256").hexdigest()

    def save(self) -> None:
        """Append new key-log entries, then replace the keyring atomically (mode 0600).

        The keyring is the commit point: a crash between the two leaves log entries past
        its recorded head, which ``nodus keys log --verify`` reports and the next save
        drops (they never took effect)."""
        self.document.mac = self._mac()
        data = self.document.body()
        data["mac"] = self.document.mac
        data["sha256"] = hashlib.sha256(canonical_json(data)).hexdigest()
        self.keyring.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self._pending_log:
            keylog.append_lines(self.keyring.log_path, self._pending_log, self._committed_head)
            self._pending_log = []
        atomic_write(self.keyring.path, canonical_json(data) + b"\n", mode=0o600)
        self.keyring._document = self.document
        self._committed_head = dict(self.document.log_head)

    def reload(self) -> None:
        """Re-read the keyring another process may have changed, with no new key derivation."""
        self.keyring._document = None
        self.document = self.keyring.document()
        self._pending_log = []
        self._committed_head = dict(self.document.log_head)
        self.check()

    # --- private parts ------------------------------------------------------------

    def _seal(self, record: KeyRecord, secret: bytes) -> dict[str, str]:
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        nonce = secrets.token_bytes(12)
        sealed = ChaCha20Poly1305(self._seal_key).encrypt(nonce, secret, record.seal_aad())
        return {"nonce": b64(nonce), "ciphertext": b64(sealed)}

    def private_bytes(self, record: KeyRecord) -> bytes:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        if record.sealed is None:
            raise KeyUnusable(f"key {record.key_id} has no private part ({record.state})")
        try:
            return ChaCha20Poly1305(self._seal_key).decrypt(
                unb64(record.sealed["nonce"]), unb64(record.sealed["ciphertext"]), record.seal_aad()
            )
        except (InvalidTag, KeyError, ValueError, binascii.Error):
            raise KeyringTampered(
                f"{self.keyring.path}: the sealed private key {record.key_id} was edited"
            ) from None

    def signing_key(
        self, key_id: str | None = None, now: dt.datetime | None = None
    ) -> signing.SigningKey:
        """A key that may sign now: the primary by default, or an active key by id."""
        now = now or utc_now()
        record = self._creating_key(SIGN, key_id, now)
        key = signing.SigningKey.from_private_bytes(record.key_id, self.private_bytes(record))
        key.created, key.not_after = record.created, record.not_after
        if key.public().to_bytes() != record.public:
            raise KeyringTampered(
                f"{self.keyring.path}: key {record.key_id} does not match its seed"
            )
        return key

    def encryption_recipient(
        self, key_id: str | None = None, now: dt.datetime | None = None
    ) -> KeyRecord:
        """The key new files are sealed to: the primary, or an active key by id."""
        return self._creating_key(ENCRYPT, key_id, now or utc_now())

    def decryption_seeds(self) -> list[tuple[KeyRecord, bytes]]:
        """Every encryption key that can still decrypt (any state but destroyed)."""
        seeds = []
        for record in self.document.keys:
            if record.purpose == ENCRYPT and record.sealed is not None:
                seeds.append((record, self.private_bytes(record)))
        return seeds

    def _creating_key(self, purpose: str, key_id: str | None, now: dt.datetime) -> KeyRecord:
        return select_creating_key(self.document.keys, purpose, key_id, now)

    def find(self, key_id: str) -> KeyRecord:
        for record in self.document.keys:
            if record.key_id == key_id:
                return record
        raise NotFoundError(f"no key {key_id!r} in the keyring")

    # --- changes ------------------------------------------------------------------

    def generate(
        self, purpose: str, *, not_after: dt.datetime | None = None, now: dt.datetime | None = None
    ) -> KeyRecord:
        """A new key: primary if its purpose has none, else active. Logged."""
        now = now or utc_now()
        state = (
            ACTIVE
            if any(r.purpose == purpose and r.state == PRIMARY for r in self.document.keys)
            else PRIMARY
        )
        record = self._new_key(purpose, state, now, not_after)
        self._log("generate", record, now)
        return record

    def rotate(
        self, purpose: str, *, not_after: dt.datetime | None = None, now: dt.datetime | None = None
    ) -> tuple[KeyRecord | None, KeyRecord]:
        """A new primary; the old primary keeps decrypting and verifying only. Logged."""
        now = now or utc_now()
        old = next(
            (r for r in self.document.keys if r.purpose == purpose and r.state == PRIMARY), None
        )
        new = self._new_key(purpose, PRIMARY, now, not_after)
        self._log("rotate", new, now, retired=old.key_id if old else None)  # the old key signs
        if old is not None:
            old.state = RETIRED
        return old, new

    def import_public(
        self,
        purpose: str,
        key_id: str,
        public: bytes,
        *,
        created: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        revoked_at: dt.datetime | None = None,
        now: dt.datetime | None = None,
    ) -> KeyRecord | None:
        """Add someone's public key (to verify with, or seal to by id). Logged.

        A key revoked by its owner stays revoked from that time (``revoked_at``), also when
        the keyring already has it. None when there is nothing to do."""
        now = now or utc_now()
        for record in self.document.keys:
            if record.public == public:
                return self._import_revocation(record, revoked_at, now)
            if record.key_id == key_id:
                raise UsageError(f"another key with id {key_id} is already in the keyring")
        if purpose == SIGN:
            signing.SigningPublicKey.from_bytes(key_id, public)
        else:
            xwing.public_key(public)
        record = KeyRecord(key_id, purpose, ACTIVE, created or now, public, not_after=not_after)
        if revoked_at is not None:
            record.state, record.revoked_at = REVOKED, revoked_at
        self.document.keys.append(record)
        self._log("import", record, now, revoked_at=iso(revoked_at))
        return record

    def _import_revocation(
        self, record: KeyRecord, revoked_at: dt.datetime | None, now: dt.datetime
    ) -> KeyRecord | None:
        """A known key's revocation, learnt from its owner's export: the earlier time holds."""
        known = record.revoked_at
        if revoked_at is None or (known is not None and known <= revoked_at):
            return None
        if record.state == DESTROYED:
            raise UsageError(f"key {record.key_id} is destroyed: its revocation is not imported")
        self._log("revoke", record, now, revoked_at=iso(revoked_at))
        record.state, record.revoked_at = REVOKED, revoked_at
        return record

    def import_identity(self, seed: bytes, *, now: dt.datetime | None = None) -> KeyRecord | None:
        """Add an age ``AGE-SECRET-KEY-PQ-1`` identity as an active encryption key, its seed
        sealed like every private key. Logged. None when the keyring already holds it."""
        now = now or utc_now()
        public = xwing.public_bytes(seed)
        for record in self.document.keys:
            if record.public == public:
                if record.sealed is not None:
                    return None
                if record.state == DESTROYED:
                    raise UsageError(f"key {record.key_id} was destroyed: it is not brought back")
                record.sealed = self._seal(record, seed)  # its public part was imported before
                return record
        record = KeyRecord(signing.new_key_id(), ENCRYPT, ACTIVE, now, public)
        record.sealed = self._seal(record, seed)
        self.document.keys.append(record)
        self._log("import", record, now)
        return record

    def revoke(self, key_id: str, *, now: dt.datetime | None = None) -> KeyRecord:
        """Nothing signed after now verifies with this key; it no longer encrypts. Logged."""
        now = now or utc_now()
        record = self.find(key_id)
        if record.state in (REVOKED, DESTROYED):
            raise UsageError(f"key {key_id} is already {record.state}")
        self._log("revoke", record, now)  # signed while the key may still be in force
        record.state, record.revoked_at = REVOKED, now
        return record

    def destroy(self, key_id: str, *, now: dt.datetime | None = None) -> KeyRecord:
        """Erase the private seed for good; the public part stays for verification. Logged."""
        now = now or utc_now()
        record = self.find(key_id)
        if record.state == DESTROYED:
            raise UsageError(f"key {key_id} is already destroyed")
        self._log("destroy", record, now)
        record.state, record.destroyed_at, record.sealed = DESTROYED, now, None
        return record

    def _new_key(
        self, purpose: str, state: str, now: dt.datetime, not_after: dt.datetime | None
    ) -> KeyRecord:
        if not_after is not None and not_after <= now:
            raise UsageError("--not-after must be in the future")
        if purpose == SIGN:
            key = signing.SigningKey.generate()
            key_id, public, secret = key.key_id, key.public().to_bytes(), key.private_bytes()
        elif purpose == ENCRYPT:
            secret = os.urandom(xwing.SEED_SIZE)
            key_id, public = signing.new_key_id(), xwing.public_bytes(secret)
        else:
            raise UsageError(f"unknown purpose {purpose!r} (sign or encrypt)")
        record = KeyRecord(key_id, purpose, state, now, public, not_after=not_after)
        record.sealed = self._seal(record, secret)
        self.document.keys.append(record)
        return record

    def _log_signer(self, event: str, record: KeyRecord, now: dt.datetime) -> signing.SigningKey:
        """The signing key in force signs the log; a new sign key signs itself only when
        no other is in force (the first one, or after the old one expired or was revoked)."""
        introduces = event in keylog.INTRODUCING
        for candidate in self.document.keys:
            in_force = candidate.state == PRIMARY and not candidate.expired(now)
            if candidate.purpose == SIGN and in_force and not (introduces and candidate is record):
                return self.signing_key(candidate.key_id, now)
        if event in ("generate", "rotate") and record.purpose == SIGN:
            return signing.SigningKey.from_private_bytes(record.key_id, self.private_bytes(record))
        raise KeyUnusable(
            "no signing key in force to sign the key log "
            "(run 'nodus keys generate --purpose sign' or 'nodus keys rotate --purpose sign')"
        )

    def _log(self, event: str, record: KeyRecord, now: dt.datetime, **extra: Any) -> None:
        signer = self._log_signer(event, record, now)
        line, head = keylog.make_entry(self.document.log_head, event, record, signer, now, **extra)
        self._pending_log.append(line)
        self.document.log_head = head
