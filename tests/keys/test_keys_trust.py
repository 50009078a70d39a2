"""Trust comes from the signed key log, never from the unkeyed keyring file (issue 23.3).

Anyone who can write ``keyring.json`` can recompute its plain SHA-256; only the key
log's signatures, back to its first key, say which keys the workspace trusts.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from nodus_cli.keys import signing
from nodus_cli.keys.keyring import ENCRYPT, SIGN, Keyring, canonical_json
from nodus_cli.workspace import Workspace
from tests.conftest import Invoke

PASSPHRASE = "trust-test-passphrase"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace keyring with one primary signing key (scrypt once per module)."""
    root = tmp_path_factory.mktemp("trust-template")
    unlocked = Keyring(Workspace(root, "test").ensure()).unlock(PASSPHRASE.encode(), create=True)
    unlocked.generate(SIGN)
    unlocked.generate(ENCRYPT)
    unlocked.save()
    return root


@pytest.fixture
def ws(template: Path, nodus_home: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    nodus_home.mkdir(parents=True, exist_ok=True)
    shutil.copytree(template / "keyring", nodus_home / "keyring")
    monkeypatch.setenv("NODUS_PASSPHRASE", PASSPHRASE)
    return Workspace(nodus_home, "test")


def forge_key_into_keyring(ws: Workspace, attacker: signing.SigningKey) -> None:
    """The attack of issue 23.3: append a key, recompute the unkeyed checksum."""
    path = ws.keyring_dir / "keyring.json"
    data = json.loads(path.read_bytes())
    data.pop("sha256")
    data["keys"].append(
        {
            "id": attacker.key_id,
            "purpose": "sign",
            "algorithm": signing.ALGORITHM,
            "state": "active",
            "created": "2020-01-01T00:00:00+00:00",
            "not_after": None,
            "revoked_at": None,
            "destroyed_at": None,
            "public": __import__("base64").b64encode(attacker.public().to_bytes()).decode(),
            "sealed": None,
        }
    )
    data["sha256"] = hashlib.sha256(canonical_json(data)).hexdigest()
    path.write_bytes(canonical_json(data) + b"\n")


def test_a_key_appended_to_the_keyring_is_not_trusted_by_audit_verify(
    ws: Workspace, cli: Invoke, tmp_path: Path
) -> None:
    from nodus_cli.audit.seal import build_files

    attacker = signing.SigningKey.generate()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "payroll.csv").write_text("alice,1000000\n")
    forged = tmp_path / "forged.bundle"
    build_files([tmp_path / "data"], forged, root=tmp_path, key=attacker)
    forge_key_into_keyring(ws, attacker)
    assert Keyring(ws).document().keys[-1].key_id == attacker.key_id  # the checksum passes
    result = cli("audit", "verify", str(forged), "--root", str(tmp_path), "--json")
    assert result.exit_code == 3, result.stdout
    assert result.json()["signature"]["status"] == "untrusted"  # type: ignore[index]


def test_a_key_appended_to_the_keyring_gets_no_good_signature(
    ws: Workspace, cli: Invoke, tmp_path: Path
) -> None:
    from nodus_cli.keys.files import sign_stream

    attacker = signing.SigningKey.generate()
    document = tmp_path / "contract.txt"
    document.write_bytes(b"I owe the bearer everything\n")
    with document.open("rb") as source:
        signature = sign_stream(attacker, source)
    (tmp_path / "contract.txt.sig").write_text(signature.to_text())
    forge_key_into_keyring(ws, attacker)
    result = cli("keys", "verify", str(document), str(tmp_path / "contract.txt.sig"))
    assert result.exit_code == 3, result.stderr
    assert "Good signature" not in result.stderr + result.stdout


