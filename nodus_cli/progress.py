"""How long-running library work says how far it has come.

A library calls a :class:`Progress` it was given; it never draws anything. The CLI
passes one that shows a bar on a terminal (``nodus_cli.cli.progressbar.progress``); a
plain ``advance(amount)`` function is accepted too (see :func:`reporter`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable


@runtime_checkable
class Progress(Protocol):
    def total(
        self, amount: float | None, items: int | None = None, unit: str | None = None
    ) -> None:
        """The whole job: ``amount`` units (bytes, rows, points) and ``items`` (files);
        ``unit`` names the units when the caller cannot know them beforehand."""

    def advance(self, amount: float = 0, items: int = 0) -> None:
        """``amount`` more units are done, and ``items`` more whole items."""

    def stage(self, text: str) -> None:
        """What is being done now, in a few words (an engine's stage, say)."""


ProgressLike = Progress | Callable[[float], None]


class _Silent:
    def total(
        self, amount: float | None, items: int | None = None, unit: str | None = None
    ) -> None:
        pass

    def advance(self, amount: float = 0, items: int = 0) -> None:
        pass

    def stage(self, text: str) -> None:
        pass


class _Calls(_Silent):
    """A bare ``advance(amount)`` function as a Progress: totals and stages are dropped."""

    def __init__(self, advance: Callable[[float], None]) -> None:
        self._advance = advance

    def advance(self, amount: float = 0, items: int = 0) -> None:
        if amount:
            self._advance(amount)


SILENT: Progress = _Silent()


def reporter(on_progress: ProgressLike | None) -> Progress:
    """The Progress to call for ``on_progress`` (nothing, a Progress or a function)."""
    if on_progress is None:
        return SILENT
    if isinstance(on_progress, Progress):
        return on_progress
    return _Calls(on_progress)
