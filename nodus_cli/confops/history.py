"""Generations of configuration files in the store: list, look up by number or time."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from nodus_cli.errors import NotFoundError
from nodus_cli.store import Store

_COLUMNS = (
    'target, generation, time, "user", host, source, status, sha256, size, parent, '
    "diff, check_result, real_path"
)
FAILED_CHECKS = ("failed", "timeout")


def target_key(path: str | os.PathLike[str]) -> str:
    """The name history is kept under: the absolute path as given (symlinks not followed)."""
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


@dataclass(frozen=True)
class Generation:
    """One recorded version of a configuration file (content loaded on demand)."""

    target: str
    generation: int
    time: datetime
    user: str | None
    host: str | None
    source: str
    status: str
    sha256: str
    size: int
    parent: int | None
    diff: list[dict[str, Any]] | None
    check: dict[str, Any] | None
    real_path: str | None

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Generation:
        values = list(row)
        values[10] = json.loads(values[10]) if values[10] else None
        values[11] = json.loads(values[11]) if values[11] else None
        return cls(*values)

    @property
    def check_outcome(self) -> str | None:
        return self.check.get("outcome") if self.check else None

    def to_json(self, *, show_secrets: bool = True) -> dict[str, Any]:
        """The generation as ``config history --json`` shows it; secret values masked
        in its diff unless ``show_secrets``."""
        diff = self.diff
        if diff is not None and not show_secrets:
            from nodus_cli.confops.diff import mask_change_json

            diff = [mask_change_json(change) for change in diff]
        return {
            "generation": self.generation,
            "time": self.time.isoformat(),
            "user": self.user,
            "host": self.host,
            "source": self.source,
            "status": self.status,
            "sha256": self.sha256,
            "size": self.size,
            "parent": self.parent,
            "changes": len(self.diff) if self.diff is not None else None,
            "diff": diff,
            "check": self.check,
        }


def list_generations(store: Store, target: str) -> list[Generation]:
    rows = store.con.execute(
        f"SELECT {_COLUMNS} FROM config_generations WHERE target = ? ORDER BY generation",
        [target],
    ).fetchall()
    return [Generation.from_row(row) for row in rows]


def current_generation(store: Store, target: str) -> Generation | None:
    """The latest committed generation: what nodus last put (or found) on disk."""
    row = store.con.execute(
        f"SELECT {_COLUMNS} FROM config_generations WHERE target = ? AND status = 'committed' "
        "ORDER BY generation DESC LIMIT 1",
        [target],
    ).fetchone()
    return Generation.from_row(row) if row else None


def get_generation(store: Store, target: str, number: int) -> Generation:
    row = store.con.execute(
        f"SELECT {_COLUMNS} FROM config_generations WHERE target = ? AND generation = ?",
        [target, number],
    ).fetchone()
    if not row:
        raise NotFoundError(f"{target}: no generation {number} (see nodus config history)")
    return Generation.from_row(row)


def generation_at(store: Store, target: str, when: datetime) -> Generation:
    """The committed generation in force at ``when``."""
    row = store.con.execute(
        f"SELECT {_COLUMNS} FROM config_generations WHERE target = ? AND status = 'committed' "
        "AND time <= ? ORDER BY time DESC, generation DESC LIMIT 1",
        [target, when],
    ).fetchone()
    if not row:
        if not _known(store, target):
            raise NotFoundError(f"{target}: no history (nodus config apply records it)")
        raise NotFoundError(f"{target}: no recorded content at {when.isoformat()} (before history)")
    return Generation.from_row(row)


def chosen_generation(
    store: Store, target: str, *, number: int | None = None, at: datetime | None = None
) -> Generation:
    """Generation ``number``, else the one in force ``at``, else the current one."""
    if number is not None:
        return get_generation(store, target, number)
    if at is not None:
        return generation_at(store, target, at)
    current = current_generation(store, target)
    if current is None:
        raise NotFoundError(f"{target}: no history (nodus config apply records it)")
    return current


def content_of(store: Store, target: str, number: int) -> bytes:
    row = store.con.execute(
        "SELECT content FROM config_generations WHERE target = ? AND generation = ?",
        [target, number],
    ).fetchone()
    if not row:
        raise NotFoundError(f"{target}: no generation {number} (see nodus config history)")
    return bytes(row[0])


def rollback_source(store: Store, target: str, to: int | None) -> Generation:
    """Generation ``to``, or by default the last good content before the current one.

    "Good" skips generations whose content equals the current one and those whose
    health check failed, so a rollback after an automatic restore goes further back.
    """
    if to is not None:
        chosen = get_generation(store, target, to)
        if chosen.status != "committed":
            raise NotFoundError(f"{target}: generation {to} was never in force ({chosen.status})")
        return chosen
    current = current_generation(store, target)
    if current is None:
        raise NotFoundError(f"{target}: no history (nodus config apply records it)")
    for candidate in reversed(list_generations(store, target)):
        if (
            candidate.generation < current.generation
            and candidate.status == "committed"
            and candidate.sha256 != current.sha256
            and candidate.check_outcome not in FAILED_CHECKS
        ):
            return candidate
    raise NotFoundError(f"{target}: nothing earlier to roll back to")


def next_number(store: Store, target: str) -> int:
    row = store.con.execute(
        "SELECT max(generation) FROM config_generations WHERE target = ?", [target]
    ).fetchone()
    return 0 if row is None or row[0] is None else int(row[0]) + 1


def insert_generation(
    store: Store,
    *,
    target: str,
    generation: int,
    time: datetime,
    source: str,
    status: str,
    sha256: str,
    content: bytes,
    parent: int | None,
    diff: list[dict[str, Any]] | None,
    check: dict[str, Any] | None,
    real_path: Path,
) -> None:
    invocation = store.invocation
    store.con.execute(
        f"INSERT INTO config_generations ({_COLUMNS}, content) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            target,
            generation,
            time,
            invocation.user,
            invocation.host,
            source,
            status,
            sha256,
            len(content),
            parent,
            json.dumps(diff) if diff is not None else None,
            json.dumps(check) if check is not None else None,
            str(real_path),
            content,
        ],
    )


def _known(store: Store, target: str) -> bool:
    row = store.con.execute(
        "SELECT count(*) FROM config_generations WHERE target = ?", [target]
    ).fetchone()
    return bool(row and row[0])
