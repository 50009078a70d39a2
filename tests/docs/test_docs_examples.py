"""Every ``nodus …`` example in README.md, in a command's ``--help`` and in the man pages
runs, through the installed CLI, and exits as documented.

The examples run where a reader would run them: README's first block (``nodus
quickstart``, ``cd nodus-quickstart``, the demo passphrase) prepares a workspace with
the bundled samples ingested, a detect run, a keyring, a sealed bundle, an export and
a configuration history. Every other README block, and every command's Examples, then
runs in a copy of it, in order, each line once. An example exits 0 unless its comment
starts with ``exit N``.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from nodus_cli.cli.app import app
from nodus_cli.cli.docgen import Example, _walk, command_examples, parse_example
from tests.conftest import PROJECT, nodus_command

TIMEOUT = 120  # seconds for one example; a hung example fails instead of stalling CI
EXIT_COMMENT = re.compile(r"^exits? (\d+)\b")
# README lines the test does not run, and why. Keep this short: an example that needs
# something the test cannot provide should rather be rewritten to use the samples.
NOT_RUN = {
    "python3 -m venv .venv && . .venv/bin/activate && pip install -e .": (
        "installs nodus into a new virtualenv; the test runs this checkout's nodus"
    ),
    "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test,spark]' && "
    "pytest -n auto": "runs the whole test suite, this test included",
    "nodus query @report.sql --data lake --engine spark": (
        "starts a JVM and a Spark session (about a minute); tests/scaleout/test_scaleout_spark.py "
        "runs --engine spark on an export"
    ),
    "nodus query @report.sql --data lake --engine spark --master spark://head:7077": (
        "needs a Spark standalone cluster at spark://head:7077"
    ),
}
# README blocks marked ``<!-- NAME -->`` that are one script, not lines to run one by
# one, and the test that runs each whole.
SCRIPTS_RUN_ELSEWHERE = {
    "ci-verify": "tests/audit/test_anywhere.py::"
    "test_the_readme_ci_step_passes_intact_and_fails_tampered_bundles",
}


@dataclass
class Block:
    """Lines that share a working directory and environment, run in order."""

    name: str
    lines: list[Example]
    origin: str = "README.md"


@dataclass
class Shell:
    """Where a block's lines run: ``cd`` and ``export`` lines change it, as in a shell."""

    cwd: Path
    env: dict[str, str]
    failures: list[str] = field(default_factory=list)


def _logical_lines(text: str) -> list[str]:
    """Lines of a code block, a line continued while a quote is open or it ends in ``\\``."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        pending = f"{pending}\n{raw}" if pending else raw
        if pending.endswith("\\"):
            continue
        try:
            shlex.split(pending, comments=True)
        except ValueError:
            continue  # an open quote: the command goes on on the next line
        if pending.strip():
            lines.append(pending.strip())
        pending = ""
    assert not pending, f"unterminated line in README: {pending!r}"
    return lines


def readme_blocks() -> list[Block]:
    text = (PROJECT / "README.md").read_text()
    blocks = re.findall(r"(?:^<!-- ([\w-]+) -->\n)?^```sh\n(.*?)^```", text, flags=re.S | re.M)
    return [
        Block(f"readme-{number}", [parse_example(line) for line in _logical_lines(body)])
        for number, (marker, body) in enumerate(blocks, 1)
        if marker not in SCRIPTS_RUN_ELSEWHERE
    ]


def _is_nodus(command: str) -> bool:
    return bool(re.search(r"(^|[|&;(]\s*)nodus\s", command))


def preparation() -> Block:
    """README's first block that runs ``nodus quickstart``: every other block starts there."""
    for block in readme_blocks():
        if any(line.command.startswith("nodus quickstart") for line in block.lines):
            return block
    raise AssertionError("README.md has no block that runs nodus quickstart")


def help_blocks() -> list[Block]:
    root = typer.main.get_command(app)
    return [
        Block(_help_name(path), command_examples(command), "--help")
        for path, command in _walk(root, ["nodus"])
    ]


def _help_name(path: list[str]) -> str:
    return "help-" + ("-".join(path[1:]) or "nodus")


def _man_examples(page: str) -> list[str]:
    """The EXAMPLES section of a man page, as text (roff escapes undone)."""
    match = re.search(r"^\.SH EXAMPLES\n\.nf\n(.*?)^\.fi$", page, flags=re.S | re.M)
    if not match:
        return []
    body = match.group(1).replace("\\-", "-").replace("\\e", "\\").replace("\\&", "")
    return [parse_example(t).command for t in _join_continued(body.rstrip("\n").split("\n"))]


def _join_continued(lines: list[str]) -> list[str]:
    joined: list[str] = []
    for line in lines:
        if joined and joined[-1].endswith("\\"):
            joined[-1] += "\n" + line
        else:
            joined.append(line)
    return joined


def expected_exit(example: Example) -> int:
    match = EXIT_COMMENT.match(example.comment)
    return int(match.group(1)) if match else 0


def _environment(bin_dir: Path, base: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NODUS_")}
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT), env.get("PYTHONPATH")]))
    env["XDG_DATA_HOME"] = str(base / "xdg")
    env["HOME"] = str(base / "home")
    env.pop("NO_COLOR", None)
    return env


