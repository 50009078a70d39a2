"""What ``nodus keys export`` writes, what ``nodus keys import`` reads, and where
``nodus keys seal`` puts its outputs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from nodus_cli.errors import InputError, UsageError
from nodus_cli.keys import age, signing
from nodus_cli.keys.keyring import Keyring, UnlockedKeyring
from nodus_cli.keys.record import ENCRYPT, SIGN, KeyRecord


def exportable(
    keyring: Keyring,
    key_id: str | None,
    purpose: str | None,
    now: dt.datetime,
    *,
    recipients_only: bool = False,
) -> list[KeyRecord]:
    """The keys an export holds: signing keys in every state (they verify old
    signatures), encryption keys only while they may encrypt (primary or active, not
    expired); only encryption keys for an age recipients file."""
    if key_id:
        records = [keyring.find(key_id)]
        if records[0].purpose != SIGN and not records[0].can_create(now):
            raise UsageError(f"key {key_id} can no longer encrypt: export the primary instead")
    else:
        records = [
            r
            for r in keyring.records()
            if purpose in (None, r.purpose) and (r.purpose == SIGN or r.can_create(now))
        ]
    if recipients_only:
        records = [r for r in records if r.purpose != SIGN]
    if not records:
        raise UsageError("no key to export")
    return records


def public_key_text(records: list[KeyRecord]) -> str:
    """``nodus-sign-v1`` lines, then each recipient under a comment naming its key: what
    ``--trust``, ``-r`` and ``nodus keys import`` read (recipients alone: an age
    recipients file)."""
    lines = []
    sign_keys = [r.signing_public_key() for r in records if r.purpose == SIGN]
    if sign_keys:
        lines.append(signing.dump_public_keys(sign_keys).decode().rstrip("\n"))
    for record in records:
        if record.purpose != SIGN:
            lines.append(
                f"# encrypt key {record.key_id} ({record.state}, created {record.created})"
            )
            lines.append(record.recipient() or "")
    return "\n".join(lines) + "\n"


def identity_text(unlocked: UnlockedKeyring, key_id: str) -> tuple[KeyRecord, str]:
    """The encryption key ``key_id`` and its age identity file: a secret."""
    record = unlocked.find(key_id)
    if record.purpose != ENCRYPT:
        raise UsageError(f"key {key_id} is not an encryption key")
    line = age.encode_identity(unlocked.private_bytes(record))
    return (
        record,
        f"# nodus encrypt key {record.key_id}\n# recipient: {record.recipient()}\n{line}\n",
    )


@dataclass
class ImportFile:
    """What a key file holds: signing keys, age recipients, age identities (seeds)."""

    sign_keys: list[signing.SigningPublicKey]
    recipients: list[age.HybridRecipient]
    seeds: list[bytes]


def read_import(text: str, source: str) -> ImportFile:
    """The keys of a file ``nodus keys export`` wrote, or of an age identity file."""
    found = ImportFile(
        signing.parse_public_keys(text, source),
        [
            age.parse_recipient(line.strip())
            for line in text.splitlines()
            if line.strip().startswith("age1")
        ],
        age.hybrid_identity_seeds(text, source),
    )
    if not found.sign_keys and not found.recipients and not found.seeds:
        raise InputError(f"{source}: no public key or age identity in the file")
    return found


def add_imported(unlocked: UnlockedKeyring, found: ImportFile) -> tuple[list[KeyRecord], int]:
    """Add the file's keys (identities first); returns those added and how many the
    keyring already held."""
    added = [unlocked.import_identity(seed) for seed in found.seeds]
    added += [
        unlocked.import_public(
            SIGN,
            k.key_id,
            k.to_bytes(),
            created=k.created,
            not_after=k.not_after,
            revoked_at=k.revoked_at,
        )
        for k in found.sign_keys
    ]
    added += [
        unlocked.import_public(ENCRYPT, signing.new_key_id(), recipient.public)
        for recipient in found.recipients
    ]
    imported = [record for record in added if record is not None]
    return imported, len(added) - len(imported)


def seal_targets(files: list[Path], output: Path | None) -> list[tuple[Path, Path | None]]:
    """Each input and its output (None: stdout). One FILE: ``output`` is the file
    (default FILE.age; stdout for '-'); several: ``output`` is a directory."""
    if len(files) == 1:
        source = files[0]
        if output is not None:
            return [(source, None if str(output) == "-" else output)]
        return [(source, None if str(source) == "-" else source.with_name(source.name + ".age"))]
    if any(str(f) == "-" for f in files):
        raise UsageError("'-' (stdin) can only be sealed on its own")
    if output is not None and not output.is_dir():
        raise UsageError("with several FILEs, -o must be an existing directory")
    return [
        (f, (output / (f.name + ".age")) if output else f.with_name(f.name + ".age")) for f in files
    ]
