"""Hostile and unlucky bundle, proof and key files (issue 23, items 9, 11, 12, 17).

Each test reproduces a finding exactly: an edited proof hint, deeply nested JSON,
files that are not regular, and tamper classes that got the wrong exit code.
"""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Invoke


def _files_bundle(root: Path, out: Path, key: Any, files: dict[str, bytes]) -> Path:
    from nodus_cli.audit.seal import build_files

    data = root / "data"
    data.mkdir(exist_ok=True)
    for name, content in files.items():
        (data / name).write_bytes(content)
    build_files([data], out, root=root, key=key)
    return out


def _one_error_line(stderr: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("nodus: error: "), stderr
    assert "Traceback" not in stderr and "RecursionError" not in stderr


# --- 23.9: an unsigned hint must not change what a proof proves -------------------------


def test_editing_the_proof_hint_to_rows_does_not_accept_another_file(
    cli: Invoke, signer: Path, signing_key: Any, tmp_path: Path
) -> None:
    bundle = _files_bundle(tmp_path, tmp_path / "f.bundle", signing_key, {"a": b"amount=100"})
    proof = tmp_path / "a.proof"
    assert cli("audit", "prove", str(bundle), "data/a", "-o", str(proof)).exit_code == 0
    genuine = tmp_path / "genuine"
    genuine.write_bytes(b"amount=100")
    trust = ("--trust", str(signer))
    assert cli("audit", "verify-proof", str(proof), str(genuine), *trust).exit_code == 0

    hint = base64.b64encode(json.dumps({"kind": "rows", "entry": "data/a"}).encode()).decode()
    text = re.sub(r"^extra .*$", f"extra {hint}", proof.read_text(), count=1, flags=re.M)
    proof.write_text(text)
    other = tmp_path / "other"
    other.write_bytes(b"amount=100\n")  # a different file: one more byte
    result = cli("audit", "verify-proof", str(proof), str(other), *trust, "--json")
    assert result.exit_code == 1, result.stdout
    assert any("hint" in p for p in result.json()["problems"])  # type: ignore[index]


def test_a_rows_proof_still_takes_the_row_with_its_newline(
    cli: Invoke, signer: Path, tmp_path: Path
) -> None:
    from nodus_cli.store import open_store
    from nodus_cli.workspace import find_workspace

    with open_store(find_workspace()) as store:
        store.con.execute("INSERT INTO logs (level, message) VALUES ('info', 'hello')")
    bundle = tmp_path / "logs.bundle"
    assert cli("audit", "seal", "logs", "-o", str(bundle)).exit_code == 0
    proof = tmp_path / "row.proof"
    assert cli("audit", "prove", str(bundle), "0", "-o", str(proof)).exit_code == 0
    row = bundle.read_bytes().split(b"\n")[2]
    entry = tmp_path / "row"
    entry.write_bytes(row + b"\n")
    verified = cli("audit", "verify-proof", str(proof), str(entry), "--trust", str(signer))
    assert verified.exit_code == 0, verified.stdout


# --- 23.11: depth ---------------------------------------------------------------------


DEEP_OBJECT = '{"a":' * 100_000 + "1" + "}" * 100_000
DEEP_ARRAY = "[" * 5_000 + "]" * 5_000


def _replace_line(bundle: Path, number: int, line: str, out: Path) -> Path:
    lines = bundle.read_bytes().split(b"\n")
    lines[number] = line.encode()
    out.write_bytes(b"\n".join(lines))
    return out


@pytest.mark.parametrize(
    ("line", "deep"),
    [(1, DEEP_OBJECT), (1, DEEP_ARRAY), (2, DEEP_ARRAY), (3, DEEP_OBJECT)],
    ids=["header-object", "header-array", "entry-array", "trailer-object"],
)
def test_deep_json_is_a_malformed_bundle_not_a_crash(
    run_nodus, signer: Path, signing_key: Any, tmp_path: Path, line: int, deep: str
) -> None:  # type: ignore[no-untyped-def]
    bundle = _files_bundle(tmp_path, tmp_path / "f.bundle", signing_key, {"a": b"x"})
    deep_bundle = _replace_line(bundle, line, deep, tmp_path / "deep.bundle")
    for command in ("verify", "chain"):
        result = run_nodus("audit", command, str(deep_bundle), "--trust", str(signer))
        assert result.returncode == 2, (command, result.stderr)
        _one_error_line(result.stderr)


def test_deep_json_in_a_proof_hint_is_ignored_not_a_crash(
    run_nodus, signer: Path, signing_key: Any, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    bundle = _files_bundle(tmp_path, tmp_path / "f.bundle", signing_key, {"a": b"x"})
    proof = tmp_path / "a.proof"
    assert run_nodus("audit", "prove", str(bundle), "data/a", "-o", str(proof)).returncode == 0
    hint = base64.b64encode(DEEP_ARRAY.encode()).decode()
    proof.write_text(re.sub(r"^extra .*$", f"extra {hint}", proof.read_text(), flags=re.M))
    result = run_nodus(
        "audit", "verify-proof", str(proof), str(tmp_path / "data" / "a"), "--trust", str(signer)
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("digits", [20, 5000])
def test_a_huge_checkpoint_size_or_proof_index_is_malformed_not_a_crash(
    cli: Invoke, signer: Path, signing_key: Any, tmp_path: Path, digits: int
) -> None:
    """Found by the fuzz test: 5,000 digits passed the uint64 pattern, then int() raised."""
    bundle = _files_bundle(tmp_path, tmp_path / "f.bundle", signing_key, {"a": b"x"})
    proof = tmp_path / "a.proof"
    assert cli("audit", "prove", str(bundle), "data/a", "-o", str(proof)).exit_code == 0
    huge = "9" * digits
    data = bundle.read_text().replace("\nnodus/files\n1\n", f"\nnodus/files\n{huge}\n")
    bundle.write_text(data)
    result = cli("audit", "verify", str(bundle), "--trust", str(signer))
    assert result.exit_code == 2, result.stderr
    _one_error_line(result.stderr)
    assert len(result.stderr) < 200  # the value is not echoed in full
    proof.write_text(proof.read_text().replace("\nindex 0\n", f"\nindex {huge}\n"))
    result = cli("audit", "verify-proof", str(proof), str(tmp_path / "data" / "a"))
    assert result.exit_code == 2, result.stderr
    _one_error_line(result.stderr)


def test_a_repeated_signature_line_is_not_accepted(
    cli: Invoke, signer: Path, signing_key: Any, tmp_path: Path
) -> None:
    """Found by the fuzz test: a duplicated signature line changed the file, verify said ok."""
    bundle = _files_bundle(tmp_path, tmp_path / "f.bundle", signing_key, {"a": b"x"})
    data = bundle.read_bytes()
    last = data.rstrip(b"\n").rsplit(b"\n", 1)[1] + b"\n"
    bundle.write_bytes(data + last)
    result = cli("audit", "verify", str(bundle), "--trust", str(signer), "--json")
    assert result.exit_code == 1, result.stdout
    assert "repeated" in result.stdout


# --- 23.12: files that are not regular ---------------------------------------------------


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


def test_dev_zero_and_a_fifo_are_refused_as_bundles(run_nodus, signer: Path, fifo: Path) -> None:  # type: ignore[no-untyped-def]
    for target in ("/dev/zero", str(fifo)):
        for command in ("verify", "chain"):
            result = run_nodus("audit", command, target, "--trust", str(signer), timeout=60)
            assert result.returncode == 2, (target, command, result.stderr)
            _one_error_line(result.stderr)
            assert "not a regular file" in result.stderr


def test_verify_proof_refuses_a_fifo_for_the_proof_or_the_entry(
    run_nodus, signer: Path, signing_key: Any, tmp_path: Path, fifo: Path
) -> None:  # type: ignore[no-untyped-def]
    bundle = _files_bundle(tmp_path, tmp_path / "f.bundle", signing_key, {"a": b"x"})
    proof = tmp_path / "a.proof"
    assert run_nodus("audit", "prove", str(bundle), "data/a", "-o", str(proof)).returncode == 0
    entry = str(tmp_path / "data" / "a")
    for args in ((str(proof), str(fifo)), (str(fifo), entry), ("/dev/zero", entry)):
        result = run_nodus("audit", "verify-proof", *args, "--trust", str(signer), timeout=60)
        assert result.returncode == 2, (args, result.stderr)
        _one_error_line(result.stderr)


def test_trust_files_that_are_not_regular_are_refused(
    run_nodus, signing_key: Any, tmp_path: Path, fifo: Path
) -> None:  # type: ignore[no-untyped-def]
    bundle = _files_bundle(tmp_path, tmp_path / "f.bundle", signing_key, {"a": b"x"})
    document = tmp_path / "data" / "a"
    for trust in ("/dev/zero", str(fifo)):
        result = run_nodus("audit", "verify", str(bundle), "--trust", trust, timeout=60)
        assert result.returncode == 2, result.stderr
        _one_error_line(result.stderr)
        keys = run_nodus("keys", "verify", str(document), "/dev/zero", "--trust", trust, timeout=60)
        assert keys.returncode == 2, keys.stderr
        _one_error_line(keys.stderr)


def test_bounded_reader_refuses_oversized_and_special_files(tmp_path: Path) -> None:
    from nodus_cli.errors import InputError
    from nodus_cli.fsutil import read_bounded

    small = tmp_path / "small"
    small.write_bytes(b"12345")
    assert read_bounded(small, 5, "the file") == b"12345"
    with pytest.raises(InputError, match="larger than 4 bytes"):
        read_bounded(small, 4, "the file")
    with pytest.raises(InputError, match="not a regular file"):
        read_bounded("/dev/zero", 1 << 20, "the file")
    with pytest.raises(InputError, match="not a regular file"):
        read_bounded(tmp_path, 10, "the file")
    with pytest.raises(InputError, match="No such file"):
        read_bounded(tmp_path / "absent", 10, "the file")


# --- 23.17: tamper classes --------------------------------------------------------------


def test_a_flipped_bit_in_the_hash_key_is_tampering(
    cli: Invoke, signer: Path, signing_key: Any, tmp_path: Path
) -> None:
    bundle = _files_bundle(tmp_path, tmp_path / "f.bundle", signing_key, {"a": b"x"})
    data = bytearray(bundle.read_bytes())
    at = data.index(b'"hash"') + 4  # the final 'h' of the key
    data[at] ^= 0x01
    bundle.write_bytes(bytes(data))
    result = cli("audit", "verify", str(bundle), "--trust", str(signer))
    assert result.exit_code == 1, result.stderr
    assert "altered" in result.stderr


def test_a_crlf_converted_bundle_is_damage(
    cli: Invoke, signer: Path, signing_key: Any, tmp_path: Path
) -> None:
    bundle = _files_bundle(tmp_path, tmp_path / "f.bundle", signing_key, {"a": b"x"})
    bundle.write_bytes(bundle.read_bytes().replace(b"\n", b"\r\n"))
    result = cli("audit", "verify", str(bundle), "--trust", str(signer))
    assert result.exit_code == 1, result.stderr
    assert "line endings" in result.stderr


@pytest.mark.parametrize(("field", "value"), [("hash", "sha3-256"), ("kind", "blobs")])
def test_an_intact_bundle_of_an_unknown_algorithm_cannot_be_verified(
    cli: Invoke, signer: Path, signing_key: Any, tmp_path: Path, field: str, value: str
) -> None:
    """Exit 3 stays for what it means: the signed bundle is intact, nodus cannot read it."""
    from nodus_cli.audit import merkle
    from nodus_cli.audit.bundle import BundleWriter, checkpoint_for, file_entry
    from nodus_cli.audit.seal import bundle_header, sign_checkpoint

    header = bundle_header("files", "nodus/files", 1, None, signing_key)
    header.update(inputs=["data"], embed=False, **{field: value})
    bundle = tmp_path / "future.bundle"
    leaf = merkle.leaf_hash(b"x")
    with bundle.open("wb") as handle:
        writer = BundleWriter(handle, header)
        writer.add(file_entry("data/a", 1, leaf), leaf)
        manifest = writer.close_manifest({"consistency": None})
        body = checkpoint_for("nodus/files", writer.leaves, manifest, "none", "files")
        writer.finish(sign_checkpoint(body, signing_key))
    result = cli("audit", "verify", str(bundle), "--trust", str(signer))
    assert result.exit_code == 3, result.stderr
    assert f"unknown {'hash algorithm' if field == 'hash' else 'entry kind'}" in result.stderr


def test_an_unknown_algorithm_with_a_recomputed_manifest_is_still_tampering(
    cli: Invoke, signer: Path, signing_key: Any, tmp_path: Path
) -> None:
    """Editing the header and the checkpoint's manifest line breaks the signature: exit 1,
    not the "cannot verify" an intact bundle of an unknown format gets."""
    import hashlib

    bundle = _files_bundle(tmp_path, tmp_path / "f.bundle", signing_key, {"a": b"x"})
    data = bundle.read_bytes().replace(b'"hash":"sha256"', b'"hash":"sha3-256"', 1)
    cut = data.index(b"\nnodus/files\n") + 1
    manifest = hashlib.sha256(data[:cut]).hexdigest().encode()
    data = re.sub(rb"nodus-manifest [0-9a-f]{64}", b"nodus-manifest " + manifest, data)
    bundle.write_bytes(data)
    result = cli("audit", "verify", str(bundle), "--trust", str(signer), "--json")
    assert result.exit_code == 1, result.stdout + result.stderr
    assert any("bad signature" in p for p in result.json()["problems"])  # type: ignore[index]
