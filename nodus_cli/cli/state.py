"""The helpers commands use to reach the workspace and its store."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nodus_cli.cli import flags
from nodus_cli.workspace import Workspace, find_workspace

if TYPE_CHECKING:
    from nodus_cli.store import Store

DEFAULT_LOCK_TIMEOUT = 10.0


def workspace() -> Workspace:
    return find_workspace(flags.STATE.home)


def lock_timeout(ws: Workspace) -> float:
    if flags.STATE.lock_timeout is not None:
        return flags.STATE.lock_timeout
    value = ws.settings().get("store", {}).get("lock_timeout", DEFAULT_LOCK_TIMEOUT)
    return float(value)


def install_schemas() -> None:
    """Register every package's tables with the store; a command calls it before opening."""
    from nodus_cli import schemas

    schemas.install()


def open_store(*, read_only: bool = False) -> Store:
    """Open the current workspace's store, journaling as the running command."""
    from nodus_cli.cli.output import detail
    from nodus_cli.store import Invocation
    from nodus_cli.store import open_store as _open

    install_schemas()
    ws = workspace()
    detail(f"workspace {ws.root} (found by {ws.found_by}), store {ws.store_path}")
    invocation = Invocation.from_argv(command_path(), flags.STATE.argv)
    return _open(ws, read_only=read_only, lock_timeout=lock_timeout(ws), invocation=invocation)


def open_user_sql(allow_files: Sequence[Path] = ()) -> Store:
    """The store sandboxed for SQL a user or a file supplied (read-only, locked down)."""
    from nodus_cli.cli.output import detail
    from nodus_cli.store import Invocation
    from nodus_cli.store.db import open_user_sql as _open

    install_schemas()
    ws = workspace()
    detail(f"workspace {ws.root} (found by {ws.found_by}), store {ws.store_path} (sandboxed)")
    invocation = Invocation.from_argv(command_path(), flags.STATE.argv)
    return _open(ws, allow=allow_files, lock_timeout=lock_timeout(ws), invocation=invocation)


def command_path() -> str:
    """The running command without the program name, e.g. ``keys rotate``."""
    from typer._click.globals import get_current_context

    ctx = get_current_context(silent=True)
    return " ".join(ctx.command_path.split()[1:]) if ctx else "nodus"