def run_block(block: Block, shell: Shell) -> Shell:
    """Run each line as a reader would; collect every line that did not exit as documented."""
    for example in block.lines:
        command = example.command
        if command in NOT_RUN:
            continue
        words = shlex.split(command)
        if words[0] == "cd" and len(words) == 2:
            shell.cwd = (shell.cwd / words[1]).resolve()
            continue
        if words[0] == "export" and all("=" in w for w in words[1:]):
            shell.env.update(w.split("=", 1) for w in words[1:])
            continue
        try:
            done = subprocess.run(
                ["bash", "-o", "pipefail", "-c", command],
                cwd=shell.cwd,
                env=shell.env,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            shell.failures.append(f"{block.origin} {block.name}: {command}: timed out")
            continue
        want = expected_exit(example) if _is_nodus(command) else 0
        if done.returncode != want:
            shell.failures.append(
                f"{block.origin} {block.name}: {command}\n  exit {done.returncode}, "
                f"documented {want}\n  stderr: {done.stderr[-600:]}"
            )
    return shell


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Shell:
    """README's preparation block, run once in an empty directory (once for all xdist
    workers: the first one prepares, under a lock, and the others reuse it)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    base = root / "docs-examples"
    with (root / "docs-examples.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = base / "prepared.json"
        if not state.exists():
            shell = _prepare(base)
            state.write_text(json.dumps({"cwd": str(shell.cwd), "env": shell.env}))
    saved = json.loads(state.read_text())
    return Shell(Path(saved["cwd"]), saved["env"])


def _prepare(base: Path) -> Shell:
    shutil.rmtree(base, ignore_errors=True)
    bin_dir = base / "bin"
    bin_dir.mkdir(parents=True)
    wrapper = bin_dir / "nodus"
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.join(nodus_command())} "$@"\n')
    wrapper.chmod(0o755)
    (base / "home").mkdir()
    start = base / "prep"
    start.mkdir()
    shell = run_block(preparation(), Shell(start, _environment(bin_dir, base)))
    assert not shell.failures, "\n".join(shell.failures)
    return shell


def _fresh_copy(prepared: Shell, target: Path) -> Shell:
    """A copy of the prepared directory tree, at the same depth below the copy's root."""
    prep_root = next(p for p in [prepared.cwd, *prepared.cwd.parents] if p.name == "prep")
    copy_root = target / "prep"
    shutil.copytree(prep_root, copy_root, symlinks=True)
    return Shell(copy_root / prepared.cwd.relative_to(prep_root), dict(prepared.env))


def _runnable(blocks: list[Block]) -> list[Block]:
    prep = {line.command for line in preparation().lines}
    kept = []
    for block in blocks:
        lines = [line for line in block.lines if line.command not in prep]
        if lines:
            kept.append(Block(block.name, lines, block.origin))
    return kept


README_BLOCKS = [b for b in readme_blocks() if b.name != preparation().name]
HELP_BLOCKS = _runnable(help_blocks())


@pytest.mark.parametrize("block", README_BLOCKS, ids=lambda b: b.name)
def test_readme_examples_run(block: Block, prepared: Shell, tmp_path: Path) -> None:
    shell = run_block(block, _fresh_copy(prepared, tmp_path))
    assert not shell.failures, "\n".join(shell.failures)


@pytest.mark.parametrize("block", HELP_BLOCKS, ids=lambda b: b.name)
def test_help_examples_run(block: Block, prepared: Shell, tmp_path: Path) -> None:
    shell = run_block(block, _fresh_copy(prepared, tmp_path))
    assert not shell.failures, "\n".join(shell.failures)


def test_every_command_ends_its_help_with_one_to_three_examples() -> None:
    runner = CliRunner()
    for block in help_blocks():
        assert 1 <= len(block.lines) <= 3, block.name
        args = _command_args(block.name)
        result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (block.name, result.output)
        text = result.output
        examples_at = text.index("Examples:")
        for example in block.lines:  # shown verbatim: no markup eaten, no line joined
            for line in example.text.splitlines():
                assert line.strip() in text[examples_at:], (block.name, line)


def _command_args(name: str) -> list[str]:
    root = typer.main.get_command(app)
    for path, _ in _walk(root, ["nodus"]):
        if _help_name(path) == name:
            return path[1:]
    raise AssertionError(name)


def test_every_example_in_the_man_pages_is_one_that_runs() -> None:
    """Section-1 pages show the --help examples; no man page has an example of its own."""
    root = typer.main.get_command(app)
    shown = 0
    for path, command in _walk(root, ["nodus"]):
        page = (PROJECT / "man" / f"{'-'.join(path)}.1").read_text()
        examples = _man_examples(page)
        assert examples == [e.command for e in command_examples(command)], path
        shown += len(examples)
    assert shown == sum(len(b.lines) for b in help_blocks())
    for page in sorted((PROJECT / "man").glob("*.5")):
        assert _man_examples(page.read_text()) == [], page.name


def test_every_readme_line_is_run_or_listed_with_a_reason() -> None:
    lines = [line.command for block in readme_blocks() for line in block.lines]
    assert set(NOT_RUN) <= set(lines), set(NOT_RUN) - set(lines)
    assert sum(_is_nodus(line) for line in lines) >= 50  # the blocks were found


def test_every_readme_script_run_elsewhere_has_its_test() -> None:
    text = (PROJECT / "README.md").read_text()
    for marker, test in SCRIPTS_RUN_ELSEWHERE.items():
        assert f"<!-- {marker} -->\n```sh\n" in text, marker
        path, name = test.split("::")
        assert f"def {name}(" in (PROJECT / path).read_text(), test
