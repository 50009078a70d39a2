"""``nodus keys``: keyring, rotation, key log, signatures and sealed files.

The scrypt cost is real (>= 0.25 s per unlock, no weaker test path): a keyring is
generated once per module and copied into each test's workspace, and library tests
unlock once per test.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import hashlib
import io
import json
import os
import random
import resource
import shutil
import signal
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodus_cli.keys import age, keylog, signing, xwing
from nodus_cli.keys.errors import (
    AgeError,
    KeyringTampered,
    KeyUnusable,
    SignatureInvalid,
    UnknownSigner,
)
from nodus_cli.keys.files import (
    DetachedSignature,
    keyring_identities,
    rewrap_file,
    sign_stream,
    verify_stream,
)
from nodus_cli.keys.keyring import (
    ENCRYPT,
    SIGN,
    Keyring,
    UnlockedKeyring,
    select_creating_key,
    utc_now,
)
from nodus_cli.keys.record import canonical_json
from nodus_cli.workspace import Workspace

PASSPHRASE = "correct horse battery staple"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A keyring with a primary sign and encrypt key, made once for the module."""
    root = tmp_path_factory.mktemp("template")
    unlocked = Keyring(Workspace(root, "test").ensure()).unlock(PASSPHRASE.encode(), create=True)
    unlocked.generate(SIGN)
    unlocked.generate(ENCRYPT)
    unlocked.save()
    return root / "keyring"


