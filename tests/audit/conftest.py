"""A signing key made once per session, copied into every test's workspace."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

PASSPHRASE = "audit-test-passphrase"


@pytest.fixture(scope="session")
def key_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace keyring holding one primary signing key, and its exported public key."""
    from nodus_cli.keys.keyring import Keyring
    from nodus_cli.keys.signing import dump_public_keys
    from nodus_cli.workspace import Workspace

    base = tmp_path_factory.mktemp("audit-keys")
    workspace = Workspace(base / "ws", "--home").ensure()
    unlocked = Keyring(workspace).unlock(PASSPHRASE.encode(), create=True)
    unlocked.generate("sign")
    unlocked.save()
    (base / "signing.pub").write_bytes(dump_public_keys(Keyring(workspace).public_signing_keys()))
    return base


@pytest.fixture
def signer(
    key_template: Path, nodus_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """This test's workspace gets the key; returns the public key file for --trust."""
    nodus_home.mkdir(parents=True, exist_ok=True)
    shutil.copytree(key_template / "ws" / "keyring", nodus_home / "keyring", dirs_exist_ok=True)
    monkeypatch.setenv("NODUS_PASSPHRASE", PASSPHRASE)
    public = tmp_path / "signing.pub"
    shutil.copy(key_template / "signing.pub", public)
    return public


@pytest.fixture(scope="session")
def signing_key(key_template: Path):  # type: ignore[no-untyped-def]
    from nodus_cli.keys.keyring import Keyring
    from nodus_cli.workspace import Workspace

    workspace = Workspace(key_template / "ws", "--home")
    return Keyring(workspace).primary_signing_key(PASSPHRASE.encode())


@pytest.fixture(scope="session")
def trusted(key_template: Path):  # type: ignore[no-untyped-def]
    from nodus_cli.keys.signing import load_public_keys

    return load_public_keys(key_template / "signing.pub")
