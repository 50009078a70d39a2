"""RFC 6962 / RFC 9162 Merkle trees: hashes, inclusion and consistency proofs.

Also the subtree generalisation of draft-ietf-plants-merkle-tree-certs (intervals
``[start, end)``), of which the RFC 9162 proofs are the ``start = 0`` case.

Strict edge policy (what every verifier here enforces, see nodus-bundle(5)):

* every hash (leaf, root, proof element) is exactly 32 bytes;
* an inclusion proof needs ``0 <= index < size``;
* a consistency proof needs ``size1 <= size2``; ``size1 = 0`` is accepted only for
  ``size2 = 0`` with an empty proof and both roots equal to the empty-tree hash
  (a proof from the empty tree proves nothing, so it is refused);
* equal sizes need an empty proof and equal roots;
* a proof must be consumed exactly: no hash missing, none left over.

Verifiers raise ``ProofError`` (exit 1) with the reason; they return nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import overload

from nodus_cli.errors import CheckFailed

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF = b"\x00"
_NODE = b"\x01"
ROOT_CHUNK = 1 << 14  # leaves per aligned chunk in packed_root (a power of two, >= 2)


class ProofError(CheckFailed):
    """A proof, root or leaf does not verify."""


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data)."""
    return hashlib.sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE + left + right).digest()


def largest_power_of_two_below(n: int) -> int:
    """The k of RFC 9162: the largest power of two strictly smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def bit_ceil(n: int) -> int:
    """The smallest power of two not less than ``n`` (1 for n <= 1)."""
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes."""
    if isinstance(leaf_hashes, PackedLeaves):
        return leaf_hashes.subtree_hash(0, len(leaf_hashes))
    return packed_root(b"".join(leaf_hashes))


def packed_root(level: bytes | bytearray) -> bytes:
    """MTH over leaf hashes packed back to back, in linear time and bounded memory.

    The leaves are taken in aligned chunks of ``ROOT_CHUNK`` (a power of two): RFC
    9162 splits a tree only at powers of two, so every chunk but the last is a
    complete subtree and the tree over the chunk roots is the tree over the leaves.
    Only one chunk's levels and the chunk roots are held at a time.
    """
    if len(level) <= ROOT_CHUNK * HASH_SIZE:
        return _level_root(bytes(level))
    step = ROOT_CHUNK * HASH_SIZE
    view = memoryview(level)
    roots = b"".join([_level_root(bytes(view[i : i + step])) for i in range(0, len(view), step)])
    return packed_root(roots)


def _level_root(level: bytes) -> bytes:
    """MTH over packed hashes, level by level; siblings are adjacent 64-byte slices."""
    if not level:
        return EMPTY_ROOT
    sha = hashlib.sha256
    while len(level) > HASH_SIZE:
        even = len(level) - len(level) % (2 * HASH_SIZE)
        paired = b"".join([sha(_NODE + level[i : i + 64]).digest() for i in range(0, even, 64)])
        level = paired + level[even:]  # an odd last node is promoted unchanged
    return level


def subtree_hash(leaf_hashes: Sequence[bytes], start: int, end: int) -> bytes:
    """MTH(D[start:end])."""
    if isinstance(leaf_hashes, PackedLeaves):
        return leaf_hashes.subtree_hash(start, end)
    return root_hash(leaf_hashes[start:end])


