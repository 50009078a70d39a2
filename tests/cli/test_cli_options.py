"""Options several commands share are declared once (nodus_cli/cli/options.py): every
command that takes one shows the same help, type and metavar, and acts on it alike."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
import typer

from nodus_cli.cli.app import app
from nodus_cli.cli.docgen import _walk
from nodus_cli.cli.output import Format

# Flags declared once for every command; a command's own --output, --since or --until
# may say what it writes or keeps, but the flag's type and settings are shared too.
SHARED = ("--json", "--passphrase-file", "--trust-root", "--allow-files", "--as-of", "--wide")
TABLE_FORMATS = {f.value for f in Format}


def _declarations() -> dict[str, list[tuple[str, Any]]]:
    """Flag -> (command path, parameter) for every option of every command."""
    found: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    for path, command in _walk(typer.main.get_command(app), ["nodus"]):
        for param in getattr(command, "params", []):
            if param.param_type_name == "option":
                found[param.opts[0]].append((" ".join(path), param))
    return found


def _shape(param: Any) -> tuple[Any, ...]:
    return (param.help, param.type.name, param.metavar, param.multiple, param.is_flag)


@pytest.mark.parametrize("flag", SHARED)
def test_a_shared_option_reads_the_same_in_every_command(flag: str) -> None:
    declarations = _declarations()[flag]
    assert len(declarations) > 1, flag
    shapes = {_shape(param) for _, param in declarations}
    assert len(shapes) == 1, {path: _shape(param) for path, param in declarations}


def test_every_table_format_option_is_the_shared_one() -> None:
    tables = [
        (path, param)
        for path, param in _declarations()["--format"]
        if {str(getattr(c, "value", c)) for c in getattr(param.type, "choices", ())}
        == TABLE_FORMATS
    ]
    assert len(tables) > 10
    assert len({(*_shape(p), tuple(p.opts)) for _, p in tables}) == 1


def test_output_and_time_options_share_type_and_settings() -> None:
    declarations = _declarations()
    outputs = declarations["--output"]
    assert {p.help for _, p in outputs} == {
        "Where to write ('-' for stdout); a file is replaced atomically."
    }
    assert {tuple(p.opts) for _, p in outputs} == {("--output", "-o")}
    for flag in ("--since", "--until"):
        assert {(p.type.name, p.metavar, p.multiple) for _, p in declarations[flag]} == {
            ("str", None, False)
        }, flag


def test_json_with_another_format_is_refused_by_every_tabular_command(run_nodus) -> None:
    for command in (["tables"], ["journal"], ["keys", "list"], ["sql", "rules"]):
        result = run_nodus(*command, "--json", "--format", "csv")
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr == "nodus: error: --json and --format csv exclude each other\n"
