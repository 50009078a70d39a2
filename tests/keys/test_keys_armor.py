"""ASCII-armored age files: ``keys seal --armor``, the strict fast reader, armored rewrap."""

from __future__ import annotations

import base64
import contextlib
import io
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodus_cli.keys import age, xwing
from nodus_cli.keys.errors import AgeArmorError, AgeError
from nodus_cli.keys.keyring import ENCRYPT, Keyring
from nodus_cli.workspace import Workspace

from . import test_keys
from .test_keys import one_error_line

template, ws = test_keys.template, test_keys.ws  # the keyring fixtures

SEED = bytes(range(32))
RECIPIENT = age.HybridRecipient(xwing.public_bytes(SEED))
IDENTITY = age.HybridIdentity(SEED)


def armored(data: bytes) -> bytes:
    sealed = io.BytesIO()
    age.seal(io.BytesIO(data), sealed, [RECIPIENT], armor=True)
    return sealed.getvalue()


def opened(blob: bytes) -> bytes:
    plain = io.BytesIO()
    age.open_file(io.BytesIO(blob), plain, [IDENTITY])
    return plain.getvalue()


def binary_of(armor: bytes) -> bytes:
    """The reference decoding: the armor's base64 lines, joined."""
    lines = armor.decode().splitlines()
    assert lines[0] == "-----BEGIN AGE ENCRYPTED FILE-----"
    assert lines[-1] == "-----END AGE ENCRYPTED FILE-----"
    return base64.b64decode("".join(lines[1:-1]), validate=True)


BLOCK = age.ARMOR_WRITE_SIZE  # bytes the writer encodes at a time
SAMPLE = bytes(range(256)) * 700
ARMORED_SAMPLE = armored(SAMPLE)


@pytest.mark.parametrize(
    "size", [0, 1, 47, 48, 49, 65535, 65536, 65537, BLOCK - 2000, BLOCK * 2 + 7, 3 << 20]
)
def test_armor_round_trips_at_every_boundary_with_lf_and_crlf(size: int) -> None:
    data = os.urandom(size)
    blob = armored(data)
    lines = blob.split(b"\n")
    assert lines[0] == age.ARMOR_BEGIN and lines[-2:] == [age.ARMOR_END, b""]
    assert {len(line) for line in lines[1:-3]} <= {64} and 0 < len(lines[-3]) <= 64
    assert opened(blob) == data
    assert opened(blob.replace(b"\n", b"\r\n")) == data
    assert opened(b"\n \n" + blob + b"\n\t\n") == data  # whitespace around the armor
    binary = binary_of(blob)
    assert binary.startswith(age.VERSION_LINE + b"\n") and opened(binary) == data


def test_armor_that_other_tools_would_reject_is_refused() -> None:
    data = os.urandom(200_000)
    blob = armored(data)
    lines = blob.split(b"\n")
    body = binary_of(blob)
    pem_width = base64.encodebytes(body)  # 76 columns, as PEM tools write
    cases = {
        "76 columns": age.ARMOR_BEGIN + b"\n" + pem_width + age.ARMOR_END + b"\n",
        "no END line": b"\n".join(lines[:-2]) + b"\n",
        "data after END": blob + b"junk\n",
        "a line after the short one": b"\n".join([*lines[:-2], lines[1], *lines[-2:]]),
        "a short line inside": b"\n".join([*lines[:5], lines[5][:60], *lines[6:]]),
        "an empty line inside": b"\n".join([*lines[:5], b"", *lines[5:]]),
        "a bad character": blob.replace(lines[3], lines[3][:10] + b"!" + lines[3][11:]),
        "a space inside a line": blob.replace(lines[3], lines[3][:10] + b" " + lines[3][11:]),
        "wrong BEGIN": blob.replace(b"AGE ENCRYPTED FILE-----\n", b"AGE FILE-----\n", 1),
    }
    for name, case in cases.items():
        with pytest.raises(AgeArmorError):
            opened(case)
        assert name


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 10**9), st.sampled_from(["flip", "delete", "insert", "newline", "cr"])
        ),
        min_size=1,
        max_size=3,
    )
)
def test_any_edit_of_an_armored_file_opens_to_the_original_or_fails_cleanly(edits) -> None:
    blob = bytearray(ARMORED_SAMPLE)
    for position, kind in edits:
        at = position % len(blob)
        if kind == "flip":
            blob[at] ^= 1 << (position % 7)
        elif kind == "delete":
            del blob[at]
        else:
            blob[at:at] = {"insert": b"A", "newline": b"\n", "cr": b"\r"}[kind]
    with contextlib.suppress(AgeError):
        assert opened(bytes(blob)) == SAMPLE  # only edits that change nothing succeed


def test_seal_armor_through_the_cli_and_open_it(ws: Workspace, cli, tmp_path: Path) -> None:
    plain = tmp_path / "notes.txt"
    plain.write_bytes(os.urandom(150_000))
    result = cli("keys", "seal", str(plain), "-r", "@keyring", "--armor", "-o", str(tmp_path / "a"))
    assert result.exit_code == 0, result.stderr
    blob = (tmp_path / "a").read_bytes()
    assert blob.startswith(age.ARMOR_BEGIN + b"\n") and blob.endswith(age.ARMOR_END + b"\n")
    assert binary_of(blob).startswith(b"age-encryption.org/v1\n-> mlkem768x25519 ")
    result = cli("keys", "open", str(tmp_path / "a"), "-o", str(tmp_path / "back"))
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "back").read_bytes() == plain.read_bytes()


def test_an_armored_file_is_rewrapped_and_stays_armored(ws: Workspace, cli, tmp_path: Path) -> None:
    plain = tmp_path / "secret"
    plain.write_bytes(os.urandom(300_000))
    sealed = tmp_path / "secret.age"
    assert cli("keys", "seal", str(plain), "-r", "@keyring", "-a").exit_code == 0
    before = binary_of(sealed.read_bytes())
    old_id = next(k for k in Keyring(ws).records() if k.purpose == ENCRYPT).key_id
    result = cli("keys", "rotate", "--purpose", "encrypt", "--rewrap", str(sealed), "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["rewrapped"] == [{"file": str(sealed), "was_wrapped_to": old_id}]
    after_armor = sealed.read_bytes()
    assert after_armor.startswith(age.ARMOR_BEGIN + b"\n")
    after = binary_of(after_armor)
    payload = before[before.index(b"\n--- ") + 48 :]
    assert after.endswith(payload) and after != before  # only the header changed
    assert cli("keys", "open", str(sealed), "-o", str(tmp_path / "out")).exit_code == 0
    assert (tmp_path / "out").read_bytes() == plain.read_bytes()


def test_armor_errors_are_one_line(ws: Workspace, cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.age"
    bad.write_bytes(ARMORED_SAMPLE[:-40])
    result = cli("keys", "open", str(bad), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1 and one_error_line(result.stderr), result.stderr
    assert not (tmp_path / "out").exists()
