"""The fast sealing paths: chunked Merkle roots, batches fetched ahead, blocks written
in the background. Each must give exactly the bytes of the plain, serial path."""

from __future__ import annotations

import datetime as dt
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nodus_cli.audit import merkle, seal
from nodus_cli.audit.bundle import BundleWriter, read_bundle
from nodus_cli.audit.verify import verify_bundle


def _reference_root(leaves: list[bytes]) -> bytes:
    """MTH exactly as RFC 9162 section 2.1.1 defines it."""
    if not leaves:
        return merkle.EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = merkle.largest_power_of_two_below(len(leaves))
    return merkle.node_hash(_reference_root(leaves[:k]), _reference_root(leaves[k:]))


@pytest.mark.parametrize("chunk", [2, 4, 8])
def test_chunked_root_is_the_rfc_root(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(300)]
    monkeypatch.setattr(merkle, "ROOT_CHUNK", chunk)
    for size in [*range(0, 70), 127, 128, 129, 255, 256, 257, 300]:
        assert merkle.packed_root(b"".join(leaves[:size])) == _reference_root(leaves[:size])


@pytest.mark.parametrize("chunk", [2, 4, 8])
def test_cached_chunk_roots_give_the_rfc_subtrees_and_proofs(
    chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(40)]
    monkeypatch.setattr(merkle, "ROOT_CHUNK", chunk)
    packed = merkle.PackedLeaves()
    for size in (13, 29, 40):  # grow after chunk roots were cached: they must still hold
        packed.extend(b"".join(leaves[len(packed) : size]))
        for start in range(size + 1):
            for end in range(start, size + 1):
                expected = _reference_root(leaves[start:end])
                assert merkle.subtree_hash(packed, start, end) == expected, (start, end)
        for size1 in range(1, size + 1):
            proof = merkle.consistency_proof(packed, size1, size)
            assert proof == merkle.consistency_proof(leaves, size1, size)
        for index in range(size):
            assert merkle.inclusion_proof(packed, index) == merkle.inclusion_proof(
                leaves[:size], index
            )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Any]:
    from nodus_cli.store import open_store
    from nodus_cli.workspace import Workspace

    workspace = Workspace(tmp_path / "ws", "--home").ensure()
    with open_store(workspace) as opened:
        opened.con.execute(
            "INSERT INTO logs (time, level, message) SELECT TIMESTAMPTZ '2024-01-01 00:00:00+00'"
            " + to_seconds(i), 'info', 'line ' || i || ' é' FROM range(100) t(i)"
        )
        yield opened


@pytest.mark.parametrize("batch", [1, 7, 64])
def test_many_small_batches_seal_the_same_rows(
    store: Any, batch: int, tmp_path: Path, signing_key: Any, trusted: Any, monkeypatch: Any
) -> None:
    until = dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=90)
    whole = seal.seal_rows(store, "logs", tmp_path / "whole.bundle", key=signing_key, until=until)
    monkeypatch.setattr(seal, "ROW_BATCH", batch)
    split = seal.seal_rows(store, "logs", tmp_path / "split.bundle", key=signing_key, until=until)
    assert split.size == whole.size == 90 and split.root == whole.root
    rows = read_bundle(tmp_path / "split.bundle", keep_rows=True).entries
    assert rows == read_bundle(tmp_path / "whole.bundle", keep_rows=True).entries
    assert [row.split(b'"message":"')[1].split(b" ")[1] for row in rows[:3]] == [b"0", b"1", b"2"]
    report = verify_bundle(tmp_path / "split.bundle", trusted, store=store)
    assert report.exit_code == 0, report.to_json()


def test_prefetch_yields_in_order_and_passes_errors_on() -> None:
    def failing() -> Iterator[int]:
        yield from range(5)
        raise ValueError("broken source")

    seen = []
    with pytest.raises(ValueError, match="broken source"), seal.Prefetch(failing()) as items:
        seen.extend(items)
    assert seen == [0, 1, 2, 3, 4]


def test_leaving_prefetch_early_stops_its_thread() -> None:
    produced = []

    def endless() -> Iterator[int]:
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    before = threading.active_count()
    with pytest.raises(RuntimeError), seal.Prefetch(endless()) as items:
        for item in items:
            if item == 3:
                raise RuntimeError("consumer gave up")
    assert threading.active_count() == before
    assert len(produced) <= 3 + 3  # never more than a bounded lookahead


class _FailingHandle(io.BytesIO):
    def write(self, data: Any) -> int:
        if len(data) > 100:
            raise OSError(28, "No space left on device")
        return super().write(data)


def test_a_failed_background_write_is_raised() -> None:
    writer = BundleWriter(_FailingHandle(), {"kind": "rows"})
    with pytest.raises(OSError, match="No space"), writer:
        writer.add_block(b"x" * 200 + b"\n", merkle.leaf_hash(b"x" * 200), 1)
        writer.close_manifest({"consistency": None})


def test_background_blocks_land_in_order() -> None:
    handle = io.BytesIO()
    lines = [f"row {i}".encode() for i in range(50)]
    with BundleWriter(handle, {"kind": "rows"}) as writer:
        for start in range(0, 50, 10):
            block = b"\n".join(lines[start : start + 10]) + b"\n"
            writer.add_block(block, b"".join(map(merkle.leaf_hash, lines[start : start + 10])), 10)
        writer.add(b"last", merkle.leaf_hash(b"last"))
        writer.close_manifest({"consistency": None})
    body = handle.getvalue().split(b"\n")[2:-2]
    assert body == [*lines, b"last"] and writer.count == 51
    assert merkle.root_hash(writer.leaves) == _reference_root(
        [merkle.leaf_hash(x) for x in [*lines, b"last"]]
    )
