"""Apply a new version of a configuration file atomically, check it, roll back on failure.

A switch is: record an intent (a pending generation) in the store, write a temporary
file beside TARGET, fsync, rename it over TARGET, fsync the directory, then commit the
generation. A crash anywhere leaves TARGET with the old or the new bytes; the next
``nodus config`` command settles the intent by what is on disk (an apply whose health
check never reported is rolled back) and removes leftover temporary files. Applies to
files of one directory are serialised with a lock.

The health check is ``check``, the directory lock and leftover cleanup ``locking``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nodus_cli.confops.check import CheckResult, run_check
from nodus_cli.confops.diff import Change, mask_secrets, semantic_diff, summarize
from nodus_cli.confops.edit import Edit, apply_edits
from nodus_cli.confops.formats import ConfigFormat, decode, detect_format, parse
from nodus_cli.confops.history import (
    Generation,
    content_of,
    current_generation,
    insert_generation,
    next_number,
    rollback_source,
    target_key,
)
from nodus_cli.confops.locking import TEMP_TAG, directory_lock, remove_leftovers
from nodus_cli.errors import CheckFailed, InputError, NotFoundError, UsageError
from nodus_cli.fsutil import atomic_writer
from nodus_cli.store import Store

CHECK_TIMEOUT = 30.0
Checkpoint = Callable[[str], None]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Plan:
    """What an apply would do: TARGET's current bytes, the new bytes, the changes."""

    target: str
    real_path: Path
    format: ConfigFormat
    old: bytes
    new: bytes
    changes: list[Change]

    @property
    def changed(self) -> bool:
        return self.old != self.new


def resolve_target(target: str) -> Path:
    """The regular file behind ``target`` (a symlink is followed to the file it names)."""
    real = Path(os.path.realpath(target))
    if not real.exists():
        raise NotFoundError(f"{target}: no such file (nodus config changes existing files)")
    if not real.is_file():
        raise UsageError(f"{target}: not a regular file")
    return real


def plan_config(
    target: str | os.PathLike[str],
    *,
    content: bytes | None = None,
    edits: Sequence[Edit] = (),
    expect_sha256: str | None = None,
) -> Plan:
    """Compute the new content and the semantic changes; nothing is written."""
    if (content is None) == (not edits):
        raise UsageError("give either NEW or --set/--unset")
    key = target_key(target)
    real = resolve_target(key)
    try:
        old = real.read_bytes()
    except OSError as exc:
        raise InputError(f"{key}: {exc.strerror}") from None
    if expect_sha256 is not None and sha256(old) != expect_sha256.strip().lower():
        raise CheckFailed(
            f"{key} has sha256 {sha256(old)}, not the expected {expect_sha256.strip()}: "
            "it changed since the plan was made; refusing to apply"
        )
    fmt = detect_format(key if Path(key).suffix else real, old)
    if edits:
        if fmt != "toml":
            raise UsageError(f"{key}: --set/--unset edit TOML files only")
        new = apply_edits(decode(old, key), edits, key).encode()
    else:
        assert content is not None
        new = content
    new_document = parse(new, fmt, f"new content for {key}")
    try:
        old_document = parse(old, fmt, key)
    except InputError:
        if edits:
            raise
        old_document = {}  # replacing a broken file: everything is new
    return Plan(key, real, fmt, old, new, semantic_diff(old_document, new_document))


@dataclass
class Settled:
    target: str
    generation: int | None  # None: only leftover temporary files were removed
    outcome: str
    removed: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "generation": self.generation,
            "outcome": self.outcome,
            "removed_temp_files": self.removed,
        }


@dataclass
class ApplyResult:
    plan: Plan
    source: str
    dry_run: bool = False
    generation: int | None = None
    check: CheckResult | None = None
    restored_generation: int | None = None
    rolled_back_to: int | None = None
    settled: list[Settled] = field(default_factory=list)

    @property
    def check_failed(self) -> bool:
        return self.check is not None and not self.check.passed

    def to_json(self, *, show_secrets: bool = False) -> dict[str, Any]:
        plan = self.plan
        changes = plan.changes if show_secrets else mask_secrets(plan.changes)
        return {
            "target": plan.target,
            "real_path": str(plan.real_path),
            "source": self.source,
            "dry_run": self.dry_run,
            "changed": plan.changed,
            "generation": self.generation,
            "previous_sha256": sha256(plan.old),
            "sha256": sha256(plan.new),
            "summary": summarize(plan.changes),
            "changes": [change.to_json() for change in changes],
            "check": self.check.to_json() if self.check else None,
            "restored_generation": self.restored_generation,
            "rolled_back_to": self.rolled_back_to,
            "settled": [settled.to_json() for settled in self.settled],
        }


