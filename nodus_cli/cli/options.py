"""The options several commands share, each declared once.

A command takes one as ``fmt: FormatOption = None``; an option whose help names
what the command filters (``--since``: "only lines", "only points") is made by a
function, so the flag, its type and its settings still live here. A fix made here
reaches every command that takes the option.

Imported by every command module at startup: typer and the standard library only
(and the CLI's own light modules); what parses a value is imported when it runs.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click import Context, Parameter

from nodus_cli.cli import flags
from nodus_cli.cli.output import Format
from nodus_cli.cli.passphrase import PASSPHRASE_ENV
from nodus_cli.errors import UsageError
from nodus_cli.timeparse import parse_time

# --- Output: --format, --json, -o, --wide ---------------------------------------------


def _remember_format(value: Format | None) -> Format | None:
    flags.STATE.format_given = value
    _check_format_and_json()
    return value


def _remember_json(value: bool) -> bool:
    flags.STATE.json_given = value
    _check_format_and_json()
    return value


def _check_format_and_json() -> None:
    """``--json`` asks for one JSON document: with ``-f csv`` (or table, ndjson) it is
    a contradiction, refused before the command does anything."""
    given = flags.STATE.format_given
    if flags.STATE.json_given and given is not None and given is not Format.json:
        raise UsageError(f"--json and --format {given.value} exclude each other")


FormatOption = Annotated[
    Format | None,
    typer.Option(
        "--format",
        "-f",
        help="Output format: table (default), json, ndjson or csv.",
        case_sensitive=False,
        callback=_remember_format,
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print one JSON document on stdout.", callback=_remember_json),
]


def resolve_format(fmt: Format | None, as_json: bool) -> Format:
    """The format rows are written in: ``--format``, else json for ``--json``, else a table."""
    if fmt is not None:
        return fmt
    return Format.json if as_json else Format.table


_output = typer.Option(
    "--output",
    "-o",
    help="Where to write ('-' for stdout); a file is replaced atomically.",
    show_default=False,
)
OutputOption = Annotated[Path | None, _output]
RequiredOutputOption = Annotated[Path, _output]

WIDE_HELP = "On a terminal, show every cell whole (a pipe always does)."


def set_wide(_ctx: Context, _param: Parameter, value: bool) -> bool:
    """``--wide`` after a command's name counts as much as before it."""
    if value:
        flags.STATE.wide = True
    return value


WideOption = Annotated[bool, typer.Option("--wide", help=WIDE_HELP)]

# --- Inputs: SQL files, the keyring -----------------------------------------------------

AllowFilesOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--allow-files",
        metavar="PATH",
        help="Let the SQL read this file or directory (repeatable); without it SQL reads "
        "only the store. The workspace's own files are never readable.",
        show_default=False,
    ),
]
PassphraseFileOption = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help=f"Read the keyring passphrase from the first line of this file "
        f"(default: ${PASSPHRASE_ENV}, else a prompt on a terminal).",
        show_default=False,
        dir_okay=False,
    ),
]
TrustRootOption = Annotated[
    str | None,
    typer.Option(
        "--trust-root",
        help="Trust the workspace keyring only when its key log starts at the key with "
        "this fingerprint ('nodus info' shows it; exit 3 otherwise).",
        show_default=False,
    ),
]

# --- Times and log filters ---------------------------------------------------------------


def since_option(help: str) -> Any:
    """``--since TIME``, with the help saying what it keeps."""
    return typer.Option("--since", help=help)


def until_option(help: str) -> Any:
    """``--until TIME``, with the help saying what it keeps."""
    return typer.Option("--until", help=help)


AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        metavar="TIME",
        help="Read the store as it was known at TIME: rows committed after it are hidden "
        "(nodus tables says which tables can be read so).",
    ),
]
LogSourceOption = Annotated[
    str | None, typer.Option("--source", help="Only log lines of this source.")
]


def time_or_none(text: str | None) -> datetime | None:
    """A time option's value (ISO 8601, epoch seconds, ``1h``, ``2d ago``); None when not given."""
    return parse_time(text) if text else None
