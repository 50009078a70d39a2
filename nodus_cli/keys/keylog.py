"""The key log: every generate, rotate, import, revoke and destroy, hash-chained and signed.

``keyring/log.jsonl`` holds one canonical JSON object per line. Each entry names the
SHA-256 of the previous line (``prev``), carries the key's public part, and is signed
(composite ML-DSA-65 + Ed25519, context ``nodus-keylog/v1``) by the signing key in
force; a new signing key signs its own entry only when no other is in force. The
keyring records the head (entry count and hash of the last line), so truncation is
detected too. ``verify_log`` replays the log and compares it with the keyring.

Trust comes from the log, not from the keyring file: the keyring's checksum is
unkeyed, so anyone who can write it can list a key there. A key is *vouched for*
when it is the log's first key (the root, whose fingerprint ``nodus info`` shows
so it can be pinned) or was introduced by an entry signed by a vouched key.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodus_cli.errors import CheckFailed, InputError
from nodus_cli.fsutil import fsync_dir, loads_bounded, read_bounded
from nodus_cli.keys import signing
from nodus_cli.keys.record import KeyRecord, canonical_json

LOG_FILE = "log.jsonl"
CONTEXT = b"nodus-keylog/v1"
GENESIS = "0" * 64
EVENTS = ("generate", "rotate", "import", "revoke", "destroy")
INTRODUCING = ("generate", "rotate", "import")
COMPARED_FIELDS = (
    "purpose",
    "public",
    "state",
    "created",
    "not_after",
    "revoked_at",
    "destroyed_at",
)
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
MAX_LOG_BYTES = 64 << 20  # about 10,000 entries of 6 KiB


def empty_head() -> dict[str, Any]:
    return {"seq": 0, "sha256": GENESIS}


def make_entry(
    head: dict[str, Any],
    event: str,
    record: KeyRecord,
    signer: signing.SigningKey,
    now: dt.datetime,
    **extra: Any,
) -> tuple[bytes, dict[str, Any]]:
    """The signed log line for ``event`` on ``record`` and the new head."""
    entry: dict[str, Any] = {
        "seq": head["seq"] + 1,
        "time": now.isoformat(),
        "event": event,
        "key": record.key_id,
        "purpose": record.purpose,
        "public": base64.b64encode(record.public).decode(),
        "created": record.created.isoformat(),
        "not_after": record.not_after.isoformat() if record.not_after else None,
        "prev": head["sha256"],
        "signer": signer.key_id,
        **{name: value for name, value in extra.items() if value is not None},
    }
    entry["signature"] = base64.b64encode(signer.sign(canonical_json(entry), CONTEXT)).decode()
    line = canonical_json(entry)
    return line, {"seq": entry["seq"], "sha256": hashlib.sha256(line).hexdigest()}


def append_lines(path: Path, lines: list[bytes], committed: dict[str, Any]) -> None:
    """Append entries durably after the ``committed`` head (the keyring's; mode 0600).

    Entries past the committed head were written by a command that died before it
    saved the keyring: they never took effect and are dropped first. A log shorter
    than the head, or one that differs from it, was tampered with and is refused.
    """
    existing = read_entries(path)
    seq = committed["seq"]
    last = hashlib.sha256(existing[seq - 1]).hexdigest() if 0 < seq <= len(existing) else GENESIS
    if len(existing) < seq or last != committed["sha256"]:
        from nodus_cli.keys.errors import KeyringTampered

        raise KeyringTampered(
            f"{path}: the key log does not match the keyring (run 'nodus keys log --verify')"
        )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        keep = sum(len(line) + 1 for line in existing[:seq])
        os.ftruncate(fd, keep)
        os.lseek(fd, keep, os.SEEK_SET)
        os.write(fd, b"".join(line + b"\n" for line in lines))
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)


@dataclass
class ReplayedKey:
    key_id: str
    purpose: str
    public: bytes
    state: str
    created: dt.datetime
    not_after: dt.datetime | None
    revoked_at: dt.datetime | None = None
    destroyed_at: dt.datetime | None = None
    vouched: bool = False

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.public).hexdigest()


@dataclass
class LogReport:
    """The replay: entries read, problems found, and the keys of the entries that verified."""

    entries: list[dict[str, Any]]
    problems: list[str]
    keys: dict[str, ReplayedKey] = field(default_factory=dict)
    root: ReplayedKey | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def read_entries(path: Path) -> list[bytes]:
    if not os.path.lexists(path):
        return []
    return read_bounded(path, MAX_LOG_BYTES, "the key log").splitlines()


def parsed_entries(path: Path) -> list[dict[str, Any]]:
    """The log's entries as written, unchecked (``verify_log`` checks them)."""
    entries = []
    for number, line in enumerate(read_entries(path), 1):
        try:
            entries.append(json.loads(line))
        except ValueError:
            raise CheckFailed(
                f"key log entry {number} is unreadable (run 'nodus keys log --verify')"
            ) from None
    return entries


def verify_log(
    path: Path,
    head: dict[str, Any],
    records: list[KeyRecord],
    now: dt.datetime,
) -> LogReport:
    """Replay the log: chain, order, times, signatures, head, and agreement with the keyring."""
    lines = read_entries(path)
    entries: list[dict[str, Any]] = []
    problems: list[str] = []
    keys: dict[str, ReplayedKey] = {}
    prev_hash, prev_time = GENESIS, None
    for number, line in enumerate(lines, 1):
        where = f"entry {number}"
        try:
            entry = loads_bounded(line)
            if canonical_json(entry) != line:
                raise ValueError("not in canonical form")
            time = dt.datetime.fromisoformat(entry["time"])
            if time.tzinfo is None:
                raise ValueError("time without offset")
        except (ValueError, KeyError, TypeError) as exc:
            if number > head.get("seq", 0):
                problems.append(
                    f"{where}: unreadable, past the keyring's {head.get('seq')} entries "
                    "(a line cut short by a command that was killed; the next change drops it)"
                )
            else:
                problems.append(f"{where}: unreadable ({exc})")
            break
        entries.append(entry)
        try:
            problem, vouched = _check_entry(entry, number, time, prev_hash, prev_time, keys, now)
            if problem is None:
                _apply(entry, time, keys, vouched)
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            problem = f"malformed ({exc})"
        if problem:
            problems.append(f"{where}: {problem}")
            break
        prev_hash, prev_time = hashlib.sha256(line).hexdigest(), time
    if not problems:
        if len(lines) != head.get("seq") or prev_hash != head.get("sha256"):
            problems.append(
                f"the log has {len(lines)} entries but the keyring records {head.get('seq')} "
                "(entries were deleted, added or replaced; entries past the keyring's are "
                "also left by a command that was killed, and the next change drops them)"
            )
        else:
            problems.extend(_compare(keys, records))
    root = next(iter(keys.values()), None)
    return LogReport(entries, problems, keys, root)


def _check_entry(
    entry: dict[str, Any],
    seq: int,
    time: dt.datetime,
    prev_hash: str,
    prev_time: dt.datetime | None,
    keys: dict[str, ReplayedKey],
    now: dt.datetime,
) -> tuple[str | None, bool]:
    """The entry's problem (None when it holds) and whether its signer is vouched for."""
    if entry.get("seq") != seq:
        return f"sequence number {entry.get('seq')} where {seq} was expected (reordered)", False
    if entry.get("prev") != prev_hash:
        return "does not chain to the previous entry (edited, deleted or reordered)", False
    if prev_time is not None and time < prev_time:
        return "dated before the previous entry (back-dated)", False
    if time > now + FUTURE_TOLERANCE:
        return "dated in the future", False
    event, key_id = entry.get("event"), entry.get("key")
    if event not in EVENTS:
        return f"unknown event {event!r}", False
    introduces = event in INTRODUCING
    if introduces == (key_id in keys):
        return f"{event} of {'a known' if introduces else 'an unknown'} key {key_id}", False
    signer_id = entry.get("signer")
    in_force = [
        k
        for k in keys.values()
        if k.purpose == "sign" and k.state == "primary" and not _expired(k, time)
    ]
    signer = next((k for k in in_force if k.key_id == signer_id), None)
    if signer is not None:
        public = signer.public
        entry_vouched = signer.vouched
    elif (
        event in ("generate", "rotate")
        and signer_id == key_id
        and entry.get("purpose") == "sign"
        and not in_force
    ):
        public = _b64(entry.get("public"))
        entry_vouched = seq == 1  # only the root may introduce itself
    else:
        return f"signed by {signer_id}, which is not the signing key in force", False
    try:
        verifier = signing.SigningPublicKey.from_bytes(str(signer_id), public)
        signature = _b64(entry.get("signature"))
    except (InputError, ValueError, binascii.Error):
        return "unreadable signer key or signature", False
    unsigned = {name: value for name, value in entry.items() if name != "signature"}
    if not verifier.verify(canonical_json(unsigned), signature, CONTEXT):
        return "signature does not verify (the entry was edited)", False
    return None, entry_vouched


def _b64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ValueError("not base64")
    return base64.b64decode(value, validate=True)


def _expired(key: ReplayedKey, when: dt.datetime) -> bool:
    return key.not_after is not None and when >= key.not_after


def _apply(
    entry: dict[str, Any], time: dt.datetime, keys: dict[str, ReplayedKey], vouched: bool
) -> None:
    event, key_id, purpose = entry["event"], entry["key"], entry["purpose"]
    if event in INTRODUCING:
        has_primary = any(k.purpose == purpose and k.state == "primary" for k in keys.values())
        first_generated = event == "generate" and not has_primary
        state = "primary" if event == "rotate" or first_generated else "active"
        not_after = dt.datetime.fromisoformat(entry["not_after"]) if entry["not_after"] else None
        retired = entry.get("retired")
        if retired in keys:
            keys[retired].state = "retired"
        created = dt.datetime.fromisoformat(entry["created"])
        keys[key_id] = ReplayedKey(
            key_id,
            purpose,
            _b64(entry["public"]),
            state,
            created,
            not_after,
            vouched=vouched,
        )
        if entry.get("revoked_at"):  # an imported key its owner had revoked
            keys[key_id].state = "revoked"
            keys[key_id].revoked_at = dt.datetime.fromisoformat(entry["revoked_at"])
    elif event == "revoke":  # an imported revocation keeps its owner's time
        revoked_at = entry.get("revoked_at")
        keys[key_id].state = "revoked"
        keys[key_id].revoked_at = dt.datetime.fromisoformat(revoked_at) if revoked_at else time
    elif event == "destroy":
        keys[key_id].state, keys[key_id].destroyed_at = "destroyed", time


def _compare(keys: dict[str, ReplayedKey], records: list[KeyRecord]) -> list[str]:
    problems = []
    by_id = {record.key_id: record for record in records}
    if set(by_id) != set(keys):
        problems.append("the keyring and the key log list different keys")
    for key_id, replayed in keys.items():
        record = by_id.get(key_id)
        if record is None:
            continue
        differing = [
            name for name in COMPARED_FIELDS if getattr(record, name) != getattr(replayed, name)
        ]
        if differing:
            problems.append(
                f"key {key_id}: the keyring disagrees with the key log on {', '.join(differing)}"
            )
    return problems