def apply_config(
    store: Store,
    target: str | os.PathLike[str],
    *,
    content: bytes | None = None,
    edits: Sequence[Edit] = (),
    source: str | None = None,
    check: str | None = None,
    check_timeout: float = CHECK_TIMEOUT,
    expect_sha256: str | None = None,
    lock_timeout: float = 10.0,
    checkpoint: Checkpoint | None = None,
) -> ApplyResult:
    """Make TARGET hold the new content atomically, run the check, restore on failure.

    ``checkpoint`` is called with a step name at every crash-relevant point (tests
    kill the process there).
    """
    settled = settle_pending(store, lock_timeout)
    key = target_key(target)
    with directory_lock(resolve_target(key).parent, lock_timeout):
        settled += _clean(store, key)
        plan = plan_config(key, content=content, edits=edits, expect_sha256=expect_sha256)
        result = ApplyResult(plan, source or ("set" if edits else "apply"), settled=settled)
        if plan.changed:
            _switch_and_check(store, result, check, check_timeout, checkpoint or _no_checkpoint)
    return result


def rollback_config(
    store: Store,
    target: str | os.PathLike[str],
    *,
    to: int | None = None,
    dry_run: bool = False,
    check: str | None = None,
    check_timeout: float = CHECK_TIMEOUT,
    expect_sha256: str | None = None,
    lock_timeout: float = 10.0,
    checkpoint: Checkpoint | None = None,
) -> ApplyResult:
    """Apply an earlier generation's content through the same atomic path."""
    key = target_key(target)
    if dry_run:
        chosen = rollback_source(store, key, to)
        content = content_of(store, key, chosen.generation)
        plan = plan_config(key, content=content, expect_sha256=expect_sha256)
        return ApplyResult(plan, "rollback", dry_run=True, rolled_back_to=chosen.generation)
    settled = settle_pending(store, lock_timeout)  # so that "current" is what is on disk
    chosen = rollback_source(store, key, to)
    content = content_of(store, key, chosen.generation)
    result = apply_config(
        store,
        key,
        content=content,
        source="rollback",
        check=check,
        check_timeout=check_timeout,
        expect_sha256=expect_sha256,
        lock_timeout=lock_timeout,
        checkpoint=checkpoint,
    )
    result.rolled_back_to = chosen.generation
    result.settled = settled + result.settled
    return result


def _no_checkpoint(_name: str) -> None:
    pass


def _clean(store: Store, key: str) -> list[Settled]:
    """Remove leftovers beside TARGET (its directory lock is held)."""
    real = resolve_target(key)
    removed = remove_leftovers(real)
    if not removed:
        return []
    store.record("ok", {"config": "cleanup", "target": key, "removed_temp_files": removed})
    return [Settled(key, None, "cleanup", removed)]


