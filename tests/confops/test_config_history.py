"""Choosing a generation and showing history, through the library (moved out of
cli/config.py by issue 21)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodus_cli.confops.apply import apply_config
from nodus_cli.confops.history import chosen_generation, list_generations, target_key
from nodus_cli.errors import NotFoundError
from nodus_cli.store import open_store
from nodus_cli.workspace import Workspace


def test_the_generation_by_number_by_time_or_the_current_one(tmp_path: Path) -> None:
    target = tmp_path / "app.toml"
    target.write_text('password = "one"\n')
    with open_store(Workspace(tmp_path / "ws", "test")) as store:
        key = target_key(target)
        with pytest.raises(NotFoundError, match="no history"):
            chosen_generation(store, key)
        apply_config(store, target, content=b'password = "two"\n')
        current = chosen_generation(store, key)
        assert current.generation == 1
        assert chosen_generation(store, key, number=0).generation == 0
        assert chosen_generation(store, key, at=current.time).generation == 1
        generations = list_generations(store, key)
    shown = generations[1].to_json()["diff"]
    masked = generations[1].to_json(show_secrets=False)["diff"]
    assert "two" in str(shown) and "two" not in str(masked) and "***" in str(masked)
