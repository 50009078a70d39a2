"""The global options of one invocation (``--home``, ``-q``, ``-v``, ``--wide``, ...).

Below every other module of the CLI: the renderer (``output``) reads them, and so
do the helpers that reach the workspace (``state``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any


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


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()
