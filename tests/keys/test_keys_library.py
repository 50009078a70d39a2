"""The keys library without the CLI: importing a key file, an identity export, and
which signing keys a signature may be made by (issue 21: this logic left cli/keys.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodus_cli.errors import InputError, UsageError
from nodus_cli.keys import age, signing
from nodus_cli.keys.export import (
    add_imported,
    exportable,
    identity_text,
    public_key_text,
    read_import,
)
from nodus_cli.keys.keyring import Keyring, UnlockedKeyring, trusted_signing_keys
from nodus_cli.keys.record import ENCRYPT, SIGN, utc_now
from nodus_cli.workspace import Workspace

PASSPHRASE = b"library-test-passphrase"


@pytest.fixture(scope="module")
def unlocked(tmp_path_factory: pytest.TempPathFactory) -> UnlockedKeyring:
    """A keyring with a signing and an encryption key (scrypt once per module)."""
    root = tmp_path_factory.mktemp("keys-library")
    keyring = Keyring(Workspace(root, "test").ensure())
    unlocked = keyring.unlock(PASSPHRASE, create=True)
    unlocked.generate(SIGN)
    unlocked.generate(ENCRYPT)
    unlocked.save()
    return unlocked


def test_an_export_read_back_finds_every_key(unlocked: UnlockedKeyring) -> None:
    records = exportable(unlocked.keyring, None, None, utc_now())
    found = read_import(public_key_text(records), "export.txt")
    assert [k.key_id for k in found.sign_keys] == [r.key_id for r in records if r.purpose == SIGN]
    assert [r.public for r in found.recipients] == [
        r.public for r in records if r.purpose == ENCRYPT
    ]
    assert found.seeds == []


def test_a_file_without_keys_is_refused_by_name() -> None:
    with pytest.raises(InputError, match=r"notes\.txt: no public key or age identity"):
        read_import("just words\n", "notes.txt")


def test_importing_keys_the_keyring_holds_adds_nothing(unlocked: UnlockedKeyring) -> None:
    records = exportable(unlocked.keyring, None, None, utc_now())
    found = read_import(public_key_text(records), "export.txt")
    assert add_imported(unlocked, found) == ([], len(records))


def test_an_identity_export_opens_what_was_sealed_to_the_key(
    unlocked: UnlockedKeyring, tmp_path: Path
) -> None:
    import io

    record = unlocked.encryption_recipient()
    exported, text = identity_text(unlocked, record.key_id)
    assert exported is record and text.startswith(f"# nodus encrypt key {record.key_id}\n")
    sealed = io.BytesIO()
    age.seal(io.BytesIO(b"secret"), sealed, [age.HybridRecipient(record.public)])
    opened = io.BytesIO()
    age.open_file(io.BytesIO(sealed.getvalue()), opened, age.parse_identities(text))
    assert opened.getvalue() == b"secret"


def test_a_signing_key_has_no_identity(unlocked: UnlockedKeyring) -> None:
    key_id = unlocked.signing_key().key_id
    with pytest.raises(UsageError, match="not an encryption key"):
        identity_text(unlocked, key_id)


def test_trusted_keys_come_from_trust_files_or_the_key_log(
    unlocked: UnlockedKeyring, tmp_path: Path
) -> None:
    workspace = unlocked.keyring.workspace
    vouched = trusted_signing_keys(workspace, [], None)
    assert [k.key_id for k in vouched] == [unlocked.signing_key().key_id]
    other = signing.SigningKey.generate()
    trust_file = tmp_path / "other.pub"
    trust_file.write_bytes(signing.dump_public_keys([other.public()]))
    assert [k.key_id for k in trusted_signing_keys(workspace, [trust_file], None)] == [other.key_id]
    with pytest.raises(UsageError, match="--trust-root pins the workspace keyring"):
        trusted_signing_keys(workspace, [trust_file], "0" * 16)
