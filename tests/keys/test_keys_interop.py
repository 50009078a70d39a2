"""age interoperability with the age author's TypeScript implementation (npm ``age-encryption``).

``.ci/run`` installs the pinned package and exports ``NODUS_AGE_JS`` (its node_modules
folder); under CI (``NODUS_CI=1``) a missing node or package fails these tests. Locally:
``npm install --prefix /tmp/agejs age-encryption@0.3.1`` and
``NODUS_AGE_JS=/tmp/agejs/node_modules``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from nodus_cli.keys import age
from nodus_cli.keys.keyring import ENCRYPT, Keyring
from nodus_cli.workspace import Workspace

from . import test_keys
from .test_keys import PASSPHRASE

template, ws = test_keys.template, test_keys.ws  # the keyring fixtures

SCRIPT = Path(__file__).resolve().parents[1] / "interop" / "agejs.mjs"
PINNED = "0.3.1"
SIZES = [0, 1, 65536, (3 << 20) + 1]  # empty, tiny, one full chunk, many chunks


class AgeJs:
    """``age-encryption`` run by node through tests/interop/agejs.mjs."""

    def __init__(self, modules: Path) -> None:
        self.modules = modules

    def run(self, *args: str, data: bytes = b"") -> bytes:
        result = subprocess.run(
            ["node", str(SCRIPT), *args],
            input=data,
            capture_output=True,
            env={**os.environ, "NODUS_AGE_JS": str(self.modules)},
            timeout=120,
        )
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        return result.stdout

    def generate(self, kind: str = "hybrid") -> tuple[str, str]:
        pair = json.loads(self.run("generate", kind))
        return pair["identity"], pair["recipient"]

    def encrypt(self, data: bytes, *recipients: str, armor: bool = False) -> bytes:
        return self.run("encrypt", *(["--armor"] if armor else []), *recipients, data=data)

    def decrypt(self, sealed: bytes, *identity_files: Path) -> bytes:
        return self.run("decrypt", *map(str, identity_files), data=sealed)


@pytest.fixture(scope="module")
def agejs() -> AgeJs:
    """The pinned package, or a failure under CI (a skip only on a developer's machine)."""
    location = os.environ.get("NODUS_AGE_JS")
    manifest = Path(location or "/nonexistent") / "age-encryption" / "package.json"
    problem = None
    if shutil.which("node") is None:
        problem = "node is not installed"
    elif not manifest.is_file():
        problem = f"age-encryption not found (NODUS_AGE_JS={location!r})"
    elif json.loads(manifest.read_text())["version"] != PINNED:
        problem = f"age-encryption is not the pinned {PINNED}"
    if problem and os.environ.get("NODUS_CI") == "1":
        pytest.fail(f"age interop: {problem}")
    if problem:
        pytest.skip(f"age interop: {problem} (set NODUS_CI=1 to fail instead)")
    return AgeJs(Path(location or ""))


@pytest.fixture(scope="module")
def nodus_identity(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template keyring's encryption key as an identity file: opens without an unlock."""
    unlocked = Keyring(Workspace(template.parent, "test")).unlock(PASSPHRASE.encode())
    ((_, seed),) = unlocked.decryption_seeds()
    path = tmp_path_factory.mktemp("identity") / "nodus.key"
    path.write_text(age.encode_identity(seed) + "\n")
    return path


def identity_file(tmp_path: Path, name: str, identity: str) -> Path:
    path = tmp_path / name
    path.write_text(f"# made by age-encryption\n{identity}\n")
    return path


def primary_recipient(ws: Workspace) -> str:
    record = next(r for r in Keyring(ws).records() if r.purpose == ENCRYPT)
    return record.recipient() or ""


@pytest.mark.parametrize("size", SIZES)
def test_nodus_seals_and_agejs_decrypts(
    agejs: AgeJs, ws: Workspace, cli, tmp_path: Path, size: int
) -> None:
    identity, recipient = agejs.generate()
    plain = tmp_path / "plain"
    plain.write_bytes(os.urandom(size))
    for armor in ([], ["--armor"]):
        sealed = tmp_path / f"sealed{len(armor)}"
        result = cli("keys", "seal", str(plain), "-r", recipient, *armor, "-o", str(sealed))
        assert result.exit_code == 0, result.stderr
        assert sealed.read_bytes().startswith(b"-----BEGIN" if armor else b"age-encryption")
        decrypted = agejs.decrypt(sealed.read_bytes(), identity_file(tmp_path, "js", identity))
        assert decrypted == plain.read_bytes()


@pytest.mark.parametrize("size", SIZES)
def test_agejs_encrypts_and_nodus_opens(
    agejs: AgeJs, ws: Workspace, cli, tmp_path: Path, size: int, nodus_identity: Path
) -> None:
    data = os.urandom(size)
    for armor in (False, True):
        sealed = tmp_path / "from-js.age"
        sealed.write_bytes(agejs.encrypt(data, primary_recipient(ws), armor=armor))
        with_keyring = size == 1 and armor  # one unlock: the scrypt cost is real
        identity = [] if with_keyring else ["-i", str(nodus_identity)]
        result = cli("keys", "open", str(sealed), *identity, "-o", str(tmp_path / "out"))
        assert result.exit_code == 0, result.stderr
        assert (tmp_path / "out").read_bytes() == data


def test_three_recipients_nodus_agejs_and_a_second_nodus_key(
    agejs: AgeJs, ws: Workspace, cli, tmp_path: Path, nodus_identity: Path
) -> None:
    result = cli("keys", "generate", "--purpose", "encrypt", "--json")
    assert result.exit_code == 0, result.stderr
    second = result.json()["generated"][0]
    second_identity = tmp_path / "second.key"
    result = cli("keys", "export", second["id"], "--identity", "-o", str(second_identity))
    assert result.exit_code == 0, result.stderr
    js_identity, js_recipient = agejs.generate()
    js_file = identity_file(tmp_path, "js.key", js_identity)
    data = os.urandom(200_000)
    plain = tmp_path / "plain"
    plain.write_bytes(data)

    by_nodus = tmp_path / "by-nodus.age"
    result = cli("keys", "seal", str(plain), "-r", "@keyring", "-r", js_recipient,
                 "-r", "@" + second["id"], "-o", str(by_nodus))  # fmt: skip
    assert result.exit_code == 0, result.stderr
    by_js = tmp_path / "by-js.age"
    by_js.write_bytes(agejs.encrypt(data, primary_recipient(ws), js_recipient, second["recipient"]))
    for sealed in (by_nodus, by_js):
        assert sealed.read_bytes().count(b"\n-> mlkem768x25519 ") == 3
        assert agejs.decrypt(sealed.read_bytes(), js_file) == data
        assert agejs.decrypt(sealed.read_bytes(), second_identity) == data
        with_keyring = [] if sealed == by_js else ["-i", str(nodus_identity)]
        for identity in (with_keyring, ["-i", str(second_identity)]):
            result = cli("keys", "open", str(sealed), *identity, "-o", str(tmp_path / "out"))
            assert result.exit_code == 0, result.stderr
            assert (tmp_path / "out").read_bytes() == data


@pytest.mark.parametrize("kind", ["hybrid", "x25519"])
def test_an_identity_agejs_generated_opens_with_nodus_keys_open_i(
    agejs: AgeJs, ws: Workspace, cli, tmp_path: Path, kind: str
) -> None:
    identity, recipient = agejs.generate(kind)
    assert identity.startswith("AGE-SECRET-KEY-PQ-1" if kind == "hybrid" else "AGE-SECRET-KEY-1")
    data = os.urandom(100_000)
    for armor in (False, True):
        sealed = tmp_path / "js.age"
        sealed.write_bytes(agejs.encrypt(data, recipient, armor=armor))
        js_file = identity_file(tmp_path, "js", identity)
        result = cli("keys", "open", str(sealed), "-i", str(js_file), "-o", str(tmp_path / "out"))
        assert result.exit_code == 0, result.stderr
        assert (tmp_path / "out").read_bytes() == data


def test_a_nodus_exported_identity_is_used_by_agejs(
    agejs: AgeJs, ws: Workspace, cli, tmp_path: Path
) -> None:
    record = next(r for r in Keyring(ws).records() if r.purpose == ENCRYPT)
    exported = tmp_path / "nodus.key"
    assert cli("keys", "export", record.key_id, "--identity", "-o", str(exported)).exit_code == 0
    (line,) = [x for x in exported.read_text().splitlines() if x.startswith("AGE-SECRET-KEY-PQ-1")]
    assert agejs.run("recipient", line).decode() == record.recipient()  # same key derivation
    plain = tmp_path / "plain"
    plain.write_bytes(os.urandom(70_000))
    sealed = tmp_path / "plain.age"
    assert cli("keys", "seal", str(plain), "-r", "@keyring", "-o", str(sealed)).exit_code == 0
    assert agejs.decrypt(sealed.read_bytes(), exported) == plain.read_bytes()


def test_a_real_nodus_process_and_agejs_round_trip(
    agejs: AgeJs, ws: Workspace, run_nodus, tmp_path: Path
) -> None:
    identity, recipient = agejs.generate()
    plain = tmp_path / "plain"
    plain.write_bytes(os.urandom(1 << 20))
    sealed = tmp_path / "p.asc"
    result = run_nodus("keys", "seal", str(plain), "-r", recipient, "-r", "@keyring", "-a",
                       "-o", str(sealed))  # fmt: skip
    assert result.returncode == 0, result.stderr
    js_file = identity_file(tmp_path, "js.key", identity)
    assert agejs.decrypt(sealed.read_bytes(), js_file) == plain.read_bytes()
    back = tmp_path / "back.age"
    back.write_bytes(agejs.encrypt(plain.read_bytes(), age.encode_recipient(
        next(r for r in Keyring(ws).records() if r.purpose == ENCRYPT).public)))  # fmt: skip
    result = run_nodus("keys", "open", str(back), "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out").read_bytes() == plain.read_bytes()


def test_an_agejs_identity_imported_into_the_keyring_opens_its_files(
    agejs: AgeJs, ws: Workspace, cli, tmp_path: Path
) -> None:
    identity, recipient = agejs.generate()
    result = cli("keys", "import", str(identity_file(tmp_path, "js.key", identity)), "--json")
    assert result.exit_code == 0, result.stderr
    (imported,) = result.json()["imported"]
    assert (imported["recipient"], imported["state"]) == (recipient, "active")
    data = os.urandom(10_000)
    sealed = tmp_path / "js.age"
    sealed.write_bytes(agejs.encrypt(data, recipient, armor=True))
    result = cli("keys", "open", str(sealed), "--json", "-o", str(tmp_path / "out"))
    assert result.exit_code == 0 and result.json()["identity"] == imported["id"], result.stderr
    assert (tmp_path / "out").read_bytes() == data