def _switch_and_check(
    store: Store, result: ApplyResult, check: str | None, timeout: float, checkpoint: Checkpoint
) -> None:
    plan = result.plan
    if not os.access(plan.real_path.parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot write in {plan.real_path.parent}: permission denied")
    attributes = os.stat(plan.real_path)
    number, intent = _record_intent(store, plan, result.source, attributes, check)
    result.generation = number
    checkpoint("intent")
    with _settle_on_error(store, intent):
        switched_at = _write(plan.real_path, plan.new, attributes, checkpoint)
        checkpoint("switched")
        result.check = run_check(check, plan.target, timeout) if check else None
        checkpoint("checked")
    summary = {"config": "apply", "target": plan.target, "generation": number}
    summary.update(source=result.source, sha256=sha256(plan.new), **summarize(plan.changes))
    if result.check:
        summary["check"] = result.check.outcome
    check_json = result.check.to_json() if result.check else None
    if not result.check_failed:
        with store.change(summary):
            _commit(store, plan.target, number, intent, switched_at, check_json)
        checkpoint("committed")
        return
    restore_number = number + 1
    with store.change({**summary, "restored_by": restore_number}):
        _commit(store, plan.target, number, intent, switched_at, check_json)
        restore_intent = _insert_intent(
            store, plan, restore_number, plan.new, plan.old, "restore", number, None
        )
    result.restored_generation = restore_number
    checkpoint("restore-intent")
    with _settle_on_error(store, restore_intent):
        restored_at = _write(plan.real_path, plan.old, attributes, checkpoint)
        checkpoint("restored")
    restore_summary = {"config": "restore", "target": plan.target, "generation": restore_number}
    with store.change({**restore_summary, "failed_generation": number}):
        _commit(store, plan.target, restore_number, restore_intent, restored_at, None)
    checkpoint("restore-committed")


@contextlib.contextmanager
def _settle_on_error(store: Store, intent: int) -> Iterator[None]:
    """On any failure between intent and commit, let the disk decide right away."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            for row in _pending_intents(store, intent):
                _settle_one(store, row)
        raise


def _write(real: Path, data: bytes, attributes: os.stat_result, checkpoint: Checkpoint) -> datetime:
    """The atomic switch, keeping TARGET's mode and owner; returns when it happened."""
    try:
        with atomic_writer(
            real,
            mode=stat.S_IMODE(attributes.st_mode),
            owner=(attributes.st_uid, attributes.st_gid),
            tag=TEMP_TAG,
        ) as handle:
            handle.write(data)
            checkpoint("written")
    except OSError as exc:
        raise InputError(f"cannot write {real}: {exc.strerror or exc}") from None
    return datetime.now(UTC)


def _record_intent(
    store: Store, plan: Plan, source: str, attributes: os.stat_result, check: str | None
) -> tuple[int, int]:
    """One transaction: note the content found on disk if history lacks it, then the intent."""
    with store.change({"config": "intent", "target": plan.target, "source": source}) as summary:
        parent = _observe(store, plan, attributes)
        number = next_number(store, plan.target)
        intent = _insert_intent(store, plan, number, plan.old, plan.new, source, parent, check)
        summary["generation"] = number
    return number, intent


def _observe(store: Store, plan: Plan, attributes: os.stat_result) -> int:
    """Record TARGET's current content as a generation unless it is the current one."""
    current = current_generation(store, plan.target)
    old_sha = sha256(plan.old)
    if current is not None and current.sha256 == old_sha:
        return current.generation
    modified = datetime.fromtimestamp(attributes.st_mtime, UTC)
    now = datetime.now(UTC)
    number = next_number(store, plan.target)
    insert_generation(
        store,
        target=plan.target,
        generation=number,
        time=min(modified, now) if current is None else min(max(modified, current.time), now),
        source="baseline" if current is None else "external",
        status="committed",
        sha256=old_sha,
        content=plan.old,
        parent=None if current is None else current.generation,
        diff=None if current is None else _diff_json(store, plan, current),
        check=None,
        real_path=plan.real_path,
    )
    return number


def _diff_json(store: Store, plan: Plan, previous: Generation) -> list[dict[str, Any]] | None:
    try:
        before = parse(content_of(store, plan.target, previous.generation), plan.format, "")
        after = parse(plan.old, plan.format, "")
    except InputError:
        return None
    return [change.to_json() for change in semantic_diff(before, after)]


def _insert_intent(
    store: Store,
    plan: Plan,
    number: int,
    old: bytes,
    new: bytes,
    source: str,
    parent: int,
    check: str | None,
) -> int:
    """Insert generation ``number`` as pending and the intent to switch to it."""
    now = datetime.now(UTC)
    changes = plan.changes if source != "restore" else [c.reversed() for c in plan.changes]
    insert_generation(
        store,
        target=plan.target,
        generation=number,
        time=now,
        source=source,
        status="pending",
        sha256=sha256(new),
        content=new,
        parent=parent,
        diff=[change.to_json() for change in changes],
        check={"command": check, "outcome": "pending"} if check else None,
        real_path=plan.real_path,
    )
    row = store.con.execute(
        "INSERT INTO config_intents (target, generation, real_path, old_sha256, new_sha256, "
        "pid, host, started) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        [
            plan.target,
            number,
            str(plan.real_path),
            sha256(old),
            sha256(new),
            os.getpid(),
            store.invocation.host,
            now,
        ],
    ).fetchone()
    assert row is not None
    return int(row[0])


