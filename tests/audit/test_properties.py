"""Invariants: proofs round-trip for every shape; every single-byte tamper is caught."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodus_cli.audit import merkle
from nodus_cli.audit.bundle import BundleWriter
from nodus_cli.audit.seal import build_files, bundle_header, finish_bundle
from nodus_cli.audit.verify import prove, verify_bundle, verify_chain, verify_proof
from nodus_cli.errors import NodusError

N_MAX = 128
LEAVES = [merkle.leaf_hash(i.to_bytes(2, "big")) for i in range(N_MAX)]
ROOTS = [merkle.root_hash(LEAVES[:n]) for n in range(N_MAX + 1)]
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def test_inclusion_round_trip_for_every_index_and_size() -> None:
    for size in range(1, N_MAX + 1):
        for index in range(size):
            proof = merkle.inclusion_proof(LEAVES, index, size)
            assert len(proof) <= math.ceil(math.log2(size)) if size > 1 else proof == []
            merkle.verify_inclusion(index, size, LEAVES[index], proof, ROOTS[size])


def test_consistency_round_trip_for_every_pair() -> None:
    for size2 in range(1, N_MAX + 1):
        for size1 in range(1, size2 + 1):
            proof = merkle.consistency_proof(LEAVES, size1, size2)
            merkle.verify_consistency(size1, size2, ROOTS[size1], ROOTS[size2], proof)


@given(
    size=st.integers(2, N_MAX),
    data=st.data(),
)
@settings(max_examples=300, deadline=None)
def test_any_altered_inclusion_proof_is_rejected(size: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, size - 1))
    proof = merkle.inclusion_proof(LEAVES, index, size)
    how = data.draw(st.sampled_from(["flip", "drop", "extend", "index", "leaf"]))
    leaf, at = LEAVES[index], index
    if how == "flip" and proof:
        position = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        item = bytearray(proof[position])
        item[bit // 8] ^= 1 << (bit % 8)
        proof[position] = bytes(item)
    elif how == "drop" and proof:
        proof.pop(data.draw(st.integers(0, len(proof) - 1)))
    elif how == "extend":
        proof.append(LEAVES[0])
    elif how == "index":
        at = data.draw(st.integers(0, size - 1).filter(lambda i: i != index))
    else:
        leaf = LEAVES[(index + 1) % size]
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(at, size, leaf, proof, ROOTS[size])


@given(size2=st.integers(2, N_MAX), data=st.data())
@settings(max_examples=300, deadline=None)
def test_any_altered_consistency_proof_is_rejected(size2: int, data: st.DataObject) -> None:
    size1 = data.draw(st.integers(1, size2 - 1))
    proof = merkle.consistency_proof(LEAVES, size1, size2)
    position = data.draw(st.integers(0, len(proof) - 1))
    if data.draw(st.booleans()):
        item = bytearray(proof[position])
        item[data.draw(st.integers(0, 31))] ^= 1 << data.draw(st.integers(0, 7))
        proof[position] = bytes(item)
    else:
        del proof[position]
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(size1, size2, ROOTS[size1], ROOTS[size2], proof)


# --- bundles ----------------------------------------------------------------------------


def _outcome(check: Callable[[], Any]) -> int:
    """The exit code a verification would end with (0 only when all holds)."""
    try:
        return int(check().exit_code)
    except NodusError as exc:
        return exc.exit_code


@pytest.fixture(scope="module")
def files_case(tmp_path_factory: pytest.TempPathFactory, signing_key: Any) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("files")
    (root / "d").mkdir()
    for i in range(5):
        (root / "d" / f"f{i}.txt").write_bytes(f"file {i}\n".encode() * (i + 1))
    bundle = root / "files.bundle"
    build_files([root / "d"], bundle, root=root, key=signing_key)
    return {"root": root, "bundle": bundle, "bytes": bundle.read_bytes()}


def _row_chain(base: Path, key: Any, counts: Sequence[int]) -> list[Path]:
    """Row bundles of one origin, each extending the one before."""
    from nodus_cli.audit.bundle import read_bundle
    from nodus_cli.audit.seal import PrevLink

    rows = [f'{{"n":{i},"msg":"row {i}"}}'.encode() for i in range(max(counts))]
    paths = []
    prev = None
    for count in counts:
        path = base / f"rows{count}.bundle"
        with path.open("wb") as handle:
            header = {**bundle_header("rows", "nodus/t", count, prev, key), "table": "t"}
            writer = BundleWriter(handle, header)
            for row in rows[:count]:
                writer.add(row, merkle.leaf_hash(row))
            finish_bundle(writer, kind="rows", output=path, origin="nodus/t", prev=prev, key=key)
        made = read_bundle(path)
        prev = PrevLink(made.digest, made.size, made.checkpoint.root, made.origin)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def rows_case(tmp_path_factory: pytest.TempPathFactory, signing_key: Any) -> dict[str, Any]:
    """A chain of two row bundles, the second extending the first."""
    first, second = _row_chain(tmp_path_factory.mktemp("rows"), signing_key, (7, 12))
    return {"first": first, "second": second, "bytes": second.read_bytes()}


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory, signing_key: Any) -> list[Path]:
    return _row_chain(tmp_path_factory.mktemp("history"), signing_key, (3, 5, 8, 13, 21))


@given(data=st.data())
@settings(max_examples=40, deadline=None)
def test_a_removed_link_or_a_replayed_bundle_breaks_the_chain(
    data: st.DataObject, history: list[Path], trusted: Any
) -> None:
    """Dropping a bundle inside the history, or replaying an old one later, is caught.

    (Dropping the first or the last one leaves a shorter history that is still true.)
    """
    chain = list(history)
    if data.draw(st.booleans()):
        del chain[data.draw(st.integers(1, len(chain) - 2))]
    else:
        old = data.draw(st.integers(0, len(chain) - 2))
        chain.insert(data.draw(st.integers(old + 2, len(chain))), chain[old])
    assert verify_chain(chain, trusted).exit_code == 1


def test_the_whole_history_verifies(history: list[Path], trusted: Any) -> None:
    assert verify_chain(history, trusted).exit_code == 0
    assert verify_chain(history[1:-1], trusted).exit_code == 0


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_untouched_bundles_verify(files_case: dict, rows_case: dict, trusted: Any) -> None:
    assert (
        _outcome(lambda: verify_bundle(files_case["bundle"], trusted, root=files_case["root"])) == 0
    )
    second = rows_case["second"]
    assert _outcome(lambda: verify_bundle(second, trusted, prev=rows_case["first"])) == 0


@given(data=st.data())
@SETTINGS
def test_any_flipped_byte_in_a_bundle_is_detected(
    data: st.DataObject, files_case: dict, rows_case: dict, trusted: Any, tmp_path: Path
) -> None:
    case = data.draw(st.sampled_from([files_case, rows_case]))
    raw = bytearray(case["bytes"])
    raw[data.draw(st.integers(0, len(raw) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    tampered = _write(tmp_path / "tampered.bundle", bytes(raw))
    if case is files_case:
        check = lambda: verify_bundle(tampered, trusted, root=files_case["root"])  # noqa: E731
    else:
        check = lambda: verify_bundle(tampered, trusted, prev=rows_case["first"])  # noqa: E731
    assert _outcome(check) != 0


@given(data=st.data())
@SETTINGS
def test_truncation_deletion_insertion_reordering_are_detected(
    data: st.DataObject, rows_case: dict, trusted: Any, tmp_path: Path
) -> None:
    lines = rows_case["bytes"].splitlines(keepends=True)
    entries = list(range(2, 2 + 12))  # magic, header, then the 12 entry lines
    how = data.draw(st.sampled_from(["truncate", "delete", "insert", "swap"]))
    if how == "truncate":
        raw = rows_case["bytes"][: data.draw(st.integers(0, len(rows_case["bytes"]) - 1))]
    else:
        at = data.draw(st.sampled_from(entries))
        if how == "delete":
            del lines[at]
        elif how == "insert":
            lines.insert(at, lines[data.draw(st.sampled_from(entries))])
        else:
            other = data.draw(st.sampled_from([e for e in entries if e != at]))
            lines[at], lines[other] = lines[other], lines[at]
        raw = b"".join(lines)
    tampered = _write(tmp_path / "cut.bundle", raw)
    assert _outcome(lambda: verify_bundle(tampered, trusted)) != 0


@given(data=st.data())
@SETTINGS
def test_any_flipped_byte_in_a_covered_file_is_detected(
    data: st.DataObject, files_case: dict, trusted: Any
) -> None:
    target = files_case["root"] / "d" / f"f{data.draw(st.integers(0, 4))}.txt"
    original = target.read_bytes()
    raw = bytearray(original)
    raw[data.draw(st.integers(0, len(raw) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    target.write_bytes(bytes(raw))
    try:
        report = verify_bundle(files_case["bundle"], trusted, root=files_case["root"])
        assert report.exit_code == 1
        assert report.details["entries"]["changed"] == [
            target.relative_to(files_case["root"]).as_posix()
        ]
    finally:
        target.write_bytes(original)


@given(data=st.data())
@SETTINGS
def test_any_flipped_byte_in_a_proof_is_detected(
    data: st.DataObject, files_case: dict, trusted: Any, tmp_path: Path
) -> None:
    proof = tmp_path / "p.proof"
    prove(files_case["bundle"], "d/f3.txt", proof)
    entry = files_case["root"] / "d" / "f3.txt"
    assert _outcome(lambda: verify_proof(proof, entry, trusted)) == 0
    raw = bytearray(proof.read_bytes())
    position = data.draw(st.integers(0, len(raw) - 1))
    raw[position] ^= 1 << data.draw(st.integers(0, 7))
    text = bytes(raw)
    # the unsigned "extra" hint line carries no claim; every other byte is covered
    extra_line = proof.read_bytes().split(b"\n")[1]
    start = proof.read_bytes().index(extra_line)
    if start <= position < start + len(extra_line):
        return
    _write(proof, text)
    assert _outcome(lambda: verify_proof(proof, entry, trusted)) != 0


def test_killed_build_leaves_no_partial_bundle(
    tmp_path: Path, signing_key: Any, trusted: Any
) -> None:
    """SIGKILL at random points: the output is absent or a whole bundle that verifies."""
    import random
    import signal
    import time

    root = tmp_path / "in"
    root.mkdir()
    for i in range(20):
        (root / f"f{i:02d}.bin").write_bytes(os.urandom(32 << 10))
    output = tmp_path / "out.bundle"
    rng = random.Random(7)
    outcomes = set()
    for _ in range(8):
        output.unlink(missing_ok=True)
        pid = os.fork()
        if pid == 0:
            try:
                build_files([root], output, root=tmp_path, key=signing_key)
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0, 0.05))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        if output.exists():
            assert verify_bundle(output, trusted, root=tmp_path).exit_code == 0
            outcomes.add("complete")
        else:
            outcomes.add("absent")
    assert outcomes  # both are fine; a torn bundle is not


def test_edited_header_fields_never_crash_verify(
    rows_case: dict, trusted: Any, tmp_path: Path
) -> None:
    raw = rows_case["bytes"]
    header = raw.split(b"\n")[1]
    edits = [
        header.replace(b'+00:00"', b'"'),  # a sealing time without its offset
        header.replace(b'"created":"', b'"created":"x'),
        header.replace(b'"size":7', b'"size":"7"'),
        header.replace(b'"table":"t"', b'"table":7'),
    ]
    for edited in edits:
        assert edited != header
        tampered = _write(tmp_path / "edited.bundle", raw.replace(header, edited, 1))
        assert _outcome(lambda path=tampered: verify_bundle(path, trusted)) in (1, 2)
