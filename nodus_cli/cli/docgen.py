"""Generate shell completions and man pages from the typer app.

``python -m nodus_cli.cli.docgen`` rewrites ``completions/`` and the section-1 pages
in ``man/``; ``--check`` exits 1 when any file differs from what the app would
generate now (tests/test_docs.py runs it). Section-5 pages (file formats) are
written by hand and left alone.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from typer._completion_shared import get_completion_script

from nodus_cli import __version__

PROG = "nodus"
COMPLETE_VAR = "_NODUS_COMPLETE"
COMPLETION_FILES = {"bash": "nodus.bash", "zsh": "_nodus", "fish": "nodus.fish"}

EXIT_STATUS = [
    ("0", "Success."),
    (
        "1",
        "A check found a problem (tamper, mismatch, anomaly with --fail-on-anomaly, "
        "changes with --exit-code).",
    ),
    ("2", "Bad usage or bad input."),
    ("3", "Cannot verify (unknown key or algorithm)."),
]
ENVIRONMENT = [
    ("NODUS_HOME", "Workspace directory; overrides the search for .nodus/."),
    ("XDG_DATA_HOME", "Workspace fallback is $XDG_DATA_HOME/nodus."),
    ("NO_COLOR", "When set, no colour in any output (progress bars still show)."),
    (
        "NODUS_PROGRESS_DELAY",
        "Seconds of work before a progress bar appears on a terminal (default 1; "
        "for tests, which set 0).",
    ),
]


def _roff(text: str) -> str:
    escaped = text.replace("\\", "\\e").replace("-", "\\-")
    lines = []
    for line in escaped.splitlines():
        lines.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(lines)


def _walk(command: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        if not getattr(sub, "hidden", False):
            yield from _walk(sub, [*path, name])


def _param_lines(command: Any, ctx: Any) -> tuple[list[str], list[str]]:
    arguments, options = [], []
    for param in command.params:
        if getattr(param, "hidden", False):
            continue
        help_text = _roff(getattr(param, "help", None) or "")
        if param.param_type_name == "argument":
            arguments.append(f".TP\n.B {param.name.upper()}\n{help_text}")
            continue
        names = ", ".join(_roff(opt) for opt in [*param.opts, *param.secondary_opts])
        metavar = "" if param.is_flag or param.count else f" \\fI{_roff(param.name.upper())}\\fR"
        default = ""
        if param.show_default and param.default not in (None, False, (), []) and not param.count:
            value = getattr(param.default, "value", param.default)
            default = f" (default: {_roff(str(value))})"
        options.append(f".TP\n.B {names}{metavar}\n{help_text}{default}")
    return arguments, options


def _usage(command: Any, ctx: Any) -> str:
    pieces = command.collect_usage_pieces(ctx)
    return " ".join(pieces)


def man_page(path: list[str], command: Any, root: Any) -> str:
    name = " ".join(path)
    page = "-".join(path)
    ctx = typer.Context(command, info_name=name)
    summary = (command.short_help or (command.help or "").strip().split("\n")[0]).rstrip(".")
    lines = [
        f'.TH "{page.upper()}" "1" "" "nodus {__version__}" "nodus manual"',
        ".SH NAME",
        f"{_roff(page)} \\- {_roff(summary)}",
        ".SH SYNOPSIS",
        f".B {_roff(name)}\n{_roff(_usage(command, ctx))}",
        ".SH DESCRIPTION",
        _roff((command.help or summary).strip()),
    ]
    arguments, options = _param_lines(command, ctx)
    if arguments:
        lines += [".SH ARGUMENTS", *arguments]
    if options:
        lines += [".SH OPTIONS", *options]
    subcommands = [(n, c) for n, c in getattr(command, "commands", {}).items() if not c.hidden]
    if subcommands:
        lines.append(".SH COMMANDS")
        for sub_name, sub in subcommands:
            sub_help = (sub.short_help or (sub.help or "").strip().split("\n")[0]).strip()
            lines.append(f".TP\n.B {_roff(' '.join([*path, sub_name]))}\n{_roff(sub_help)}")
    if len(path) > 1:
        lines += [
            ".SH GLOBAL OPTIONS",
            "See \\fBnodus\\fR(1) for \\-\\-home, \\-\\-lock\\-timeout, "
            "\\-\\-no\\-color, \\-q and \\-v, which go before the command name.",
        ]
    lines.append(".SH EXIT STATUS")
    for code, meaning in EXIT_STATUS:
        lines.append(f".TP\n.B {code}\n{_roff(meaning)}")
    lines.append(".SH ENVIRONMENT")
    for var, meaning in ENVIRONMENT:
        lines.append(f".TP\n.B {var}\n{_roff(meaning)}")
    see_also = sorted({"nodus(1)"} - {f"{page}(1)"})
    lines += [
        ".SH SEE ALSO",
        ", ".join(f"\\fB{s.split('(')[0]}\\fR({s.split('(')[1]}" for s in see_also),
    ]
    return "\n".join(lines) + "\n"


def generate() -> dict[str, str]:
    """Every generated file, keyed by its path relative to the project root."""
    from nodus_cli.cli.app import app

    root = typer.main.get_command(app)
    files: dict[str, str] = {}
    for shell, filename in COMPLETION_FILES.items():
        script = get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=shell)
        files[f"completions/{filename}"] = script + "\n"
    for path, command in _walk(root, [PROG]):
        files[f"man/{'-'.join(path)}.1"] = man_page(path, command, root)
    return files


def stale(project: Path) -> list[str]:
    """Paths that differ from what the app generates now, or should no longer exist."""
    expected = generate()
    problems = [
        rel
        for rel, text in expected.items()
        if not (project / rel).is_file() or (project / rel).read_text() != text
    ]
    problems += [
        f"man/{p.name}" for p in (project / "man").glob("*.1") if f"man/{p.name}" not in expected
    ]
    return sorted(problems)


def write(project: Path) -> list[str]:
    expected = generate()
    for rel, text in expected.items():
        target = project / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    removed = [p for p in (project / "man").glob("*.1") if f"man/{p.name}" not in expected]
    for path in removed:
        path.unlink()
    return sorted(expected)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only report stale files")
    parser.add_argument("--project", type=Path, default=Path(__file__).resolve().parents[2])
    args = parser.parse_args(argv)
    if args.check:
        problems = stale(args.project)
        for rel in problems:
            print(f"stale: {rel} (run: python -m nodus_cli.cli.docgen)", file=sys.stderr)
        return 1 if problems else 0
    for rel in write(args.project):
        print(rel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