@pytest.fixture
def ws(template: Path, nodus_home: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    workspace = Workspace(nodus_home, "test").ensure()
    shutil.rmtree(workspace.keyring_dir)
    shutil.copytree(template, workspace.keyring_dir)
    monkeypatch.setenv("NODUS_PASSPHRASE", PASSPHRASE)
    return workspace


@pytest.fixture
def unlocked(ws: Workspace) -> UnlockedKeyring:
    return Keyring(ws).unlock(PASSPHRASE.encode())


def one_error_line(stderr: str) -> bool:
    lines = stderr.strip().splitlines()
    return len(lines) == 1 and lines[0].startswith("nodus: error:") and "Traceback" not in stderr


# --- composite signatures -----------------------------------------------------------


def test_both_signature_halves_are_required() -> None:
    key, other = signing.SigningKey.generate(), signing.SigningKey.generate()
    public = key.public()
    signature = key.sign(b"message", b"ctx")
    assert public.verify(b"message", signature, b"ctx")
    assert not public.verify(b"message", signature, b"other context")
    assert not public.verify(b"messagE", signature, b"ctx")
    mldsa_part, ed_part = signature[: signing.MLDSA_SIGNATURE_SIZE], signature[-64:]
    foreign = other.sign(b"message", b"ctx")
    assert not public.verify(b"message", mldsa_part + bytes(64), b"ctx")
    assert not public.verify(b"message", bytes(len(mldsa_part)) + ed_part, b"ctx")
    assert not public.verify(b"message", mldsa_part + foreign[-64:], b"ctx")
    assert not public.verify(b"message", foreign[:-64] + ed_part, b"ctx")
    assert not public.verify(b"message", ed_part + mldsa_part, b"ctx")  # swapped order
    assert not public.verify(b"message", mldsa_part, b"ctx")  # stripped
    assert key.ed25519.public_key().public_bytes_raw() == public.to_bytes()[-32:]


def test_public_key_file_round_trip_and_errors(tmp_path: Path) -> None:
    key = signing.SigningKey.generate().public()
    key.created = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    key.revoked_at = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    path = tmp_path / "trust.pub"
    path.write_bytes(signing.dump_public_keys([key]) + b"age1pq1ignored\n")
    (loaded,) = signing.load_public_keys(path)
    assert loaded.to_bytes() == key.to_bytes() and loaded.key_id == key.key_id
    assert (loaded.created, loaded.not_after, loaded.revoked_at) == (
        key.created,
        None,
        key.revoked_at,
    )
    path.write_text("nodus-sign-v1 abc notbase64!\n")
    with pytest.raises(signing.InputError):
        signing.load_public_keys(path)


# --- the keyring ----------------------------------------------------------------------


def test_keyring_files_are_private_and_listing_shows_no_secret(ws: Workspace, cli) -> None:
    keyring = Keyring(ws)
    assert keyring.path.stat().st_mode & 0o777 == 0o600
    assert keyring.log_path.stat().st_mode & 0o777 == 0o600
    result = cli("keys", "list", "--json")
    assert result.exit_code == 0
    keys = result.json()["keys"]
    assert {k["purpose"] for k in keys} == {"sign", "encrypt"}
    assert all(k["state"] == "primary" and k["created"] for k in keys)
    assert next(k for k in keys if k["purpose"] == "encrypt")["recipient"].startswith("age1pq1")
    assert "sealed" not in result.stdout and "ciphertext" not in result.stdout
    exported = json.loads(cli("keys", "export", "--format", "json").stdout)["keys"]
    assert [k["id"] for k in exported] == [k["id"] for k in keys]
    assert all(k["public"] and "sealed" not in k for k in exported)


def test_unlock_costs_at_least_a_quarter_second(ws: Workspace) -> None:
    started = time.perf_counter()
    Keyring(ws).unlock(PASSPHRASE.encode())
    assert time.perf_counter() - started >= 0.25
    assert Keyring(ws).document().kdf["log2_n"] >= 17


def test_wrong_passphrase_is_exit_2_with_one_line(ws: Workspace, cli, monkeypatch) -> None:
    monkeypatch.setenv("NODUS_PASSPHRASE", "wrong")
    (ws.root / "f").write_text("x")
    result = cli("keys", "sign", str(ws.root / "f"))
    assert result.exit_code == 2
    assert one_error_line(result.stderr) and "wrong passphrase" in result.stderr
    monkeypatch.delenv("NODUS_PASSPHRASE")
    passphrase_file = ws.root / "pass"
    passphrase_file.write_text(PASSPHRASE + "\n")
    result = cli("keys", "sign", str(ws.root / "f"), "--passphrase-file", str(passphrase_file))
    assert result.exit_code == 0, result.stderr


def test_a_changed_byte_anywhere_in_the_keyring_file_is_detected(ws: Workspace) -> None:
    path = Keyring(ws).path
    original = path.read_bytes()
    for position in [*range(0, len(original), 7), len(original) - 1]:
        damaged = bytearray(original)
        damaged[position] ^= 0x01
        path.write_bytes(bytes(damaged))
        with pytest.raises(KeyringTampered):
            Keyring(ws).document()
    path.write_bytes(original)


def test_an_edit_with_a_fixed_checksum_is_caught_by_the_mac(ws: Workspace, cli) -> None:
    path = Keyring(ws).path
    data = json.loads(path.read_bytes())
    data["keys"][0]["not_after"] = "2099-01-01T00:00:00+00:00"
    data.pop("sha256")
    data["sha256"] = hashlib.sha256(canonical_json(data)).hexdigest()
    path.write_bytes(canonical_json(data) + b"\n")
    (ws.root / "f").write_text("x")
    result = cli("keys", "sign", str(ws.root / "f"))
    assert result.exit_code == 1 and one_error_line(result.stderr)
    assert cli("keys", "log", "--verify").exit_code == 1


# --- signing and verifying ----------------------------------------------------------


def test_sign_and_verify_with_exported_trust(ws: Workspace, cli, tmp_path: Path) -> None:
    document = tmp_path / "report.txt"
    document.write_bytes(b"quarterly numbers\n" * 100)
    assert cli("keys", "sign", str(document)).exit_code == 0
    trust = tmp_path / "trust.pub"
    assert cli("keys", "export", "--purpose", "sign", "-o", str(trust)).exit_code == 0
    result = cli("keys", "verify", str(document), str(tmp_path / "report.txt.sig"),
                 "--trust", str(trust), "--json")  # fmt: skip
    assert result.exit_code == 0 and result.json()["valid"] is True
    # every byte of the signature file changed: exit 1 (bad) or 2 (unreadable), never 0
    signature_path = tmp_path / "report.txt.sig"
    original = signature_path.read_bytes()
    for position in [*range(0, 140, 3), *range(140, len(original), 229)]:
        damaged = bytearray(original)
        damaged[position] ^= 0x04
        signature_path.write_bytes(bytes(damaged))
        result = cli("keys", "verify", str(document), str(signature_path), "--trust", str(trust))
        assert result.exit_code in (1, 2), (position, result.stderr)
        assert one_error_line(result.stderr)
    signature_path.write_bytes(original)
    document.write_bytes(b"quarterly numbers\n" * 99)
    result = cli("keys", "verify", str(document), str(signature_path), "--trust", str(trust))
    assert result.exit_code == 1 and one_error_line(result.stderr)


def test_unknown_signer_is_exit_3(ws: Workspace, cli, tmp_path: Path) -> None:
    document = tmp_path / "doc"
    document.write_bytes(b"data")
    stranger = signing.SigningKey.generate()
    signature = sign_stream(stranger, io.BytesIO(b"data"))
    (tmp_path / "doc.sig").write_text(signature.to_text())
    result = cli("keys", "verify", str(document), str(tmp_path / "doc.sig"))
    assert result.exit_code == 3 and one_error_line(result.stderr)
    with pytest.raises(UnknownSigner):
        verify_stream(io.BytesIO(b"data"), signature, Keyring(ws).public_signing_keys())


def test_revoked_keys_verify_only_what_was_signed_before(unlocked: UnlockedKeyring) -> None:
    key = unlocked.signing_key()
    t0 = utc_now()
    before = sign_stream(key, io.BytesIO(b"doc"), now=t0)
    after = sign_stream(key, io.BytesIO(b"doc"), now=t0 + dt.timedelta(hours=2))
    unlocked.revoke(key.key_id, now=t0 + dt.timedelta(hours=1))
    trusted = [r.signing_public_key() for r in unlocked.document.keys if r.purpose == SIGN]
    assert verify_stream(io.BytesIO(b"doc"), before, trusted).key_id == key.key_id
    with pytest.raises(SignatureInvalid):
        verify_stream(io.BytesIO(b"doc"), after, trusted)
    with pytest.raises(KeyUnusable):
        unlocked.signing_key()
    # the signed time is authenticated: moving it back breaks the signature
    forged = DetachedSignature(after.key_id, t0, after.signature)
    with pytest.raises(SignatureInvalid):
        verify_stream(io.BytesIO(b"doc"), forged, trusted)


def test_expired_keys_refuse_to_create_but_still_verify_and_decrypt(ws: Workspace) -> None:
    unlocked = Keyring(ws).unlock(PASSPHRASE.encode())
    now = utc_now()
    _, sign_key = unlocked.rotate(SIGN, not_after=now + dt.timedelta(days=1), now=now)
    _, enc_key = unlocked.rotate(ENCRYPT, not_after=now + dt.timedelta(days=1), now=now)
    signature = sign_stream(unlocked.signing_key(now=now), io.BytesIO(b"x"), now=now)
    sealed = io.BytesIO()
    age.seal(io.BytesIO(b"secret"), sealed, [age.HybridRecipient(enc_key.public)])
    later = now + dt.timedelta(days=2)
    with pytest.raises(KeyUnusable, match="expired"):
        unlocked.signing_key(now=later)
    with pytest.raises(KeyUnusable, match="expired"):
        select_creating_key(unlocked.document.keys, ENCRYPT, None, later)
    trusted = [sign_key.signing_public_key()]
    assert verify_stream(io.BytesIO(b"x"), signature, trusted).key_id == sign_key.key_id
    plain = io.BytesIO()
    age.open_file(io.BytesIO(sealed.getvalue()), plain, keyring_identities(unlocked))
    assert plain.getvalue() == b"secret"


# --- rotation -----------------------------------------------------------------------


@settings(
    max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(purposes=st.lists(st.sampled_from([SIGN, ENCRYPT]), min_size=100, max_size=100))
def test_across_100_rotations_everything_old_still_opens_and_only_primary_creates(
    unlocked: UnlockedKeyring, purposes: list[str]
) -> None:
    initial = copy.deepcopy(unlocked.document)
    try:
        now = utc_now()
        signatures: list[DetachedSignature] = []
        sealed: list[tuple[bytes, bytes]] = []
        for step, purpose in enumerate(purposes):
            unlocked.rotate(purpose, now=now)
            primary = {
                p: select_creating_key(unlocked.document.keys, p, None, now)
                for p in (SIGN, ENCRYPT)
            }
            for record in unlocked.document.keys:  # only the primary signs or seals
                if record is not primary[record.purpose]:
                    with pytest.raises(KeyUnusable):
                        select_creating_key(
                            unlocked.document.keys, record.purpose, record.key_id, now
                        )
            message = f"message {step}".encode()
            signatures.append(
                sign_stream(unlocked.signing_key(now=now), io.BytesIO(message), now=now)
            )
            target = io.BytesIO()
            age.seal(io.BytesIO(message), target, [age.HybridRecipient(primary[ENCRYPT].public)])
            sealed.append((message, target.getvalue()))
        trusted = [r.signing_public_key() for r in unlocked.document.keys if r.purpose == SIGN]
        identities = keyring_identities(unlocked)
        for step, signature in enumerate(signatures):
            verify_stream(io.BytesIO(f"message {step}".encode()), signature, trusted)
        for message, blob in sealed:
            plain = io.BytesIO()
            age.open_file(io.BytesIO(blob), plain, identities)
            assert plain.getvalue() == message
        report = keylog.verify_log(unlocked.keyring.log_path, initial.log_head, initial.keys, now)
        assert report.ok  # nothing saved yet: the file log still matches the initial keyring
    finally:
        unlocked.document = initial
        unlocked._pending_log = []


def test_rotate_rewrap_replaces_only_the_wrapped_key(ws: Workspace, cli, tmp_path: Path) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(os.urandom(200_000))
    assert cli("keys", "seal", str(secret), "-r", "@keyring").exit_code == 0
    sealed = tmp_path / "secret.bin.age"
    before = sealed.read_bytes()
    old_id = next(k for k in Keyring(ws).records() if k.purpose == ENCRYPT).key_id
    identity = tmp_path / "old.key"
    assert cli("keys", "export", old_id, "--identity", "-o", str(identity)).exit_code == 0
    assert identity.stat().st_mode & 0o777 == 0o600
    result = cli("keys", "rotate", "--purpose", "encrypt", "--rewrap", str(sealed), str(secret))
    assert result.exit_code == 2 and one_error_line(result.stderr)  # not sealed: nothing done
    assert "not an age file" in result.stderr
    assert len(Keyring(ws).records()) == 2 and sealed.read_bytes() == before
    result = cli("keys", "rotate", "--purpose", "encrypt", "--rewrap", str(sealed), "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["rewrapped"] == [{"file": str(sealed), "was_wrapped_to": old_id}]
    after = sealed.read_bytes()
    payload_before = before[before.index(b"\n--- ") + 48 :]
    assert after.endswith(payload_before) and after != before
    assert b"-> mlkem768x25519" in after
    result = cli("keys", "open", str(sealed), "-i", str(identity), "-o", str(tmp_path / "o"))
    assert result.exit_code == 1 and one_error_line(result.stderr)  # no longer wrapped to it
    assert cli("keys", "open", str(sealed), "-o", str(tmp_path / "out")).exit_code == 0
    assert (tmp_path / "out").read_bytes() == secret.read_bytes()
    keys = cli("keys", "list", "--json").json()["keys"]
    states = {k["id"]: k["state"] for k in keys}
    assert states[old_id] == "retired" and list(states.values()).count("primary") == 2
    result = cli("keys", "export", old_id)  # a retired key is no recipient any more
    assert result.exit_code == 2 and one_error_line(result.stderr)
    lines = cli("keys", "export", "--format", "age").stdout.splitlines()
    assert [line for line in lines if not line.startswith("#")] == [
        k["recipient"] for k in keys if k["state"] == "primary" and k["purpose"] == "encrypt"
    ]
    assert cli("keys", "log", "--verify").exit_code == 0


def _rewrap_child(path: Path, identities, recipients) -> None:  # type: ignore[no-untyped-def]
    try:
        rewrap_file(path, identities, recipients)
    finally:
        os._exit(0)


def test_rewrap_killed_at_a_random_point_leaves_a_whole_file(
    unlocked: UnlockedKeyring, tmp_path: Path
) -> None:
    data = os.urandom(3 << 20)
    identities = keyring_identities(unlocked)
    recipient = age.HybridRecipient(unlocked.encryption_recipient().public)
    path = tmp_path / "f.age"
    with path.open("wb") as target:
        age.seal(io.BytesIO(data), target, [recipient])
    rng = random.Random(5)
    for _ in range(12):
        pid = os.fork()
        if pid == 0:
            _rewrap_child(path, identities, [recipient])
        time.sleep(rng.uniform(0, 0.03))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        plain = io.BytesIO()
        age.open_file(path.open("rb"), plain, identities)
        assert plain.getvalue() == data


def _rotate_forever(unlocked: UnlockedKeyring) -> None:
    try:
        while True:
            unlocked.rotate(ENCRYPT)
            unlocked.save()
    finally:
        os._exit(0)


def test_changes_killed_at_a_random_point_leave_a_usable_keyring(
    unlocked: UnlockedKeyring, ws: Workspace
) -> None:
    rng = random.Random(7)
    for _ in range(10):
        pid = os.fork()
        if pid == 0:
            _rotate_forever(unlocked)
        time.sleep(rng.uniform(0.005, 0.06))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        unlocked.reload()  # the keyring file is whole, its MAC checks
        report = _verify(ws)
        assert report.ok or "killed" in report.problems[0], report.problems
        unlocked.rotate(SIGN)
        unlocked.save()  # drops entries an interrupted save left past the head
        assert _verify(ws).ok


# --- sealed files -------------------------------------------------------------------


def test_seal_and_open_through_stdin_and_stdout(ws: Workspace, cli, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from nodus_cli.cli.app import app

    recipient = cli("keys", "list", "--json").json()["keys"][1]["recipient"]
    result = CliRunner().invoke(app, ["keys", "seal", "-", "-r", recipient], input=b"piped secret")
    assert result.exit_code == 0 and result.stdout_bytes.startswith(b"age-encryption.org/v1\n")
    sealed = tmp_path / "piped.age"
    sealed.write_bytes(result.stdout_bytes)
    result = cli("keys", "open", str(sealed))
    assert result.exit_code == 0 and result.stdout == "piped secret"


def test_seal_several_files_into_a_directory(ws: Workspace, cli, tmp_path: Path) -> None:
    names = ["a.log", "b.log"]
    for name in names:
        (tmp_path / name).write_text(name * 1000)
    out = tmp_path / "sealed"
    out.mkdir()
    export = tmp_path / "team.recipients"
    assert cli("keys", "export", "--format", "age", "-o", str(export)).exit_code == 0
    result = cli("keys", "seal", *(str(tmp_path / n) for n in names), "-r", str(export),
                 "-o", str(out), "--json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert [item["output"] for item in result.json()["sealed"]] == [
        str(out / (n + ".age")) for n in names
    ]
    assert cli("keys", "seal", str(tmp_path / "a.log"), str(tmp_path / "b.log"), "-r",
               "@keyring", "-o", str(export)).exit_code == 2  # fmt: skip


def test_any_byte_of_a_sealed_file_changed_is_detected(unlocked: UnlockedKeyring) -> None:
    identities = keyring_identities(unlocked)
    recipient = age.HybridRecipient(unlocked.encryption_recipient().public)
    sealed = io.BytesIO()
    age.seal(io.BytesIO(os.urandom(70_000)), sealed, [recipient])
    original = sealed.getvalue()
    positions = list(range(0, 1700)) + list(range(1700, len(original), 211)) + [len(original) - 1]
    for position in positions:
        damaged = bytearray(original)
        damaged[position] ^= 0x20
        with pytest.raises(AgeError):
            age.open_file(io.BytesIO(bytes(damaged)), io.BytesIO(), identities)
    for cut in (0, 30, len(original) - 70_000, len(original) - 1):
        with pytest.raises(AgeError):
            age.open_file(io.BytesIO(original[:cut]), io.BytesIO(), identities)


def test_a_damaged_sealed_file_is_exit_1_through_the_cli(
    ws: Workspace, cli, tmp_path: Path
) -> None:
    plain = tmp_path / "p"
    plain.write_bytes(b"hello")
    assert cli("keys", "seal", str(plain), "-r", "@keyring").exit_code == 0
    sealed = tmp_path / "p.age"
    blob = bytearray(sealed.read_bytes())
    blob[-3] ^= 1
    sealed.write_bytes(bytes(blob))
    out = tmp_path / "out"
    result = cli("keys", "open", str(sealed), "-o", str(out))
    assert result.exit_code == 1 and one_error_line(result.stderr)
    assert not out.exists()  # no partial plaintext
    (tmp_path / "junk").write_bytes(b"not an age file")
    result = cli("keys", "open", str(tmp_path / "junk"), "-o", str(out))
    assert result.exit_code == 2 and one_error_line(result.stderr)  # bad input, not damage
    assert "not an age file" in result.stderr


class _Zeros(io.RawIOBase):
    """A large input that costs no memory."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def,override]
        size = min(len(buffer), self.left)
        buffer[:size] = bytes(size)
        self.left -= size
        return size


class _Sink(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[no-untyped-def,override]
        return len(data)


def test_sealing_and_opening_stream_with_flat_memory(tmp_path: Path) -> None:
    seed = bytes(32)
    recipient = age.HybridRecipient(xwing.public_bytes(seed))
    age.seal(_Zeros(1 << 20), _Sink(), [recipient])  # warm up imports
    sealed = tmp_path / "big.age"
    pid = os.fork()
    if pid == 0:
        try:
            baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            with sealed.open("wb") as target:
                age.seal(io.BufferedReader(_Zeros(192 << 20)), target, [recipient])
            with sealed.open("rb") as source:
                _, size = age.open_file(source, _Sink(), [age.HybridIdentity(seed)])
            grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline
            os._exit(0 if grown < 32 * 1024 and size == 192 << 20 else 1)  # KiB
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


# --- the key log ----------------------------------------------------------------------


def _log_lines(ws: Workspace) -> list[bytes]:
    return Keyring(ws).log_path.read_bytes().splitlines()


def _verify(ws: Workspace) -> keylog.LogReport:
    keyring = Keyring(ws)
    document = keyring.document()
    return keylog.verify_log(keyring.log_path, document.log_head, document.keys, utc_now())


def test_log_records_every_change_and_verifies(ws: Workspace, cli, tmp_path: Path) -> None:
    sign_id = next(k for k in Keyring(ws).records() if k.purpose == SIGN).key_id
    assert cli("keys", "rotate", "--purpose", "sign").exit_code == 0
    assert cli("keys", "revoke", sign_id).exit_code == 0
    assert cli("keys", "destroy", sign_id, "--yes").exit_code == 0
    result = cli("keys", "log", "--json")
    events = [e["event"] for e in result.json()["entries"]]
    assert events == ["generate", "generate", "rotate", "revoke", "destroy"]
    result = cli("keys", "log", "--verify", "--json")
    assert result.exit_code == 0 and result.json()["ok"] is True
    assert Keyring(ws).find(sign_id).sealed is None
    journal = cli("journal", "--json").json()
    assert any("keys" in json.dumps(row) for row in journal)


def test_log_edits_deletions_reordering_and_backdating_are_detected(ws: Workspace, cli) -> None:
    unlocked = Keyring(ws).unlock(PASSPHRASE.encode())
    now = utc_now()
    unlocked.rotate(SIGN, now=now)
    unlocked.rotate(ENCRYPT, now=now)
    unlocked.save()
    path = Keyring(ws).log_path
    original = path.read_bytes()
    lines = original.splitlines()
    assert _verify(ws).ok
    variants = {
        "deleted middle": lines[:1] + lines[2:],
        "deleted last": lines[:-1],
        "reordered": [lines[0], lines[2], lines[1], *lines[3:]],
        "duplicated": [*lines, lines[-1]],
    }
    for position in range(0, len(original), 151):
        damaged = bytearray(original)
        damaged[position] ^= 0x01
        variants[f"byte {position}"] = bytes(damaged).splitlines()
    for name, variant in variants.items():
        path.write_bytes(b"".join(line + b"\n" for line in variant))
        assert not _verify(ws).ok, name
    path.write_bytes(original)
    result = cli("keys", "log", "--verify")
    assert result.exit_code == 0, result.stderr
    path.write_bytes(b"".join(line + b"\n" for line in variants["reordered"]))
    result = cli("keys", "log", "--verify")
    assert result.exit_code == 1 and one_error_line(result.stderr)
    path.write_bytes(original)
    # back-dating by someone who holds the signing key: a later entry dated earlier
    unlocked = Keyring(ws).unlock(PASSPHRASE.encode())
    unlocked.rotate(ENCRYPT, now=now - dt.timedelta(days=3))
    unlocked.save()
    report = _verify(ws)
    assert not report.ok and "back-dated" in report.problems[0]


def test_a_line_cut_short_past_the_head_is_a_killed_change_not_tampering(
    ws: Workspace, cli
) -> None:
    keyring = Keyring(ws)
    saved_keyring, committed = keyring.path.read_bytes(), keyring.log_path.read_bytes()
    unlocked = keyring.unlock(PASSPHRASE.encode())
    unlocked.rotate(ENCRYPT)
    unlocked.save()
    extra = keyring.log_path.read_bytes()[len(committed) :]
    # a kill while the entry was being written, before the keyring was saved
    keyring.path.write_bytes(saved_keyring)
    keyring.log_path.write_bytes(committed + extra[: len(extra) // 2])
    report = _verify(ws)
    assert not report.ok and "killed" in report.problems[0], report.problems
    result = cli("keys", "log", "--verify")
    assert result.exit_code == 1 and one_error_line(result.stderr)
    unlocked = Keyring(ws).unlock(PASSPHRASE.encode())
    unlocked.rotate(SIGN)
    unlocked.save()  # the next change drops the cut line
    assert _verify(ws).ok
    # a line cut inside the keyring's entries is damage, not an interrupted change
    first, second = keyring.log_path.read_bytes().splitlines()[:2]
    keyring.log_path.write_bytes(first + b"\n" + second[: len(second) // 2])
    report = _verify(ws)
    assert report.problems[0].startswith("entry 2: unreadable ("), report.problems


def test_import_others_public_keys_to_verify_and_seal(ws: Workspace, cli, tmp_path: Path) -> None:
    other = Workspace(tmp_path / "other", "test").ensure()
    shutil.rmtree(other.keyring_dir)
    shutil.copytree(ws.keyring_dir, other.keyring_dir)
    document = tmp_path / "doc"
    document.write_bytes(b"from the other workspace")
    theirs = Keyring(other).unlock(PASSPHRASE.encode())
    theirs.rotate(SIGN)
    theirs.rotate(ENCRYPT)
    theirs.save()
    (tmp_path / "doc.sig").write_text(
        sign_stream(theirs.signing_key(), io.BytesIO(document.read_bytes())).to_text()
    )
    assert (
        cli(
            "--home", str(other.root), "keys", "export", "-o", str(tmp_path / "their.pub")
        ).exit_code
        == 0
    )
    assert cli("keys", "verify", str(document), str(tmp_path / "doc.sig")).exit_code == 3
    result = cli("keys", "import", str(tmp_path / "their.pub"), "--json")
    assert result.exit_code == 0, result.stderr
    assert cli("keys", "verify", str(document), str(tmp_path / "doc.sig")).exit_code == 0
    imported = [k for k in result.json()["imported"] if k["purpose"] == ENCRYPT]
    assert imported and not imported[0]["has_private"]
    result = cli(
        "keys", "seal", str(document), "-r", "@" + imported[-1]["id"], "-o", str(tmp_path / "x.age")
    )
    assert result.exit_code == 0, result.stderr
    result = cli("keys", "log", "--verify")
    assert result.exit_code == 0, result.stderr


def test_cli_errors_are_one_line(ws: Workspace, cli, tmp_path: Path) -> None:
    for args in (
        ["keys", "show", "nosuchkey"],
        ["keys", "seal", str(tmp_path / "missing"), "-r", "@keyring"],
        ["keys", "seal", str(tmp_path), "-r", "age1qqqq"],
        ["keys", "rotate", "--purpose", "sign", str(tmp_path)],
    ):
        result = cli(*args)
        assert result.exit_code == 2 and one_error_line(result.stderr), (args, result.stderr)


def test_real_subprocess_round_trip(ws: Workspace, run_nodus, tmp_path: Path, monkeypatch) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("through a real process\n")
    result = run_nodus(
        "keys", "seal", str(plain), "-r", "@keyring", "--json", "-o", str(tmp_path / "s.age")
    )
    assert result.returncode == 0, result.stderr
    result = run_nodus("keys", "open", str(tmp_path / "s.age"))
    assert result.returncode == 0 and result.stdout == "through a real process\n"
    monkeypatch.setenv("NODUS_PASSPHRASE", "nope")
    result = run_nodus("keys", "open", str(tmp_path / "s.age"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert PASSPHRASE not in result.stderr + result.stdout


def test_a_missing_keyring_says_how_to_make_one(cli) -> None:
    result = cli("keys", "list", "--json")
    assert result.exit_code == 0 and result.json() == {"keys": []}
    result = cli("keys", "sign", "/dev/null")
    assert result.exit_code == 2 and "nodus keys generate" in result.stderr


def test_the_passphrase_is_prompted_for_on_a_terminal(ws: Workspace, tmp_path: Path) -> None:
    import pty
    import select
    import sys
    import termios

    from tests.conftest import PROJECT

    document = tmp_path / "doc"
    document.write_bytes(b"signed at a terminal")
    env = {k: v for k, v in os.environ.items() if k != "NODUS_PASSPHRASE"}
    env["PYTHONPATH"] = str(PROJECT)
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(
            sys.executable, [sys.executable, "-m", "nodus_cli", "keys", "sign", str(document)], env
        )
    seen = b""
    prompted = False
    try:
        with contextlib.suppress(OSError):  # EIO once the child has exited
            while select.select([fd], [], [], 60)[0]:
                chunk = os.read(fd, 1024)
                if not chunk:
                    break
                seen += chunk
                if not prompted and b"passphrase" in seen.lower():
                    # getpass flushes pending input when it turns echo off: wait for that
                    deadline = time.monotonic() + 30
                    while termios.tcgetattr(fd)[3] & termios.ECHO:
                        assert time.monotonic() < deadline, seen
                        time.sleep(0.02)
                    os.write(fd, PASSPHRASE.encode() + b"\r")
                    prompted = True
    finally:
        deadline = time.monotonic() + 60
        finished, status = os.waitpid(pid, os.WNOHANG)
        while not finished and time.monotonic() < deadline:
            time.sleep(0.05)
            finished, status = os.waitpid(pid, os.WNOHANG)
        if not finished:  # still waiting for input: fail instead of hanging the suite
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, seen
    assert PASSPHRASE.encode() not in seen  # not echoed
    assert (tmp_path / "doc.sig").read_text().startswith("nodus-signature-v1\n")