def _commit(
    store: Store,
    target: str,
    number: int,
    intent: int,
    switched_at: datetime,
    check: dict[str, Any] | None,
) -> None:
    import json

    store.con.execute(
        "UPDATE config_generations SET status = 'committed', time = ?, check_result = ? "
        "WHERE target = ? AND generation = ?",
        [switched_at, json.dumps(check) if check else None, target, number],
    )
    store.con.execute(
        "UPDATE config_intents SET settled = ?, outcome = 'committed' WHERE id = ?",
        [datetime.now(UTC), intent],
    )


def _pending_intents(store: Store, intent: int | None = None) -> list[tuple[Any, ...]]:
    sql = (
        "SELECT i.id, i.target, i.generation, i.real_path, i.old_sha256, i.new_sha256, "
        "g.source, g.parent, g.check_result FROM config_intents i "
        "JOIN config_generations g ON g.target = i.target AND g.generation = i.generation "
        "WHERE i.settled IS NULL"
        + (" AND i.id = ?" if intent is not None else "")
        + " ORDER BY i.id"
    )
    return store.con.execute(sql, [intent] if intent is not None else []).fetchall()


def has_pending(store: Store) -> bool:
    """Whether a crashed apply waits to be settled (cheap; read-only stores can ask)."""
    return bool(_pending_intents(store))


def settle_pending(store: Store, lock_timeout: float = 10.0) -> list[Settled]:
    """Settle every unsettled intent by what is on disk; remove leftover temp files."""
    settled = []
    for row in _pending_intents(store):
        real = Path(row[3])
        with directory_lock(real.parent, lock_timeout) if real.parent.is_dir() else _nothing():
            settled.append(_settle_one(store, row))
    return settled


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield


def _settle_one(store: Store, row: tuple[Any, ...]) -> Settled:
    """Finish an intent a crash (or an interrupt) left open, by what is on disk.

    A restore is completed: TARGET gets the old content back. An apply whose health
    check never reported is undone: its new bytes were never vouched for, so TARGET
    gets its previous content back and the generation is abandoned. An apply without
    a check counts if its bytes reached the disk.
    """
    import json

    intent, target, number, real_path, old_sha, new_sha, source, parent, check = row
    real = Path(real_path)
    on_disk = _disk_sha256(real)
    unchecked = bool(check) and json.loads(check).get("outcome") == "pending"
    if source == "restore" and on_disk == old_sha:
        _write(real, content_of(store, target, number), os.stat(real), _no_checkpoint)
        on_disk = new_sha
    if unchecked and on_disk == new_sha and parent is not None:
        _write(real, content_of(store, target, parent), os.stat(real), _no_checkpoint)
        on_disk = old_sha
        outcome = "rolled back"
    else:
        outcome = "committed" if on_disk == new_sha else "abandoned"
    removed = remove_leftovers(real) if real.parent.is_dir() else []
    summary = {"config": "settle", "target": target, "generation": number, "outcome": outcome}
    with store.change({**summary, "removed_temp_files": removed}):
        store.con.execute(
            "UPDATE config_generations SET status = ?, check_result = "
            "CASE WHEN check_result IS NULL THEN NULL "
            "ELSE json_merge_patch(check_result, ?) END "
            "WHERE target = ? AND generation = ?",
            [
                "committed" if outcome == "committed" else "abandoned",
                json.dumps({"outcome": "interrupted"}),
                target,
                number,
            ],
        )
        store.con.execute(
            "UPDATE config_intents SET settled = ?, outcome = ? WHERE id = ?",
            [datetime.now(UTC), outcome, intent],
        )
    return Settled(target, number, outcome, removed)


def _disk_sha256(path: Path) -> str | None:
    try:
        return sha256(path.read_bytes())
    except OSError:
        return None