class PackedLeaves(Sequence[bytes]):
    """Leaf hashes packed in one bytearray (32 bytes each): flat memory for big trees.

    Leaves are only ever appended, so the root of a complete aligned chunk of
    ``ROOT_CHUNK`` leaves never changes: it is kept once computed, and the root
    plus the O(log n) subtrees of a consistency or inclusion proof hash each
    leaf about once instead of once per subtree.
    """

    def __init__(self, data: bytes | bytearray = b"") -> None:
        self.data = bytearray(data)
        self._chunk_roots: list[bytes] = []

    def append(self, digest: bytes) -> None:
        self.data += digest

    def extend(self, packed: bytes) -> None:
        """Append many leaf hashes packed back to back."""
        self.data += packed

    def subtree_hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]), reusing the roots of the complete chunks it spans."""
        if start % ROOT_CHUNK or end - start <= ROOT_CHUNK:
            return packed_root(self.data[start * HASH_SIZE : end * HASH_SIZE])
        full = end // ROOT_CHUNK  # chunks [start / ROOT_CHUNK, full) are complete
        step = ROOT_CHUNK * HASH_SIZE
        while len(self._chunk_roots) < full:
            offset = len(self._chunk_roots) * step
            self._chunk_roots.append(_level_root(bytes(self.data[offset : offset + step])))
        roots = b"".join(self._chunk_roots[start // ROOT_CHUNK : full])
        if end % ROOT_CHUNK:
            roots += _level_root(bytes(self.data[full * step : end * HASH_SIZE]))
        return packed_root(roots)

    def __len__(self) -> int:
        return len(self.data) // HASH_SIZE

    @overload
    def __getitem__(self, index: int) -> bytes: ...

    @overload
    def __getitem__(self, index: slice) -> list[bytes]: ...

    def __getitem__(self, index: int | slice) -> bytes | list[bytes]:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                return [self[i] for i in range(start, stop, step)]
            return [
                bytes(self.data[i * HASH_SIZE : (i + 1) * HASH_SIZE]) for i in range(start, stop)
            ]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return bytes(self.data[index * HASH_SIZE : (index + 1) * HASH_SIZE])


# --- proof generation -------------------------------------------------------------------


def inclusion_proof(
    leaf_hashes: Sequence[bytes], index: int, size: int | None = None
) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 section 2.1.3.1."""
    size = len(leaf_hashes) if size is None else size
    if not 0 <= index < size <= len(leaf_hashes):
        raise ValueError(f"no inclusion proof for index {index} in a tree of size {size}")
    return subtree_consistency_proof(leaf_hashes, index, index + 1, 0, size)


def consistency_proof(
    leaf_hashes: Sequence[bytes], size1: int, size2: int | None = None
) -> list[bytes]:
    """PROOF(size1, D[0:size2]) of RFC 9162 section 2.1.4.1 (empty for size1 in (0, size2))."""
    size2 = len(leaf_hashes) if size2 is None else size2
    if not 0 <= size1 <= size2 <= len(leaf_hashes):
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    if size1 == 0:
        return []
    return subtree_consistency_proof(leaf_hashes, 0, size1, 0, size2)


def subtree_inclusion_proof(
    leaf_hashes: Sequence[bytes], index: int, start: int, end: int
) -> list[bytes]:
    """Inclusion proof of leaf ``index`` in the subtree ``[start, end)``."""
    if not (valid_subtree(start, end) and start <= index < end <= len(leaf_hashes)):
        raise ValueError(f"no inclusion proof for {index} in [{start}, {end})")
    return subtree_consistency_proof(leaf_hashes, index, index + 1, start, end)


def subtree_consistency_proof(
    leaf_hashes: Sequence[bytes], start: int, end: int, lo: int, hi: int
) -> list[bytes]:
    """Proof that the subtree ``[start, end)`` is part of the tree over ``[lo, hi)``.

    The recursion of RFC 9162 SUBPROOF generalised to a subtree that need not start
    at 0: descend towards the subtree, appending the sibling of every step.
    """
    proof: list[bytes] = []
    known = True  # the verifier holds the subtree's own hash
    path: list[tuple[int, int]] = []
    while not (start == lo and end == hi):
        k = lo + largest_power_of_two_below(hi - lo)
        if end <= k:
            path.append((k, hi))
            hi = k
        elif start >= k:
            path.append((lo, k))
            lo = k
        else:  # the subtree straddles k: it starts at lo and its left part is [lo, k)
            path.append((lo, k))
            lo = k
            start = k
            known = False
    if not known:
        proof.append(subtree_hash(leaf_hashes, lo, hi))
    for a, b in reversed(path):
        proof.append(subtree_hash(leaf_hashes, a, b))
    return proof


def valid_subtree(start: int, end: int) -> bool:
    """``[start, end)`` is a subtree: start is a multiple of BIT_CEIL(end - start)."""
    return 0 <= start < end and start % bit_ceil(end - start) == 0


