"""Open the store, apply migrations, journal every change."""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodus_cli.errors import StoreError, StoreLockedError, first_line
from nodus_cli.fsutil import fsync_dir, private_umask
from nodus_cli.masking import mask_args
from nodus_cli.store import guard, migrations
from nodus_cli.store.sandbox import SANDBOX_CONFIG, FileAllowance, allow_files, lock_down
from nodus_cli.workspace import Workspace

# Never reach the network: extensions that are not already installed stay off.
CONNECTION_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "TimeZone": "UTC",
}

STAGING_PREFIX = ".store-new-"  # folders where a new store is built (see _create)
DAMAGE_HINT = "restore it from an export or a backup, or start over with `nodus init --force`"


# What DuckDB says when the database file's own bytes are wrong (1.x and 2.x).
_DAMAGE_SIGNS = (
    "Corrupt database file",
    "Could not read enough bytes",
    "not a valid DuckDB database file",
    "The file is not a valid DuckDB database",
)


class StoreDamaged(StoreError):
    """The store file is truncated or its blocks fail their checksums."""


def store_damaged(path: Path) -> StoreDamaged:
    return StoreDamaged(f"store {path} is damaged (truncated or corrupt): {DAMAGE_HINT}")


def is_damage(exc: BaseException, path: Path) -> bool:
    """Whether a DuckDB error says the database file itself is broken (not the query)."""
    import duckdb

    if not isinstance(exc, duckdb.Error):
        return False
    text = str(exc)
    return any(sign in text for sign in _DAMAGE_SIGNS) and (
        str(path) in text or "Corrupt database file" in text
    )


def _current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


@dataclass(frozen=True)
class Invocation:
    """Who ran which command with which (masked) arguments, for the journal."""

    command: str
    args: list[str] = field(default_factory=list)
    user: str = field(default_factory=_current_user)
    host: str = field(default_factory=socket.gethostname)

    @classmethod
    def from_argv(cls, command: str, argv: Sequence[str]) -> Invocation:
        return cls(command, mask_args(argv))


def _summary_json(summary: dict[str, Any]) -> str:
    return json.dumps(summary, default=str, sort_keys=True)


TextRedactor = Callable[[str], str]


