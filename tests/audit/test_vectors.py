"""Conformance: every vector in ../shared/vectors/merkle through nodus's own code.

Verdicts follow the published ``valid`` flag except for the documented strict edge
policy (nodus_cli/audit/merkle.py, nodus-bundle(5)); those cases are listed here
by id, so a new difference fails the test instead of hiding.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from nodus_cli.audit import merkle, note
from nodus_cli.errors import NodusError

# Published verdicts the strict policy changes (accepted upstream, rejected here).
POLICY_DIFFERENCES = {
    # size1 = 0 with size2 > 0 proves nothing (c2sp-size0 accepts it)
    "consistency-valid.json#1",
    # ct-legacy: size1 = 0 always accepted, equal sizes with a bogus proof accepted
    "merkle_test.py:test_verify_tree_consistency_always_accepts_empty_tree",
    "merkle_test.py:test_verify_tree_consistency_for_equal_tree_sizes",
    # transparency-dev does not check root lengths: a 10-byte "root" is refused here
    "consistency/additional/sizes-are-equal-one-and-proof-is-empty.json",
    "subtreeconsistency/additional/sizes-are-equal-one-and-proof-is-empty.json",
    "subtreeconsistency/additional/subtree-is-empty-sizes-are-equal-one-subtree-root-valid-tree-root-random-proof-is-empty.json",
    "subtreeconsistency/additional/subtree-is-empty-sizes-are-equal-zero-subtree-root-valid-tree-root-random-proof-is-empty.json",
}


def _load(shared: Path, name: str) -> dict[str, Any]:
    return json.loads((shared / "vectors" / "merkle" / name).read_text())


def _h(text: str) -> bytes:
    return bytes.fromhex(text)


def _accepts(check: Any, *args: Any) -> bool:
    try:
        check(*args)
    except merkle.ProofError:
        return False
    return True


def _expected(case: dict[str, Any]) -> bool:
    return bool(case["valid"]) != (case["id"] in POLICY_DIFFERENCES)


PROOF_FILES = [
    "cctv_rgdd_merkle.json",
    "ct_cpp_known_answers.json",
    "transparency_dev_proof_probes.json",
    "sigstore_rekor_real_proofs.json",
]


@pytest.mark.parametrize("name", PROOF_FILES)
def test_inclusion_and_consistency_verdicts(shared: Path, name: str) -> None:
    data = _load(shared, name)
    leaves = data.get("leaves_hex", [])
    checked = 0
    for case in data.get("inclusion", []):
        if "leaf_hash_hex" in case:
            leaf = _h(case["leaf_hash_hex"])
        else:
            raw = case.get("leaf_input_hex", leaves[case["index"]] if leaves else "")
            leaf = merkle.leaf_hash(_h(raw))
        path = [_h(p) for p in case["path_hex"]]
        got = _accepts(
            merkle.verify_inclusion, case["index"], case["size"], leaf, path, _h(case["root_hex"])
        )
        assert got == _expected(case), case["id"]
        checked += 1
    for case in data.get("consistency", []):
        got = _accepts(
            merkle.verify_consistency,
            case["size1"],
            case["size2"],
            _h(case["root1_hex"]),
            _h(case["root2_hex"]),
            [_h(p) for p in case["proof_hex"]],
        )
        assert got == _expected(case), case["id"]
        checked += 1
    assert checked == len(data.get("inclusion", [])) + len(data.get("consistency", []))


def test_valid_proofs_are_regenerated_byte_exact(shared: Path) -> None:
    for name in ("ct_cpp_known_answers.json", "cctv_rgdd_merkle.json"):
        data = _load(shared, name)
        leaves = [merkle.leaf_hash(_h(x)) for x in data["leaves_hex"]]
        for size, root in data["roots_hex"].items():
            assert merkle.root_hash(leaves[: int(size)]) == _h(root)
        for case in data["inclusion"]:
            if _expected(case) and case["size"] <= len(leaves):
                path = merkle.inclusion_proof(leaves, case["index"], case["size"])
                assert [p.hex() for p in path] == case["path_hex"], case["id"]
        for case in data["consistency"]:
            if _expected(case) and case["size1"] > 0 and case["size2"] <= len(leaves):
                proof = merkle.consistency_proof(leaves, case["size1"], case["size2"])
                assert [p.hex() for p in proof] == case["proof_hex"], case["id"]


def test_reference_tree_nodes_and_hasher(shared: Path) -> None:
    data = _load(shared, "transparency_dev_reference_tree.json")
    leaves = [merkle.leaf_hash(_h(x)) for x in data["leaves_hex"]]
    for size, root in data["roots_hex"].items():
        assert merkle.root_hash(leaves[: int(size)]) == _h(root)
    for level, nodes in enumerate(data["node_hashes_hex_by_level"]):
        for i, node in enumerate(nodes):
            width = 1 << level
            assert merkle.subtree_hash(leaves, i * width, (i + 1) * width) == _h(node)
    for source in ("transparency_dev_reference_tree.json", "ct_cpp_known_answers.json"):
        for kat in _load(shared, source)["hasher"]:
            if kat["op"] == "empty_root":
                got = merkle.EMPTY_ROOT
            elif kat["op"] == "leaf":
                got = merkle.leaf_hash(_h(kat["input_hex"]))
            else:
                got = merkle.node_hash(_h(kat["left_hex"]), _h(kat["right_hex"]))
            assert got == _h(kat["want_hex"])


def test_subtree_probes(shared: Path) -> None:
    data = _load(shared, "transparency_dev_subtree_probes.json")
    for case in data["subtree_inclusion"]:
        got = _accepts(
            merkle.verify_subtree_inclusion,
            case["index"],
            case["start"],
            case["end"],
            _h(case["leaf_hash_hex"]),
            [_h(p) for p in case["path_hex"]],
            _h(case["root_hex"]),
        )
        assert got == _expected(case), case["id"]
    for case in data["subtree_consistency"]:
        got = _accepts(
            merkle.verify_subtree_consistency,
            case["start"],
            case["end"],
            case["size"],
            _h(case["subtree_root_hex"]),
            _h(case["root_hex"]),
            [_h(p) for p in case["proof_hex"]],
        )
        assert got == _expected(case), case["id"]
    assert len(data["subtree_inclusion"]) == 204 and len(data["subtree_consistency"]) == 118


def _valid(start: int, end: int) -> bool:
    return start == end or merkle.valid_subtree(start, end)


def test_mtc_accumulated_digests(shared: Path) -> None:
    """About 55k subtree hashes and proofs, generated here, hashed as the draft prints them."""
    data = _load(shared, "mtc_accumulated_subtree_vectors.json")
    n_max = 130
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(n_max)]
    digests = [hashlib.sha256() for _ in range(4)]
    pairs = [(s, e) for e in range(n_max + 1) for s in range(e + 1) if _valid(s, e)]
    for start, end in pairs:
        subtree = merkle.subtree_hash(leaves, start, end)
        digests[0].update(f"[{start}, {end}) {subtree.hex()}\n".encode())
        for index in range(start, end):
            proof = merkle.subtree_inclusion_proof(leaves, index, start, end)
            digests[1].update(f"{index} [{start}, {end}){_hexes(proof)}\n".encode())
    for size in range(n_max + 1):
        for start, end in pairs:
            if end <= size:
                proof = (
                    merkle.subtree_consistency_proof(leaves, start, end, 0, size)
                    if start < end
                    else []
                )
                digests[2].update(f"[{start}, {end}) {size}{_hexes(proof)}\n".encode())
    for end in range(n_max + 1):
        for start in range(end + 1):
            (ls, le), (rs, re_) = merkle.find_subtrees(start, end)
            digests[3].update(f"[{ls}, {le}) [{rs}, {re_})\n".encode())
    expected = [item["final_sha256_hex"] for item in data["accumulated"]]
    assert [d.hexdigest() for d in digests] == expected


def _hexes(proof: list[bytes]) -> str:
    return "".join(" " + p.hex() for p in proof)


def _rekor_verifier(case: dict[str, Any]) -> note.Verifier:
    from cryptography.hazmat.primitives import serialization

    log = case["log"]
    name = case["checkpoint_note"].split("\n\n")[-1].split(" ")[1]
    spki = base64.b64decode(log["spki_der_b64"])
    if log["key_details"] == "PKIX_ED25519":
        return note.Ed25519Verifier(name, serialization.load_der_public_key(spki))
    return note.EcdsaVerifier(name, spki)


def test_rekor_checkpoints_bind_the_proven_roots(shared: Path) -> None:
    data = _load(shared, "sigstore_rekor_real_proofs.json")
    checked = 0
    for case in data["inclusion"]:
        if "checkpoint_note" not in case:
            continue
        opened = note.open_note(case["checkpoint_note"], [_rekor_verifier(case)])
        checkpoint = note.parse_checkpoint(opened.note.text)
        assert checkpoint.size == case["size"]
        assert checkpoint.root == _h(case["root_hex"])
        checked += 1
    assert checked == 6


def _vkeys(case: dict[str, Any]) -> list[note.Verifier]:
    from cryptography.hazmat.primitives import serialization

    verifiers = [note.parse_vkey(v) for v in case["vkeys"]]
    for raw in case.get("raw_keys", []):
        public = serialization.load_der_public_key(base64.b64decode(raw["spki_der_b64"]))
        verifiers.append(note.Ed25519Verifier(raw["name"], public))
    return verifiers


def test_signed_notes(shared: Path) -> None:
    data = _load(shared, "signed_note_examples.json")
    for case in data["notes"]:
        expect = case["expect"]
        if not expect["valid"]:
            with pytest.raises(NodusError, match=expect["error"]):
                note.open_note(case["note"], _vkeys(case))
            continue
        opened = note.open_note(case["note"], _vkeys(case))
        assert [v.name for v in opened.verified] == expect["verified_by"], case["id"]
        assert [s.name for s in opened.unverified] == expect.get("unverified", []) or (
            "unverified" not in expect
        )
        assert opened.note.to_text() == case["note"]
        if "checkpoint" in expect:
            checkpoint = note.parse_checkpoint(opened.note.text)
            assert checkpoint.origin == expect["checkpoint"]["origin"]
            assert checkpoint.size == expect["checkpoint"]["size"]
    for case in data["parse_only"]:
        parsed = note.parse_note(case["note"])
        if case.get("expect_checkpoint"):
            checkpoint = note.parse_checkpoint(parsed.text)
            want = case["expect_checkpoint"]
            assert checkpoint.origin == want["origin"] and checkpoint.size == want["size"]
            assert base64.b64encode(checkpoint.root).decode() == want["root_b64"]


def test_checkpoint_bodies_and_tlog_proofs(shared: Path) -> None:
    data = _load(shared, "signed_note_examples.json")
    for case in data["checkpoint_body_parse"]:
        if not case["valid"]:
            with pytest.raises(note.NoteError):
                note.parse_checkpoint(case["body"])
            continue
        checkpoint = note.parse_checkpoint(case["body"])
        want = case["expect"]
        assert (checkpoint.origin, checkpoint.size) == (want["origin"], want["size"])
        assert checkpoint.root == want["root_bytes_utf8"].encode()
        assert note.checkpoint_rest(case["body"]) == want["rest"]
    for case in data["tlog_proof_parse"]:
        if not case["valid"]:
            with pytest.raises(note.NoteError, match=case["error_contains"]):
                note.parse_tlog_proof(case["proof_text"])
            continue
        proof = note.parse_tlog_proof(case["proof_text"])
        want = case["expect"]
        assert (proof.index, len(proof.hashes), proof.checkpoint) == (
            want["index"],
            want["hashes"],
            want["checkpoint"],
        )
        assert proof.to_text() == case["proof_text"]


def test_ed25519_line_verifies_with_a_standard_vkey() -> None:
    """A note nodus signs opens with the C2SP vkey string a Go verifier would use."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    signed = note.sign_note(
        "example.org/log\n1\nAA==\n", [note.Ed25519Signer("example.org/log", private)]
    )
    vkey = note.Ed25519Verifier("example.org/log", private.public_key()).vkey()
    opened = note.open_note(signed.to_text(), [note.parse_vkey(vkey)])
    assert [v.name for v in opened.verified] == ["example.org/log"]