def find_subtrees(start: int, end: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Two adjacent subtrees covering ``[start, end)`` (draft -06 section 4.5).

    The left one is full and may begin before ``start``; the right one may be
    partial, and is empty when the interval has at most one leaf.
    """
    if not 0 <= start <= end:
        raise ValueError(f"no cover for [{start}, {end})")
    if end - start <= 1:
        return (start, end), (end, end)
    last = end - 1
    split = (start ^ last).bit_length() - 1
    mid = last & ~((1 << split) - 1)
    return (mid - bit_ceil(mid - start), mid), (mid, end)


# --- verification -----------------------------------------------------------------------


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def _check_proof(proof: Sequence[bytes]) -> None:
    for position, element in enumerate(proof):
        _check_hash(element, f"proof hash {position}")


def _fold(
    start: int, end: int, lo: int, hi: int, seed: bytes | None, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """Replay a subtree proof: return (subtree hash, tree hash) it implies.

    ``seed`` is the subtree hash the verifier trusts, or None when the first proof
    hash stands for it (the RFC 9162 "b = false" branch).
    """
    path: list[tuple[str, bool]] = []
    known = True
    while not (start == lo and end == hi):
        k = lo + largest_power_of_two_below(hi - lo)
        if end <= k:
            path.append(("right", False))
            hi = k
        elif start >= k:
            path.append(("left", False))
            lo = k
        else:
            path.append(("left", True))  # this sibling is also part of the subtree
            lo = start = k
            known = False
    needed = len(path) + (0 if known else 1)
    if len(proof) != needed:
        raise ProofError(f"proof has {len(proof)} hashes, expected {needed}")
    items = iter(proof)
    if known:
        if seed is None:
            raise ProofError("no subtree hash to start from")
        sub = tree = seed
    else:
        sub = tree = next(items)
    for side, shared in reversed(path):
        sibling = next(items)
        if side == "right":
            tree = node_hash(tree, sibling)
        else:
            tree = node_hash(sibling, tree)
            if shared:
                sub = node_hash(sibling, sub)
    return sub, tree


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 section 2.1.3.2: the leaf hash is at ``index`` in the tree ``root``."""
    _check_hash(leaf, "leaf hash")
    _check_hash(root, "root hash")
    _check_proof(proof)
    if not 0 <= index < size:
        raise ProofError(f"index {index} is outside a tree of size {size}")
    _sub, computed = _fold(index, index + 1, 0, size, leaf, proof)
    if computed != root:
        raise ProofError("inclusion proof does not lead to the root hash")


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 section 2.1.4.2 under the strict edge policy of this module."""
    _check_hash(root1, "first root hash")
    _check_hash(root2, "second root hash")
    _check_proof(proof)
    if not 0 <= size1 <= size2:
        raise ProofError(f"size {size1} cannot be a prefix of size {size2}")
    if size1 == size2:
        if proof:
            raise ProofError("equal sizes need an empty proof")
        if root1 != root2:
            raise ProofError("equal sizes but different roots")
        if size1 == 0 and root1 != EMPTY_ROOT:
            raise ProofError("the empty tree has the wrong root")
        return
    if size1 == 0:
        raise ProofError("a consistency proof from the empty tree proves nothing")
    sub, tree = _fold(0, size1, 0, size2, root1, proof)
    if sub != root1:
        raise ProofError("consistency proof does not lead to the first root")
    if tree != root2:
        raise ProofError("consistency proof does not lead to the second root")


def verify_subtree_inclusion(
    index: int, start: int, end: int, leaf: bytes, proof: Sequence[bytes], subtree_root: bytes
) -> None:
    """The leaf hash is at ``index`` in the subtree ``[start, end)`` whose hash is given."""
    _check_hash(leaf, "leaf hash")
    _check_hash(subtree_root, "subtree hash")
    _check_proof(proof)
    if not valid_subtree(start, end):
        raise ProofError(f"[{start}, {end}) is not a valid subtree")
    if not start <= index < end:
        raise ProofError(f"index {index} is outside [{start}, {end})")
    _sub, computed = _fold(index, index + 1, start, end, leaf, proof)
    if computed != subtree_root:
        raise ProofError("inclusion proof does not lead to the subtree hash")


def verify_subtree_consistency(
    start: int, end: int, size: int, subtree_root: bytes, root: bytes, proof: Sequence[bytes]
) -> None:
    """The subtree ``[start, end)`` with the given hash is part of the tree of ``size``."""
    _check_hash(subtree_root, "subtree hash")
    _check_hash(root, "root hash")
    _check_proof(proof)
    if start == end <= size:  # the empty subtree is part of every tree (draft rule)
        if proof or subtree_root != EMPTY_ROOT:
            raise ProofError("an empty subtree needs the empty-tree hash and an empty proof")
        return
    if not valid_subtree(start, end) or end > size:
        raise ProofError(f"[{start}, {end}) is not a valid subtree of a tree of size {size}")
    sub, tree = _fold(start, end, 0, size, subtree_root, proof)
    if sub != subtree_root:
        raise ProofError("consistency proof does not lead to the subtree hash")
    if tree != root:
        raise ProofError("consistency proof does not lead to the root hash")
