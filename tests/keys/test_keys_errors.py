"""``nodus keys`` on wrong, damaged and hostile files: one line in the user's words, the
documented exit code (2 not an age file or not a key file, 1 a damaged or foreign age
file), never exit 70 or Python's exception text; plus importing age identities and
revocations."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodus_cli.keys import age, xwing
from nodus_cli.keys.files import sign_stream
from nodus_cli.keys.keyring import ENCRYPT, REVOKED, SIGN, Keyring
from nodus_cli.workspace import Workspace

from . import test_keys
from .test_keys import PASSPHRASE, one_error_line

template, ws = test_keys.template, test_keys.ws  # the keyring fixtures

SEED = bytes(range(1, 33))
PLAIN = b"the quarterly numbers\n" * 5000


def sealed_bytes(*, armor: bool = False, seed: bytes = SEED, data: bytes = PLAIN) -> bytes:
    sink = io.BytesIO()
    age.seal(io.BytesIO(data), sink, [age.HybridRecipient(xwing.public_bytes(seed))], armor=armor)
    return sink.getvalue()


SEALED = sealed_bytes()
ARMORED = sealed_bytes(armor=True)
IDENTITY_TEXT = f"# public key: {age.encode_recipient(xwing.public_bytes(SEED))}\n" + (
    age.encode_identity(SEED) + "\n"
)


@pytest.fixture
def identity(tmp_path: Path) -> Path:
    path = tmp_path / "me.key"
    path.write_text(IDENTITY_TEXT)
    return path


def header_end(blob: bytes) -> int:
    return blob.index(b"\n--- ") + 49  # the MAC line: "--- ", 43 base64 characters, LF


# --- age files given by mistake or damaged --------------------------------------------

CASES = {
    "a text file": (b"just some notes\n", 2, "not an age file: it does not begin with"),
    "an empty file": (b"", 2, "the file is empty, not an age file"),
    "a gzip file": (gzip.compress(b"log line\n" * 100), 2, "gzip-compressed data, not an age"),
    "a gzipped age file": (gzip.compress(SEALED), 2, "if the sealed file was compressed, gunzip"),
    "a PGP message": (b"-----BEGIN PGP MESSAGE-----\n\nhQEM\n", 2, "an armored 'PGP MESSAGE'"),
    "another age version": (b"age-encryption.org/v2\n-> x\n", 2, "unsupported age format"),
    "a cut version line": (SEALED[:10], 1, "the file ends inside the age header"),
    "a header cut short": (SEALED[:900], 1, "the file ends inside the age header: it is trunc"),
    "a header without its MAC": (SEALED[: SEALED.index(b"\n---") + 1], 1, "it is truncated"),
    "a CRLF-converted file": (SEALED.replace(b"\n", b"\r\n"), 1, "converted to CRLF"),
    "a payload cut short": (SEALED[:-100], 1, "fails authentication"),
    "no payload": (SEALED[: header_end(SEALED)], 1, "the payload is missing"),
    "an armor cut short": (ARMORED[:-200], 1, "invalid armor"),
    "a foreign file": (sealed_bytes(seed=bytes(32)), 1, "cannot open it; it is sealed to 1 other"),
}


@pytest.mark.parametrize("name", CASES)
def test_a_wrong_or_damaged_age_file_is_one_line_in_the_users_words(
    name: str, cli, tmp_path: Path, identity: Path
) -> None:
    blob, code, words = CASES[name]
    path = tmp_path / "given.age"
    path.write_bytes(blob)
    result = cli("keys", "open", str(path), "-i", str(identity), "-o", str(tmp_path / "out"))
    assert result.exit_code == code and one_error_line(result.stderr), (name, result.stderr)
    assert f"nodus: error: {path}: " in result.stderr and words in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()


def test_a_wrong_identity_names_what_was_tried(ws: Workspace, cli, tmp_path: Path) -> None:
    path = tmp_path / "theirs.age"
    path.write_bytes(sealed_bytes(seed=bytes(32)))
    result = cli("keys", "open", str(path), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1 and one_error_line(result.stderr)
    assert "the keyring's keys cannot open it; it is sealed to 1 other recipient" in result.stderr


def test_errors_through_a_real_process_have_no_traceback(
    run_nodus, tmp_path: Path, identity: Path
) -> None:
    (tmp_path / "x.gz").write_bytes(gzip.compress(SEALED))
    for args in (
        ["keys", "open", str(tmp_path / "x.gz"), "-i", str(identity)],
        ["keys", "open", str(identity), "-i", str(tmp_path / "x.gz")],
        ["keys", "open", str(tmp_path / "x.gz"), "-i", str(tmp_path)],
    ):
        result = run_nodus(*args)
        assert result.returncode == 2 and one_error_line(result.stderr), result.stderr


# --- key and identity files given by mistake -------------------------------------------


def test_a_wrong_identity_or_key_file_is_one_line(cli, tmp_path: Path, identity: Path) -> None:
    sealed = tmp_path / "s.age"
    sealed.write_bytes(SEALED)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "id.gz").write_bytes(gzip.compress(IDENTITY_TEXT.encode()))
    (tmp_path / "recipients").write_text(age.encode_recipient(xwing.public_bytes(SEED)) + "\n")
    (tmp_path / "huge").write_bytes(b"#" * (2 << 20))
    cases = {
        "id.gz": "gzip-compressed data, not an age identity file",
        "s.age": "an age-encrypted file, not an age identity file",
        "recipients": "a recipient (public key), not an identity",
        "fifo": "not a regular file",  # and no wait for a writer
        "huge": "far too large",
        ".": "is a directory",
        "missing": "no such file (expected an age identity file)",
    }
    for name, words in cases.items():
        given = tmp_path / name
        result = cli("keys", "open", str(sealed), "-i", str(given))
        assert result.exit_code == 2 and one_error_line(result.stderr), (name, result.stderr)
        assert words in result.stderr, (name, result.stderr)
    result = cli("keys", "open", str(sealed), "-i", "/dev/zero")
    assert result.exit_code == 2 and "not a regular file" in result.stderr


# --- importing age identities and revocations -----------------------------------------


def test_import_an_age_identity_keeps_it_sealed_as_an_active_encryption_key(
    ws: Workspace, cli, tmp_path: Path, identity: Path
) -> None:
    result = cli("keys", "import", str(identity), "--json")
    assert result.exit_code == 0, result.stderr
    (imported,) = result.json()["imported"]
    assert (imported["purpose"], imported["state"], imported["has_private"]) == (
        ENCRYPT,
        "active",
        True,
    )
    assert imported["recipient"] == age.encode_recipient(xwing.public_bytes(SEED))
    stored = Keyring(ws).path.read_bytes()
    assert age.encode_identity(SEED).encode() not in stored and SEED.hex().encode() not in stored
    record = Keyring(ws).find(imported["id"])
    assert record.sealed is not None and SEED not in stored
    sealed = tmp_path / "for-me.age"
    sealed.write_bytes(SEALED)
    result = cli("keys", "open", str(sealed), "-o", str(tmp_path / "out"))  # with the keyring
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "out").read_bytes() == PLAIN
    assert cli("keys", "log", "--verify").exit_code == 0
    result = cli("keys", "import", str(identity))
    assert result.exit_code == 0 and "already in the keyring" in result.stderr


def test_importing_a_classic_or_broken_identity_is_one_line(
    ws: Workspace, cli, tmp_path: Path
) -> None:
    classic = tmp_path / "classic.key"
    classic.write_text(age.bech32_encode(age.X25519_IDENTITY_HRP, bytes(32)) + "\n")
    broken = tmp_path / "broken.key"
    broken.write_text(age.encode_identity(SEED)[:-3] + "qqq\n")
    gz = tmp_path / "keys.gz"
    gz.write_bytes(gzip.compress(IDENTITY_TEXT.encode()))
    for path, words in (
        (classic, "a classic X25519 identity"),
        (broken, "not an age identity"),
        (gz, "gzip-compressed data, not a public key or age identity file"),
        (tmp_path, "is a directory"),
    ):
        result = cli("keys", "import", str(path))
        assert result.exit_code == 2 and one_error_line(result.stderr), result.stderr
        assert words in result.stderr, result.stderr
    assert len(Keyring(ws).records()) == 2  # nothing was added


def _other_keyring(tmp_path: Path):  # type: ignore[no-untyped-def]
    other = Workspace(tmp_path / "other", "test").ensure()
    unlocked = Keyring(other).unlock(PASSPHRASE.encode(), create=True)
    unlocked.generate(SIGN)
    unlocked.save()
    return other, unlocked


def test_import_keeps_the_revocation_of_a_revoked_key(ws: Workspace, cli, tmp_path: Path) -> None:
    other, theirs = _other_keyring(tmp_path)
    key = theirs.signing_key()
    document = tmp_path / "doc"
    document.write_bytes(b"signed by the other workspace")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    before = tmp_path / "before.sig"
    before.write_text(sign_stream(key, io.BytesIO(document.read_bytes()), now=now).to_text())
    theirs.revoke(key.key_id, now=now + dt.timedelta(seconds=1))
    theirs.save()
    after = tmp_path / "after.sig"
    later = now + dt.timedelta(seconds=2)  # a stolen key keeps signing after its revocation
    after.write_text(sign_stream(key, io.BytesIO(document.read_bytes()), now=later).to_text())
    export = tmp_path / "theirs.pub"
    home = ["--home", str(other.root)]
    result = cli(*home, "keys", "export", "--purpose", "sign", "-o", str(export))
    assert result.exit_code == 0 and "revoked_at=" in export.read_text()

    result = cli("keys", "import", str(export), "--json")
    assert result.exit_code == 0, result.stderr
    (imported,) = result.json()["imported"]
    assert imported["state"] == REVOKED
    assert imported["revoked_at"] == (now + dt.timedelta(seconds=1)).isoformat()
    assert cli("keys", "verify", str(document), str(before)).exit_code == 0
    result = cli("keys", "verify", str(document), str(after))
    assert result.exit_code == 1 and "revoked at" in result.stderr
    assert cli("keys", "log", "--verify").exit_code == 0


def test_reimporting_a_key_picks_up_its_later_revocation(
    ws: Workspace, cli, tmp_path: Path
) -> None:
    other, theirs = _other_keyring(tmp_path)
    key = theirs.signing_key()
    export = tmp_path / "theirs.pub"
    home = ["--home", str(other.root)]
    assert cli(*home, "keys", "export", "--purpose", "sign", "-o", str(export)).exit_code == 0
    assert cli("keys", "import", str(export)).exit_code == 0  # while it is in force
    revoked_at = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=1)
    theirs.revoke(key.key_id, now=revoked_at)  # the owner revoked it a minute ago
    theirs.save()
    assert cli(*home, "keys", "export", "--purpose", "sign", "-o", str(export)).exit_code == 0
    result = cli("keys", "import", str(export), "--json")
    assert result.exit_code == 0, result.stderr
    (imported,) = result.json()["imported"]
    assert (imported["state"], imported["revoked_at"]) == (REVOKED, revoked_at.isoformat())
    assert cli("keys", "log", "--verify").exit_code == 0
    assert Keyring(ws).find(key.key_id).revoked_at == revoked_at


# --- fuzz: mutated and truncated age, identity and key files ---------------------------


def mutate(blob: bytes, edits: list[tuple[int, int, str]]) -> bytes:
    data = bytearray(blob)
    for position, value, kind in edits:
        at = position % (len(data) + 1)
        if kind == "truncate":
            del data[at:]
        elif kind == "flip" and data:
            data[at % len(data)] ^= value or 1
        elif kind == "insert":
            data[at:at] = bytes([value])
        elif data:
            del data[at % len(data)]
    return bytes(data)


EDITS = st.lists(
    st.tuples(
        st.integers(0, 1 << 30),
        st.integers(0, 255),
        st.sampled_from(["truncate", "flip", "insert", "delete"]),
    ),
    min_size=1,
    max_size=4,
)
FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def assert_clean(result, allowed: tuple[int, ...]) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code in allowed, (result.exit_code, result.stderr)
    if result.exit_code:
        assert one_error_line(result.stderr), result.stderr


@FUZZ
@given(edits=EDITS, armor=st.booleans())
def test_fuzz_a_mutated_age_file_given_to_keys_open(
    edits, armor: bool, cli, tmp_path: Path, identity: Path
) -> None:
    path = tmp_path / "fuzzed.age"
    path.write_bytes(mutate(ARMORED if armor else SEALED, edits))
    out = tmp_path / "out"
    result = cli("keys", "open", str(path), "-i", str(identity), "-o", str(out))
    assert_clean(result, (0, 1, 2))
    if result.exit_code == 0:  # only edits the format ignores (armor whitespace) succeed
        assert out.read_bytes() == PLAIN
        out.unlink()


@FUZZ
@given(edits=EDITS)
def test_fuzz_a_mutated_identity_file_given_to_keys_open(
    edits, cli, tmp_path: Path, identity: Path
) -> None:
    sealed = tmp_path / "s.age"
    sealed.write_bytes(SEALED)
    identity.write_bytes(mutate(IDENTITY_TEXT.encode(), edits))
    result = cli("keys", "open", str(sealed), "-i", str(identity), "-o", str(tmp_path / "o"))
    assert_clean(result, (0, 1, 2))


@pytest.fixture
def key_file(ws: Workspace, cli) -> bytes:
    """What an import reads: an export (signing key, recipient) and an age identity."""
    exported = cli("keys", "export").stdout
    return (exported + IDENTITY_TEXT).encode()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(edits=EDITS)
def test_fuzz_a_mutated_key_file_given_to_keys_import(
    edits, key_file: bytes, cli, tmp_path: Path
) -> None:
    path = tmp_path / "keys.pub"
    path.write_bytes(mutate(key_file, edits))
    assert_clean(cli("keys", "import", str(path)), (0, 1, 2, 3))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.booleans())
def test_fuzz_any_bytes_opened_by_the_library_raise_only_nodus_errors(
    blob: bytes, armor_prefix: bool
) -> None:
    from nodus_cli.errors import NodusError

    if armor_prefix:
        blob = age.ARMOR_BEGIN + b"\n" + blob
    with pytest.raises(NodusError):
        age.open_file(io.BytesIO(blob), io.BytesIO(), [age.HybridIdentity(SEED)])
