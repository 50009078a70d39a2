"""Generate shell completions and man pages from the typer app.

``python -m nodus_cli.cli.docgen`` rewrites ``completions/`` and the section-1 pages
in ``man/``; ``--check`` exits 1 when any file differs from what the app would
generate now (tests/docs/test_docs.py runs it). Section-5 pages (file formats) are
written by hand and left alone.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
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
    (
        "2",
        "Bad usage or bad input (also: the store stayed locked past --lock-timeout, or was "
        "written by a newer nodus).",
    ),
    ("3", "Cannot verify (unknown key or algorithm)."),
    ("70", "A bug in nodus (please report it; -v shows the traceback)."),
    ("130", "Interrupted (Ctrl-C, SIGTERM or SIGHUP)."),
]
# (variable, meaning, the command paths it concerns; empty: every command)
ENVIRONMENT: list[tuple[str, str, tuple[str, ...]]] = [
    ("NODUS_HOME", "Workspace directory; overrides the search for .nodus/ (--home wins).", ()),
    ("XDG_DATA_HOME", "The fallback workspace is $XDG_DATA_HOME/nodus.", ()),
    ("NO_COLOR", "When set, no colour in any output (progress bars still show).", ()),
    (
        "NODUS_PROGRESS_DELAY",
        "Seconds of work before a progress bar appears on a terminal (default 1; "
        "for tests, which set 0).",
        (),
    ),
    ("TERM", "TERM=dumb: no progress bar (the terminal cannot redraw a line).", ()),
    (
        "NODUS_PASSPHRASE",
        "The keyring passphrase (else --passphrase-file, else a prompt on a terminal).",
        ("nodus keys", "nodus audit build", "nodus audit seal"),
    ),
    (
        "NODUS_CONFIG_TARGET",
        "Set for the --check command: the path of the file just switched.",
        ("nodus config apply", "nodus config rollback"),
    ),
    ("JAVA_HOME", "The Java runtime for --engine spark.", ("nodus query",)),
    (
        "SPARK_CONF_DIR, SPARK_HOME",
        "Where --engine spark reads spark-defaults.conf and its logging settings.",
        ("nodus query",),
    ),
    (
        "SPARK_LOCAL_IP",
        "The local Spark driver's address; nodus sets 127.0.0.1 unless it is set.",
        ("nodus query",),
    ),
    (
        "OPENBLAS_NUM_THREADS",
        "BLAS threads for NumPy; nodus sets 1 unless it is set.",
        ("nodus detect", "nodus forecast"),
    ),
]
WORKSPACE_FILES = [
    ("store.duckdb", "The store: logs, metrics, journal and every other table."),
    ("store.duckdb.wal, store.duckdb.guard", "The store's write-ahead log and crash guard."),
    ("nodus.toml", "Settings ([store] lock_timeout)."),
    ("secret.key", "The workspace secret (keyed pseudonyms of --redact)."),
    ("keyring/keyring.json, keyring/log.jsonl", "The keyring and its signed key log."),
    ("query_log.spool", "Queries run by nodus query, folded by nodus sql advise."),
]
# Section-5 pages (file formats) that a command's page points to.
FORMAT_PAGES = {
    "nodus ingest": ["nodus-store"],
    "nodus sources": ["nodus-store"],
    "nodus quarantine": ["nodus-store"],
    "nodus tables": ["nodus-store"],
    "nodus query": ["nodus-store", "nodus-query-log", "nodus-export"],
    "nodus export": ["nodus-export"],
    "nodus forecast": ["nodus-forecast"],
    "nodus keys": ["nodus-keyring"],
    "nodus audit": ["nodus-bundle", "nodus-keyring"],
    "nodus sql advise": ["nodus-query-log"],
}
EXAMPLES_HEADING = "Examples:"


@dataclass(frozen=True)
class Example:
    """One example of a help text's Examples block: a shell command and its comment.

    ``text`` is the example as written (lines ending in a backslash continue it).
    """

    command: str
    comment: str
    text: str


def split_examples(help_text: str) -> tuple[str, list[Example]]:
    """The description before the ``Examples:`` block, and the block's examples."""
    lines = help_text.strip().splitlines()
    for index, line in enumerate(lines):
        if line.strip() == EXAMPLES_HEADING:
            return "\n".join(lines[:index]).strip(), _examples(lines[index + 1 :])
    return help_text.strip(), []


def _examples(lines: list[str]) -> list[Example]:
    body = [line for line in lines if line.strip()]
    margin = min((len(line) - len(line.lstrip()) for line in body), default=0)
    examples, pending = [], []
    for line in body:
        pending.append(line[margin:].rstrip())
        if not pending[-1].endswith("\\"):
            examples.append(parse_example("\n".join(pending)))
            pending = []
    if pending:
        examples.append(parse_example("\n".join(pending)))
    return examples


def parse_example(text: str) -> Example:
    """Split at the first ``#`` that starts a shell comment (outside quotes); a backslash
    before a newline joins the lines, as the shell does."""
    line = text.replace("\\\n", "")
    quote = ""
    for index, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return Example(line[:index].rstrip(), line[index + 1 :].strip(), text)
    return Example(line.rstrip(), "", text)


def command_examples(command: Any) -> list[Example]:
    return split_examples(command.help or "")[1]


def _applies(scopes: tuple[str, ...], name: str) -> bool:
    return not scopes or any(name == s or name.startswith(s + " ") for s in scopes)


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
    description, examples = split_examples(command.help or "")
    summary = (command.short_help or description.split("\n")[0]).rstrip(".")
    lines = [
        f'.TH "{page.upper()}" "1" "" "nodus {__version__}" "nodus manual"',
        ".SH NAME",
        f"{_roff(page)} \\- {_roff(summary)}",
        ".SH SYNOPSIS",
        f".B {_roff(name)}\n{_roff(_usage(command, ctx))}",
        ".SH DESCRIPTION",
        _roff(description or summary),
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
    for var, meaning, scopes in ENVIRONMENT:
        if _applies(scopes, name) or (subcommands and any(s.startswith(name) for s in scopes)):
            lines.append(f".TP\n.B {_roff(var)}\n{_roff(meaning)}")
    lines += [
        ".SH FILES",
        "The workspace is \\-\\-home, else $NODUS_HOME, else the nearest .nodus/ folder from "
        "the current directory upward, else $XDG_DATA_HOME/nodus; it is private (0700, "
        "files 0600).",
    ]
    for file_name, meaning in WORKSPACE_FILES:
        lines.append(f".TP\n.I WORKSPACE/{_roff(file_name)}\n{_roff(meaning)}")
    if examples:
        lines += [".SH EXAMPLES", ".nf", *(_roff(example.text) for example in examples), ".fi"]
    lines += [
        ".SH SEE ALSO",
        ", ".join(
            f"\\fB{_roff(p)}\\fR({s})" for p, s in _see_also(path, [n for n, _ in subcommands])
        ),
    ]
    return "\n".join(lines) + "\n"


def _see_also(path: list[str], subcommands: list[str]) -> list[tuple[str, str]]:
    """The parent pages, the subcommands' pages, then the file formats the command touches."""
    name = " ".join(path)
    pages = [("-".join(path[:depth]), "1") for depth in range(1, len(path))]
    pages += [("-".join([*path, sub]), "1") for sub in subcommands]
    formats = {
        page
        for scope, scope_pages in FORMAT_PAGES.items()
        if len(path) == 1 or _applies((scope,), name)
        for page in scope_pages
    }
    return pages + [(page, "5") for page in sorted(formats)]


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