def test_a_swapped_encryption_key_is_not_sealed_to(
    ws: Workspace, cli: Invoke, tmp_path: Path
) -> None:
    """The sibling of the forged signing key: '-r @keyring' reads the keyring unlocked,
    so a replaced public key would have received the secrets."""
    import base64
    import os

    from nodus_cli.keys import xwing

    path = ws.keyring_dir / "keyring.json"
    data = json.loads(path.read_bytes())
    data.pop("sha256")
    record = next(k for k in data["keys"] if k["purpose"] == "encrypt")
    record["public"] = base64.b64encode(xwing.public_bytes(os.urandom(32))).decode()
    data["sha256"] = hashlib.sha256(canonical_json(data)).hexdigest()
    path.write_bytes(canonical_json(data) + b"\n")
    (tmp_path / "secret.txt").write_text("the launch codes\n")
    out = tmp_path / "secret.age"
    result = cli("keys", "seal", str(tmp_path / "secret.txt"), "-r", "@keyring", "-o", str(out))
    assert result.exit_code == 2, result.stderr
    assert not out.exists()


def test_the_workspace_s_own_key_is_still_trusted_and_states_come_from_the_log(
    ws: Workspace,
) -> None:
    keyring = Keyring(ws)
    trusted = keyring.public_signing_keys()
    assert [k.key_id for k in trusted] == [r.key_id for r in keyring.records() if r.purpose == SIGN]
    # a revocation hidden by editing the keyring file does not matter: dates come from the log
    assert trusted[0].created == keyring.records()[0].created


def test_info_shows_the_root_fingerprint_and_trust_root_pins_it(
    ws: Workspace, cli: Invoke, tmp_path: Path
) -> None:
    info = cli("info", "--json")
    assert info.exit_code == 0
    root = info.json()["workspace"]["trust_root"]  # type: ignore[index]
    record = Keyring(ws).records()[0]
    assert root == hashlib.sha256(record.public).hexdigest()
    assert f"trust root: {root}" in cli("info").stdout

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a").write_text("a\n")
    bundle = tmp_path / "a.bundle"
    assert cli("audit", "build", str(tmp_path / "data"), "-o", str(bundle)).exit_code == 0
    assert cli("audit", "verify", str(bundle), "--trust-root", root).exit_code == 0
    assert cli("audit", "verify", str(bundle), "--trust-root", root[:16]).exit_code == 0
    wrong = ("f" if root[0] != "f" else "e") + root[1:]
    pinned = cli("audit", "verify", str(bundle), "--trust-root", wrong)
    assert pinned.exit_code == 3 and "not the pinned" in pinned.stderr
    assert cli("audit", "chain", str(bundle), "--trust-root", wrong).exit_code == 3
    assert cli("audit", "verify", str(bundle), "--trust-root", "abc").exit_code == 2


def test_a_replaced_keyring_is_refused_when_the_root_is_pinned(
    ws: Workspace, cli: Invoke, tmp_path: Path
) -> None:
    """Replacing keyring and log wholesale makes a new root: the pin catches it."""
    pinned = Keyring(ws).root_fingerprint()
    assert pinned is not None
    document = tmp_path / "d.txt"
    document.write_text("x\n")
    assert cli("keys", "sign", str(document)).exit_code == 0
    sig = str(tmp_path / "d.txt.sig")
    assert cli("keys", "verify", str(document), sig, "--trust-root", pinned).exit_code == 0
    shutil.rmtree(ws.keyring_dir)
    other = Keyring(ws).unlock(PASSPHRASE.encode(), create=True)
    other.generate(SIGN)
    other.save()
    assert cli("keys", "verify", str(document), sig, "--trust-root", pinned).exit_code == 3


def test_a_key_that_introduces_itself_after_the_root_is_not_vouched_for(
    tmp_path: Path,
) -> None:
    """Only the log's first key may sign its own entry: once no key is in force (here the
    first one expired), anyone who can write the log could introduce a key that way."""
    import datetime as dt

    from nodus_cli.keys.keyring import utc_now

    start = utc_now() - dt.timedelta(days=2)
    workspace = Workspace(tmp_path / "expired", "test").ensure()
    unlocked = Keyring(workspace).unlock(PASSPHRASE.encode(), create=True)
    first = unlocked.generate(SIGN, not_after=start + dt.timedelta(hours=1), now=start)
    later = unlocked.generate(SIGN, now=start + dt.timedelta(hours=2))  # signs itself
    unlocked.save()
    keyring = Keyring(workspace)
    assert keyring.log_report().ok
    assert [k.key_id for k in keyring.public_signing_keys()] == [first.key_id]
    assert later.key_id not in [k.key_id for k in keyring.public_signing_keys()]
