"""What a new bundle follows (``chain_link``, moved out of cli/audit.py by issue 21)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodus_cli.audit.seal import build_files, chain_link, remember
from nodus_cli.errors import UsageError
from nodus_cli.keys.signing import SigningKey
from nodus_cli.store import open_store
from nodus_cli.workspace import Workspace


def test_the_link_is_the_stores_last_checkpoint_or_the_prev_bundle(
    tmp_path: Path, signing_key: SigningKey
) -> None:
    (tmp_path / "a.txt").write_text("a\n")
    with open_store(Workspace(tmp_path / "ws", "test")) as store:
        assert chain_link(store, "nodus/files", None) is None  # the first of its chain
        first = build_files([tmp_path / "a.txt"], tmp_path / "1.bundle", key=signing_key)
        remember(store, first)
        stored = chain_link(store, "nodus/files", None)
        given = chain_link(store, "nodus/files", tmp_path / "1.bundle")
        with pytest.raises(UsageError, match="--prev has origin 'nodus/files', not 'other'"):
            chain_link(store, "other", tmp_path / "1.bundle")
    assert stored is not None and stored == given and stored.digest == first.digest