def _redact_values(value: Any, redactor: TextRedactor) -> Any:
    """``value`` with every text in it (at any depth, keys aside) passed through ``redactor``."""
    if isinstance(value, str):
        return redactor(value)
    if isinstance(value, dict):
        return {key: _redact_values(item, redactor) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [_redact_values(item, redactor) for item in value]
    return value


Fold = Callable[[str, dict[str, Any]], tuple[str, dict[str, Any]]]


class JournalRun:
    """How one invocation's changes fold into its single journal row.

    ``folder`` gets each change's outcome and summary and returns the row's new ones
    (by default the last change's); ``finish_journal_row`` sets the final ones.
    """

    def __init__(self, folder: Fold | None = None) -> None:
        self.row_id: int | None = None
        self.inserted_now = False  # the row was inserted in the open transaction
        self.final: tuple[str, dict[str, Any]] | None = None
        self._folder = folder

    def fold(self, outcome: str, summary: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if self.final is not None:
            return self.final
        return self._folder(outcome, summary) if self._folder else (outcome, summary)


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflicting" in text or "could not set" in text)


def _connect(
    path: Path,
    *,
    read_only: bool,
    lock_timeout: float,
    config: dict[str, str | bool | int | float | list[str]] = CONNECTION_CONFIG,
) -> Any:
    import duckdb

    deadline = time.monotonic() + lock_timeout
    delay = 0.02
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=config)
        except duckdb.Error as exc:
            if not _is_lock_error(exc):
                if is_damage(exc, path):
                    raise store_damaged(path) from exc
                raise StoreError(f"cannot open store {path}: {first_line(exc)}") from exc
            if time.monotonic() >= deadline:
                holder = re.search(r"PID (\d+)", str(exc))
                who = f" (held by PID {holder.group(1)})" if holder else ""
                raise StoreLockedError(
                    f"store {path} is locked by another process{who}; gave up after "
                    f"{lock_timeout:g} s (raise --lock-timeout to wait longer)"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


def _schema_version(con: Any, path: Path) -> int:
    import duckdb

    try:
        return _read_schema_version(con)
    except duckdb.Error as exc:
        raise store_damaged(path) from exc


def _read_schema_version(con: Any) -> int:
    has_meta = con.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema = 'main' AND table_name = 'meta'"
    ).fetchone()[0]
    if not has_meta:
        return 0
    row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


class Store:
    """An open connection to a workspace's store.

    Use ``change()`` for every state change so that the journal row is written in
    the same transaction as the change itself. Every commit and checkpoint of a
    writable store runs under the checkpoint guard (``guard.py``), so a process killed
    while DuckDB rewrites its metadata leaves a store the next open can repair.
    A ``sandboxed`` store is read-only and locked down (``sandbox.py``): the only
    kind on which SQL that a user or a file supplied may run.
    """

    def __init__(
        self,
        con: Any,
        path: Path,
        *,
        read_only: bool,
        invocation: Invocation,
        sandboxed: bool = False,
    ) -> None:
        self.con = con
        self.path = path
        self.read_only = read_only
        self.sandboxed = sandboxed
        self.invocation = invocation
        # Open as long as the connection: closing a descriptor of the database file
        # earlier would drop DuckDB's lock on it.
        self._db_fd = None if read_only else os.open(path, os.O_RDONLY)
        self._guard = guard.GuardState()
        self._open = True
        self._run: JournalRun | None = None  # set: changes fold into one journal row
        self._journal_redactor: TextRedactor | None = None
        guard.OPEN_IN_PROCESS[str(path)] += 1

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self.close()
        if exc is not None:
            self.raise_if_damaged(exc)

    def raise_if_damaged(self, exc: BaseException) -> None:
        """A DuckDB error that says the file is broken becomes the one-line damage error."""
        if is_damage(exc, self.path):
            raise store_damaged(self.path) from exc

    def close(self) -> None:
        """Checkpoint under the guard, so that closing the connection has nothing to write."""
        if not self._open:
            return
        self._open = False
        try:
            if self._db_fd is not None:
                if self.path.with_name(self.path.name + ".wal").exists():
                    with contextlib.suppress(Exception):  # the WAL keeps every commit anyway
                        self.checkpoint()
                guard.discard(self.path, self._guard)
            self.con.close()
        finally:
            if self._db_fd is not None:
                os.close(self._db_fd)
                self._db_fd = None
            guard.OPEN_IN_PROCESS[str(self.path)] -= 1

    @contextlib.contextmanager
    def guarded(self) -> Iterator[None]:
        """Run a statement that may checkpoint (COMMIT, CHECKPOINT) under the guard."""
        if self._db_fd is None:
            yield
            return
        with guard.guarded(self.con, self._db_fd, self.path, self._guard):
            yield

    def commit(self) -> None:
        with private_umask(), self.guarded():  # a WAL the commit creates is owner-only
            self.con.execute("COMMIT")

    def checkpoint(self) -> None:
        """Fold the WAL into the database file now (bounds the memory a long run holds)."""
        with self.guarded():
            self.con.execute("CHECKPOINT")

    @property
    def schema_version(self) -> int:
        return _schema_version(self.con, self.path)

    def redact_journal(self, redactor: TextRedactor) -> None:
        """From now on every text this store journals passes through ``redactor``.

        A redacted ingest calls it: the journal must not keep in clear (an input's path,
        a ``--source`` name, an error quoting a value) what the rows hold pseudonymised.
        Arguments and every text of a summary are covered, whoever writes the row.
        """
        previous = self._journal_redactor
        self._journal_redactor = (
            redactor if previous is None else (lambda text: redactor(previous(text)))
        )

    def _append_journal(
        self, outcome: str, summary: dict[str, Any], invocation: Invocation | None = None
    ) -> None:
        run = self._run if invocation is None else None
        if run is not None:
            outcome, summary = run.fold(outcome, summary)
        redactor = self._journal_redactor
        if redactor is not None:
            summary = _redact_values(summary, redactor)
        if run is not None and run.row_id is not None:
            self.con.execute(
                "UPDATE journal SET outcome = ?, summary = ? WHERE id = ?",
                [outcome, _summary_json(summary), run.row_id],
            )
            return
        inv = invocation or self.invocation
        args = inv.args if redactor is None else [redactor(arg) for arg in inv.args]
        row = self.con.execute(
            'INSERT INTO journal (time, command, args, "user", host, outcome, summary) '
            "VALUES (now(), ?, ?, ?, ?, ?, ?) RETURNING id",
            [
                inv.command,
                json.dumps(args),
                inv.user,
                inv.host,
                outcome,
                _summary_json(summary),
            ],
        ).fetchone()
        if run is not None and row is not None:
            run.row_id, run.inserted_now = int(row[0]), True

    @contextlib.contextmanager
    def one_journal_row(self, run: JournalRun) -> Iterator[JournalRun]:
        """Journal every change of the block in one row: the invocation's, kept current.

        Each change still commits on its own (crash-safe), and updates the row in its
        own transaction, so the row always describes what was committed. A command
        with many small changes (ingest: a transaction per window) journals once.
        """
        self._run = run
        try:
            yield run
        finally:
            self._run = None

    def finish_journal_row(self, run: JournalRun, outcome: str, summary: dict[str, Any]) -> None:
        """Replace the run's row with its final outcome and summary (or write one)."""
        run.final = (outcome, summary)
        previous, self._run = self._run, run
        try:
            self.record(outcome, summary)
        finally:
            self._run = previous

    @contextlib.contextmanager
    def change(self, summary: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Run a block in one transaction that also appends its journal row.

        The block fills the yielded summary dict. On an exception the change is
        rolled back and a journal row with outcome ``error`` is written instead.
        """
        details: dict[str, Any] = dict(summary or {})
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield details
            self._append_journal("ok", details)
            self.commit()
            self._committed()
        except BaseException as exc:
            self.con.execute("ROLLBACK")
            self._rolled_back()
            if isinstance(exc, Exception):
                with contextlib.suppress(Exception):
                    self.record("error", {**details, "error": first_line(exc)})
            raise

    def record(self, outcome: str, summary: dict[str, Any]) -> None:
        """Append a journal row on its own, for changes that live outside the store."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            self._append_journal(outcome, summary)
            self.commit()
            self._committed()
        except BaseException:
            self.con.execute("ROLLBACK")
            self._rolled_back()
            raise

    def _committed(self) -> None:
        if self._run is not None:
            self._run.inserted_now = False

    def _rolled_back(self) -> None:
        """A journal row inserted in the transaction just rolled back no longer exists."""
        if self._run is not None and self._run.inserted_now:
            self._run.row_id, self._run.inserted_now = None, False

    def table_names(self) -> list[str]:
        rows = self.con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'main' ORDER BY table_name"
        ).fetchall()
        return [row[0] for row in rows]

    def table_counts(self) -> dict[str, int]:
        return {
            name: self.con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
            for name in self.table_names()
        }


def _too_new(path: Path, version: int) -> StoreError:
    return StoreError(
        f"store {path} has schema version {version}, newer than this nodus "
        f"understands ({migrations.REGISTRY.version}); upgrade nodus to use it"
    )


def _migrate(store: Store, invocation: Invocation) -> None:
    con, path = store.con, store.path
    known, latest = migrations.REGISTRY.migrations, migrations.REGISTRY.version
    con.execute("BEGIN TRANSACTION")
    try:
        current = _schema_version(con, path)
        if current > latest:
            raise _too_new(path, current)
        pending = [m for m in known if m.version > current]
        for migration in pending:
            migration.apply(con)
        if pending:
            con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(latest)])
            store._append_journal(
                "ok",
                {
                    "migrated_from": current,
                    "migrated_to": latest,
                    "migrations": [m.description for m in pending],
                },
                invocation,
            )
        store.commit()
    except BaseException as exc:
        con.execute("ROLLBACK")
        if isinstance(exc, StoreError):
            raise
        if isinstance(exc, Exception):
            raise StoreError(f"cannot migrate store {path}: {first_line(exc)}") from exc
        raise


