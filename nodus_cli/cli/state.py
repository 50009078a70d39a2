"""Global options of one invocation and the helpers commands use to reach the workspace."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nodus_cli.workspace import Workspace, find_workspace

if TYPE_CHECKING:
    from nodus_cli.store import Store

DEFAULT_LOCK_TIMEOUT = 10.0


@dataclass
class CliState:
    home: str | None = None
    lock_timeout: float | None = None
    no_color: bool = False
    quiet: bool = False
    verbose: int = 0
    wide: bool = False  # tables show every cell whole, even on a terminal
    argv: list[str] = field(default_factory=list)
    # the output options as parsed, to refuse --json with another --format
    format_given: Any = None
    json_given: bool = False


STATE = CliState()


def reset(argv: list[str]) -> None:
    """Start a fresh invocation (the test runner calls the app many times per process)."""
    global STATE
    STATE = CliState(argv=list(argv))


def workspace() -> Workspace:
    return find_workspace(STATE.home)


def lock_timeout(ws: Workspace) -> float:
    if STATE.lock_timeout is not None:
        return STATE.lock_timeout
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
    invocation = Invocation.from_argv(command_path(), STATE.argv)
    return _open(ws, read_only=read_only, lock_timeout=lock_timeout(ws), invocation=invocation)


def open_user_sql(allow_files: Sequence[Path] = ()) -> Store:
    """The store sandboxed for SQL a user or a file supplied (read-only, locked down)."""
    from nodus_cli.cli.output import detail
    from nodus_cli.store import Invocation
    from nodus_cli.store.db import open_user_sql as _open

    install_schemas()
    ws = workspace()
    detail(f"workspace {ws.root} (found by {ws.found_by}), store {ws.store_path} (sandboxed)")
    invocation = Invocation.from_argv(command_path(), STATE.argv)
    return _open(ws, allow=allow_files, lock_timeout=lock_timeout(ws), invocation=invocation)


def command_path() -> str:
    """The running command without the program name, e.g. ``keys rotate``."""
    from typer._click.globals import get_current_context

    ctx = get_current_context(silent=True)
    return " ".join(ctx.command_path.split()[1:]) if ctx else "nodus"


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()
