"""Where a workspace lives and what it holds.

Lookup order: an explicit ``--home``, then ``NODUS_HOME``, then the nearest
``.nodus/`` folder from the current directory upward (made by ``nodus init``),
then ``$XDG_DATA_HOME/nodus`` (``~/.local/share/nodus``).
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nodus_cli.errors import WorkspaceError
from nodus_cli.fsutil import atomic_write

WORKSPACE_DIRNAME = ".nodus"
HOME_ENV = "NODUS_HOME"
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
# The files nodus makes in a workspace (the store with its WAL, guard and temp folder,
# settings, secret, spools, staging copies): only these are made private.
_OWN_FILES = ("store.duckdb", "nodus.toml", "secret.key", "query_log", ".")

SETTINGS_TEMPLATE = """\
# nodus workspace settings. Every command of this workspace reads this file.

[store]
# Seconds to wait for another nodus process to release the store's write lock.
lock_timeout = 10.0
"""


def is_workspace_dir(path: Path) -> bool:
    """Whether ``path`` looks like a nodus workspace (its settings beside its secret).

    Commands that walk a user's directories (``audit build``/``verify``) never descend
    into one: its store, secret and keyring are private, not the user's data.
    """
    return (path / "nodus.toml").is_file() and (path / "secret.key").is_file()


@dataclass(frozen=True)
class Workspace:
    """A workspace directory and the files inside it."""

    root: Path
    found_by: str  # "--home", "NODUS_HOME", ".nodus", "xdg", or "init"

    @property
    def store_path(self) -> Path:
        return self.root / "store.duckdb"

    @property
    def keyring_dir(self) -> Path:
        return self.root / "keyring"

    @property
    def settings_path(self) -> Path:
        return self.root / "nodus.toml"

    @property
    def secret_path(self) -> Path:
        """Per-workspace secret (mode 0600) that keys pseudonyms for redaction."""
        return self.root / "secret.key"

    @property
    def exists(self) -> bool:
        return self.root.is_dir()

    def ensure(self) -> Workspace:
        """Create the workspace layout if missing; never overwrite what is there."""
        import secrets

        try:
            self.root.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
            self.keyring_dir.mkdir(mode=PRIVATE_DIR, exist_ok=True)
            self.make_private()
            if not self.settings_path.exists():
                atomic_write(self.settings_path, SETTINGS_TEMPLATE.encode())
            if not self.secret_path.exists():
                atomic_write(self.secret_path, secrets.token_hex(32).encode() + b"\n", mode=0o600)
        except OSError as exc:
            raise WorkspaceError(f"cannot create workspace at {self.root}: {exc.strerror}") from exc
        return self

    def make_private(self) -> None:
        """Make the workspace readable by its owner only: 0700 folders, 0600 files.

        The store keeps every configuration generation in full, secrets included, so
        a workspace an older nodus left 0755/0644 is tightened on every open. Only
        what nodus made is touched: the folder itself (unless it is shared: sticky,
        or the home directory), the keyring, and the files named like nodus's own.
        """
        uid = os.getuid()
        try:
            if self.root.stat().st_uid != uid:
                return  # another user's workspace: theirs to keep
            for directory in (self.root, self.keyring_dir):
                _restrict(directory, PRIVATE_DIR, uid, refuse_shared=directory == self.root)
            for entry in os.scandir(self.root):
                if entry.is_file(follow_symlinks=False) and entry.name.startswith(_OWN_FILES):
                    _restrict(Path(entry.path), PRIVATE_FILE, uid)
        except OSError:  # missing, or not ours to list: opening says what is wrong
            return

    def settings(self) -> dict[str, Any]:
        """The parsed ``nodus.toml`` (empty when missing)."""
        import tomllib

        try:
            with self.settings_path.open("rb") as handle:
                return tomllib.load(handle)
        except FileNotFoundError:
            return {}
        except tomllib.TOMLDecodeError as exc:
            raise WorkspaceError(f"{self.settings_path}: invalid TOML: {exc}") from exc

    def secret(self) -> bytes:
        """The workspace secret, created on first use."""
        self.ensure()
        return bytes.fromhex(self.secret_path.read_text().strip())


def _restrict(path: Path, mode: int, uid: int, *, refuse_shared: bool = False) -> None:
    """Drop the group and other bits of ``path`` when this user owns it."""
    try:
        status = path.lstat()
    except FileNotFoundError:
        return
    if status.st_uid != uid or not status.st_mode & 0o077 or stat.S_ISLNK(status.st_mode):
        return
    if refuse_shared and (status.st_mode & stat.S_ISVTX or path == Path.home()):
        return
    with contextlib.suppress(OSError):  # a read-only file system: reading still works
        path.chmod(stat.S_IMODE(status.st_mode) & mode)


def xdg_data_home(env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if env is None else env
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "nodus"


def find_workspace(
    home: str | os.PathLike[str] | None = None,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> Workspace:
    """Resolve the workspace by the documented lookup order (it may not exist yet)."""
    env = dict(os.environ) if env is None else env
    if home:
        return Workspace(Path(home).expanduser().absolute(), "--home")
    if env.get(HOME_ENV):
        return Workspace(Path(env[HOME_ENV]).expanduser().absolute(), HOME_ENV)
    start = (cwd or Path.cwd()).absolute()
    for directory in (start, *start.parents):
        candidate = directory / WORKSPACE_DIRNAME
        if candidate.is_dir():
            return Workspace(candidate, WORKSPACE_DIRNAME)
    return Workspace(xdg_data_home(env), "xdg")


def init_workspace(
    directory: Path | None = None,
    *,
    home: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
) -> tuple[Workspace, bool]:
    """Create a workspace; return it and whether it was newly made.

    With ``directory``: ``DIRECTORY/.nodus``. Without: the workspace ``home`` (--home)
    or ``NODUS_HOME`` names, itself, else ``./.nodus``.
    """
    if directory is None:
        named = find_workspace(home, env=env)
        if named.found_by in ("--home", HOME_ENV):
            return _initialise(named, named.root)
        directory = Path(".")
    return _initialise(Workspace((directory / WORKSPACE_DIRNAME).absolute(), "init"), directory)


def _initialise(workspace: Workspace, directory: Path) -> tuple[Workspace, bool]:
    if directory.exists() and not directory.is_dir():
        raise WorkspaceError(f"{directory} is not a directory")
    created = not workspace.exists or not workspace.settings_path.exists()
    workspace.ensure()
    return workspace, created