def _create(path: Path, invocation: Invocation) -> None:
    """Build a new store in a staging folder and link it into place whole.

    A process killed while DuckDB writes a new file's first headers would otherwise
    leave a file that no later run can open. Another process that created the store
    first wins; this one's copy is dropped.
    """
    for stale in path.parent.glob(STAGING_PREFIX + "*"):
        with contextlib.suppress(OSError):  # a creation killed long ago (one takes < 1 s)
            if time.time() - stale.stat().st_mtime > 3600:
                shutil.rmtree(stale)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=path.parent))
    try:
        fresh = staging / path.name
        store = Store(
            _connect(fresh, read_only=False, lock_timeout=0),
            fresh,
            read_only=False,
            invocation=invocation,
        )
        try:
            _migrate(store, invocation)
        finally:
            store.close()
        try:
            os.link(fresh, path)  # never replaces a store another process made meanwhile
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links
            if not path.exists():
                os.rename(fresh, path)
        fsync_dir(path.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _empty_store(invocation: Invocation, sandbox: FileAllowance | None = None) -> Store:
    """A read-only store with every table and no rows, outside any workspace.

    What a reading command sees where nothing was recorded yet: it runs (empty
    tables, an empty journal) and leaves no store or workspace behind. The file lives
    in a private temporary folder removed at once (the open connection keeps it).
    """
    staging = Path(tempfile.mkdtemp(prefix="nodus-empty-"))
    try:
        path = staging / "store.duckdb"
        with private_umask():
            _create(path, Invocation("migrate", [], invocation.user, invocation.host))
        con = _read_only_connection(path, 0, sandbox)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _read_only_store(con, path, invocation, sandbox)


def set_aside(path: Path) -> Path | None:
    """Move a store (with its WAL and guard) aside under a dated name, to start over.

    Nothing is deleted: the old file stays beside the new store for a later rescue.
    Refused while another process has the store open.
    """
    if not path.exists():
        return None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    kept = path.with_name(f"{path.name}.broken-{stamp}")
    fd = os.open(path, os.O_RDWR)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the lock DuckDB takes
        except OSError:
            raise StoreLockedError(
                f"store {path} is open in another process; stop it before starting over"
            ) from None
        for suffix in (".wal", ".guard"):
            companion = path.with_name(path.name + suffix)
            if companion.exists():
                os.rename(companion, kept.with_name(kept.name + suffix))
        os.rename(path, kept)
        fsync_dir(path.parent)
    finally:
        os.close(fd)
    return kept


def open_store(
    workspace: Workspace,
    *,
    read_only: bool = False,
    lock_timeout: float = 10.0,
    invocation: Invocation | None = None,
    sandbox: FileAllowance | None = None,
) -> Store:
    """Open (creating and migrating as needed) the workspace's store.

    ``read_only`` never creates anything in the workspace: without a store it is an
    empty one (``_empty_store``).

    A store written by a newer nodus is refused, never altered. When another
    process holds the lock, wait up to ``lock_timeout`` seconds. With ``sandbox``
    the store is opened read-only and locked down, for user SQL (``open_user_sql``).
    """
    invocation = invocation or Invocation("library")
    latest = migrations.REGISTRY.version  # before anything: nothing registered is a bug
    path = workspace.store_path
    if sandbox is not None and not read_only:
        raise ValueError("a sandboxed store is read-only")
    if read_only and not path.exists():  # a reading command never creates a store
        return _empty_store(invocation, sandbox)
    workspace.make_private()  # the store holds secrets: an older nodus left it 0644
    repaired = guard.repair(path) if path.exists() else 0
    if read_only and path.exists() and not repaired:
        con = _read_only_connection(path, lock_timeout, sandbox)
        version = _schema_version(con, path)
        if version == latest:
            return _read_only_store(con, path, invocation, sandbox)
        con.close()
        if version > latest:
            raise _too_new(path, version)
    workspace.ensure()
    migrating = Invocation("migrate", [], invocation.user, invocation.host)
    if not path.exists():
        with private_umask():
            _create(path, migrating)
    con = _connect(path, read_only=False, lock_timeout=lock_timeout)
    store = Store(con, path, read_only=False, invocation=invocation)
    try:
        _migrate(store, migrating)
        if repaired:
            store.record("ok", {"recovered": "torn checkpoint", "blocks_restored": repaired})
    except BaseException:
        store.close()
        raise
    if not read_only:
        return store
    store.close()
    con = _read_only_connection(path, lock_timeout, sandbox)
    return _read_only_store(con, path, invocation, sandbox)


def _read_only_connection(path: Path, lock_timeout: float, sandbox: FileAllowance | None) -> Any:
    config = CONNECTION_CONFIG if sandbox is None else SANDBOX_CONFIG
    return _connect(path, read_only=True, lock_timeout=lock_timeout, config=config)


def _read_only_store(
    con: Any, path: Path, invocation: Invocation, sandbox: FileAllowance | None
) -> Store:
    if sandbox is not None:
        try:
            lock_down(con, sandbox)
        except BaseException:
            con.close()
            raise
    return Store(con, path, read_only=True, invocation=invocation, sandboxed=sandbox is not None)


def open_user_sql(
    workspace: Workspace,
    *,
    allow: Sequence[Path] = (),
    lock_timeout: float = 10.0,
    invocation: Invocation | None = None,
) -> Store:
    """The store as SQL that a user or a file supplied may see it: read-only, no files
    but ``allow`` (never the workspace's own), no extensions, configuration locked.

    Every command that runs such SQL on the store opens it with this, and runs
    nothing of its own that writes while it is open.
    """
    allowance = allow_files(allow, protected=[workspace.root])
    return open_store(
        workspace,
        read_only=True,
        lock_timeout=lock_timeout,
        invocation=invocation,
        sandbox=allowance,
    )
