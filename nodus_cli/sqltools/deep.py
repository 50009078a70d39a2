"""Room for deeply nested SQL: sqlglot parses, rewrites and writes a query by recursion.

Python's default limit of 1,000 frames let sqlglot fail on 50 nested parentheses,
which DuckDB itself runs (its own limit is an expression depth of 1,000). Every
public entry point of the SQL tools runs through ``deep_recursion``: on a worker
thread with a stack big enough for ``FRAMES`` frames, so that what DuckDB accepts
nodus can parse, and what is deeper still is an input error, never a crash.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from nodus_cli.errors import InputError

FRAMES = 100_000  # sqlglot needs about 15 frames per level of parentheses
STACK_BYTES = 512 * 1024 * 1024  # address space, touched only as deep as the recursion goes

_inside = threading.local()
_limit_lock = threading.Lock()
_deep_threads = 0
_normal_limit = 0

Result = TypeVar("Result")


def deep_recursion(function: Callable[..., Result]) -> Callable[..., Result]:
    """Run ``function`` where sqlglot's recursion has room (see the module docstring)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Result:
        if getattr(_inside, "active", False):  # already on a deep thread
            return function(*args, **kwargs)
        outcome: dict[str, Any] = {}

        def work() -> None:
            _inside.active = True
            try:
                outcome["value"] = function(*args, **kwargs)
            except RecursionError:
                outcome["error"] = InputError(
                    "SQL nested too deeply for the SQL tools (DuckDB itself stops at an expression "
                    "depth of 1000)"
                )
            except BaseException as exc:  # re-raised on the caller's thread
                outcome["error"] = exc

        _raise_limit()
        try:
            previous_stack = threading.stack_size(STACK_BYTES)
            try:
                worker = threading.Thread(target=work, name="nodus-sql", daemon=True)
                worker.start()
            finally:
                threading.stack_size(previous_stack)
            worker.join()
        finally:
            _restore_limit()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    return wrapper


def _raise_limit() -> None:
    """The limit is per process: raised while any deep thread runs, restored after the
    last, so that code on the main thread's ordinary stack keeps the usual limit (C
    recursion past it, as in ``json.dumps`` of a deep value, would overflow that stack)."""
    global _deep_threads, _normal_limit
    with _limit_lock:
        if _deep_threads == 0:
            _normal_limit = sys.getrecursionlimit()
            sys.setrecursionlimit(max(_normal_limit, FRAMES))
        _deep_threads += 1


def _restore_limit() -> None:
    global _deep_threads
    with _limit_lock:
        _deep_threads -= 1
        if _deep_threads == 0:
            sys.setrecursionlimit(_normal_limit)
