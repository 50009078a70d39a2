"""The one renderer every command uses: output options, JSON encoding, tables, messages.

Data goes to stdout; messages, warnings and progress go to stderr. Colour only on
a terminal, never with ``NO_COLOR`` or ``--no-color``.
"""

from __future__ import annotations

import contextlib
import csv
import enum
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nodus_cli.cli import state
from nodus_cli.jsonvalues import jsonable

if TYPE_CHECKING:
    from rich.console import Console


class Format(enum.StrEnum):
    table = "table"
    json = "json"
    ndjson = "ndjson"
    csv = "csv"


FormatOption = Annotated[
    Format | None,
    typer.Option(
        "--format",
        "-f",
        help="Output format: table (default), json, ndjson or csv.",
        case_sensitive=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def resolve_format(fmt: Format | None, as_json: bool) -> Format:
    if fmt is not None:
        return fmt
    return Format.json if as_json else Format.table


# --- JSON -----------------------------------------------------------------------------


def dumps(document: Any, *, indent: int | None = 2) -> str:
    return json.dumps(jsonable(document), indent=indent, ensure_ascii=False, allow_nan=False)


def emit_json(document: Any) -> None:
    """Print one JSON document on stdout."""
    sys.stdout.write(dumps(document) + "\n")
    sys.stdout.flush()


# --- Tables ---------------------------------------------------------------------------


# A JSON value nested deeper is shown as its text: decoding, converting and encoding
# it again each recurse once per level, and Python's recursion is limited.
MAX_JSON_DEPTH = 200


def _cell(value: Any, type_name: str) -> Any:
    if type_name == "JSON" and isinstance(value, str):
        try:
            decoded = json.loads(value)
        except (ValueError, RecursionError):
            return value
        # every level takes at least two characters: a short text cannot be too deep
        if len(value) > 2 * MAX_JSON_DEPTH and _deeper_than(decoded, MAX_JSON_DEPTH):
            return value
        return decoded
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels in ``value`` (no recursion)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return False


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return dumps(value, indent=None)
    converted = jsonable(value)
    return converted if isinstance(converted, str) else json.dumps(converted)


def render_rows(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    fmt: Format,
    *,
    types: Sequence[str] | None = None,
    title: str | None = None,
) -> int:
    """Write rows to stdout in ``fmt``, streaming where the format allows. Returns the count."""
    type_names = list(types) if types else [""] * len(columns)
    decoded = ([_cell(value, type_names[i]) for i, value in enumerate(row)] for row in rows)
    if fmt is Format.table:
        return _render_table(columns, decoded, title)
    out = sys.stdout
    count = 0
    if fmt is Format.csv:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in decoded:
            writer.writerow([_text(value) for value in row])
            count += 1
    elif fmt is Format.ndjson:
        for row in decoded:
            out.write(dumps(dict(zip(columns, row, strict=True)), indent=None) + "\n")
            count += 1
    else:
        out.write("[")
        for row in decoded:
            if count:
                out.write(",\n ")
            out.write(dumps(dict(zip(columns, row, strict=True)), indent=None))
            count += 1
        out.write("]\n")
    out.flush()
    return count


def _render_table(columns: Sequence[str], rows: Iterable[list[Any]], title: str | None) -> int:
    from rich import box
    from rich.table import Table

    console = stdout_console()
    table = Table(
        title=title,
        box=box.SIMPLE_HEAD if console.is_terminal else box.ASCII2,
        header_style="bold" if console.is_terminal else "",
    )
    for name in columns:
        table.add_column(name, overflow="fold")
    count = 0
    for row in rows:
        table.add_row(*(_text(value) for value in row))
        count += 1
    console.print(table)
    return count


# --- Consoles and messages ------------------------------------------------------------


def colour_allowed() -> bool:
    return not (state.STATE.no_color or os.environ.get("NO_COLOR"))


def stdout_console() -> Console:
    from rich.console import Console

    terminal = state.stdout_is_terminal()
    return Console(
        file=sys.stdout,
        no_color=not colour_allowed(),
        highlight=False,
        force_terminal=terminal,
        width=None if terminal else 4096,  # a pipe gets whole lines, never folded
        soft_wrap=False,
    )


def stderr_console() -> Console:
    from rich.console import Console

    return Console(
        file=sys.stderr,
        no_color=not colour_allowed(),
        highlight=False,
        force_terminal=state.stderr_is_terminal(),
    )


def say(message: str) -> None:
    """A message for people on stderr, silenced by ``-q``."""
    if not state.STATE.quiet:
        sys.stderr.write(message + "\n")


def detail(message: str) -> None:
    """A message shown only with ``-v``."""
    if state.STATE.verbose and not state.STATE.quiet:
        sys.stderr.write(message + "\n")


def warn(message: str) -> None:
    """A warning, shown even with ``-q``."""
    sys.stderr.write(f"nodus: warning: {message}\n")


def error_line(message: str) -> None:
    sys.stderr.write(f"nodus: error: {message}\n")
    sys.stderr.flush()


@contextlib.contextmanager
def progress(description: str, total: float | None = None) -> Iterator[Callable[[float], None]]:
    """Yield an ``advance(n)`` callback backed by a rich progress bar on a terminal.

    Outside a terminal (pipes, cron) or with ``-q`` nothing at all is printed.
    """
    if state.STATE.quiet or not state.stderr_is_terminal():
        yield lambda _amount: None
        return
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr_console(),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda amount: bar.advance(task, amount)
