"""Property tests: a mutated bundle, proof or trust file is always a documented verdict.

Bit flips, truncation, line-ending changes, deep nesting and huge numbers must give
exit 1 (changed), 2 (unreadable) or 3 (cannot verify): never 0 for a changed
bundle, never 70 (a bug in nodus), and never a hang.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.conftest import Invoke

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory, key_template: Path) -> dict[str, bytes]:
    """A files bundle with an embedded copy, a rows-like second entry, and a proof."""
    from nodus_cli.audit.seal import build_files
    from nodus_cli.audit.verify import prove
    from nodus_cli.keys.keyring import Keyring
    from nodus_cli.workspace import Workspace
    from tests.audit.conftest import PASSPHRASE

    base = tmp_path_factory.mktemp("fuzz")
    (base / "data").mkdir()
    (base / "data" / "a.txt").write_bytes(b"amount=100")
    (base / "data" / "b.bin").write_bytes(bytes(range(256)))
    (base / "data" / "c.txt").write_text("gamma\n")
    key = Keyring(Workspace(key_template / "ws", "--home")).primary_signing_key(PASSPHRASE.encode())
    bundle = base / "f.bundle"
    build_files([base / "data"], bundle, root=base, key=key, embed=True)
    proof = base / "a.proof"
    prove(bundle, "data/a.txt", proof)
    return {
        "bundle": bundle.read_bytes(),
        "proof": proof.read_bytes(),
        "entry": b"amount=100",
        "trust": (key_template / "signing.pub").read_bytes(),
    }


def _deepen(data: bytes, at: int, depth: int, opener: bytes) -> bytes:
    closer = b"]" if opener == b"[" else b"}"
    nested = (opener if opener == b"[" else b'{"k":') * depth + b"0" + closer * depth
    return data[:at] + nested + data[at:]


def _huge_number(data: bytes, which: int, digits: int) -> bytes:
    numbers = list(re.finditer(rb"(?<![0-9A-Za-z+/])[0-9]+(?![0-9A-Za-z+/=])", data))
    if not numbers:
        return data
    match = numbers[which % len(numbers)]
    return data[: match.start()] + b"9" * digits + data[match.end() :]


@st.composite
def mutations(draw: st.DrawFn, data: bytes) -> bytes:
    kind = draw(
        st.sampled_from(
            ["flip", "truncate", "crlf", "cr", "deep", "huge", "drop-line", "dup-line", "bytes"]
        )
    )
    at = draw(st.integers(0, len(data) - 1))
    if kind == "flip":
        out = bytearray(data)
        out[at] ^= 1 << draw(st.integers(0, 7))
        return bytes(out)
    if kind == "truncate":
        return data[:at]
    if kind == "crlf":
        return data.replace(b"\n", b"\r\n")
    if kind == "cr":
        return data.replace(b"\n", b"\r")
    if kind == "deep":
        depth = draw(st.sampled_from([100, 5_000, 100_000]))
        return _deepen(data, at, depth, draw(st.sampled_from([b"[", b"{"])))
    if kind == "huge":
        return _huge_number(data, draw(st.integers(0, 50)), draw(st.sampled_from([20, 400, 5000])))
    lines = data.split(b"\n")
    index = draw(st.integers(0, len(lines) - 1))
    if kind == "drop-line":
        return b"\n".join(lines[:index] + lines[index + 1 :])
    if kind == "dup-line":
        return b"\n".join(lines[: index + 1] + lines[index:])
    return data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]


def _verdict(cli: Invoke, *args: str) -> int:
    result = cli(*args)
    assert result.exit_code != 70, result.stderr
    assert "Traceback" not in result.stderr
    return result.exit_code


@FUZZ
@given(data=st.data())
def test_a_mutated_bundle_is_never_accepted_nor_a_crash(
    data: st.DataObject, originals: dict[str, bytes], cli: Invoke, tmp_path: Path
) -> None:
    mutated = data.draw(mutations(originals["bundle"]))
    assume(mutated != originals["bundle"])
    bundle = tmp_path / "m.bundle"
    bundle.write_bytes(mutated)
    trust = tmp_path / "trust.pub"
    trust.write_bytes(originals["trust"])
    assert _verdict(cli, "audit", "verify", str(bundle), "--trust", str(trust)) in (1, 2, 3)
    assert _verdict(cli, "audit", "chain", str(bundle), "--trust", str(trust)) in (1, 2, 3)


@FUZZ
@given(data=st.data())
def test_a_mutated_proof_is_never_accepted_nor_a_crash(
    data: st.DataObject, originals: dict[str, bytes], cli: Invoke, tmp_path: Path
) -> None:
    mutated = data.draw(mutations(originals["proof"]))
    assume(mutated != originals["proof"])
    proof, entry, trust = tmp_path / "m.proof", tmp_path / "entry", tmp_path / "trust.pub"
    proof.write_bytes(mutated)
    entry.write_bytes(originals["entry"])
    trust.write_bytes(originals["trust"])
    code = _verdict(cli, "audit", "verify-proof", str(proof), str(entry), "--trust", str(trust))
    # the extra line is an unsigned hint: an edit there that still names the signed kind,
    # or that makes it unreadable (then ignored), proves the same genuine entry
    hint_only = mutated.split(b"\nindex ")[1:] == originals["proof"].split(b"\nindex ")[1:]
    assert code in ((0, 1, 2, 3) if hint_only else (1, 2, 3))


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_a_mutated_trust_file_is_a_verdict_not_a_crash(
    data: st.DataObject, originals: dict[str, bytes], cli: Invoke, tmp_path: Path
) -> None:
    """A trust file edit may hit its comment line or a key's labels (id, ``created=``)
    and still verify, never its key material or validity, and never crashes."""
    mutated = data.draw(mutations(originals["trust"]))
    bundle, trust = tmp_path / "f.bundle", tmp_path / "trust.pub"
    bundle.write_bytes(originals["bundle"])
    trust.write_bytes(mutated)
    code = _verdict(cli, "audit", "verify", str(bundle), "--trust", str(trust))
    assert code in (0, 1, 2, 3)
    if code == 0:

        def trusted(line: bytes) -> list[bytes]:
            """The fields trust rests on: signatures are matched by the key's material
            (the signed note's key hash), so the key id and created= are labels."""
            fields = line.split()
            return [f for i, f in enumerate(fields) if i != 1 and not f.startswith(b"created=")]

        keys = [trusted(line) for line in mutated.splitlines()]
        assert trusted(originals["trust"].splitlines()[1]) in keys


def test_the_unmutated_files_verify(
    originals: dict[str, bytes], cli: Invoke, tmp_path: Path
) -> None:
    """The properties above start from files that do verify."""
    bundle, proof, entry, trust = (tmp_path / n for n in ("f.bundle", "a.proof", "e", "t.pub"))
    for path, name in ((bundle, "bundle"), (proof, "proof"), (entry, "entry"), (trust, "trust")):
        path.write_bytes(originals[name])
    assert _verdict(cli, "audit", "verify", str(bundle), "--trust", str(trust)) == 0
    assert (
        _verdict(cli, "audit", "verify-proof", str(proof), str(entry), "--trust", str(trust)) == 0
    )
