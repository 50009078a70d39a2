"""Generated completions and man pages are current; README and --help agree."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from nodus_cli.cli.app import app
from nodus_cli.cli.docgen import ENVIRONMENT, _walk, stale

PROJECT = Path(__file__).resolve().parents[2]


def _commands() -> list[tuple[list[str], object]]:
    root = typer.main.get_command(app)
    return [(path[1:], cmd) for path, cmd in _walk(root, ["nodus"]) if len(path) > 1]


def test_completions_and_man_pages_are_current() -> None:
    problems = stale(PROJECT)
    assert problems == [], f"stale generated files, run: python -m nodus_cli.cli.docgen: {problems}"


def test_every_command_has_help_and_a_man_page() -> None:
    for path, command in _commands():
        assert (command.help or "").strip(), path  # type: ignore[attr-defined]
        assert (PROJECT / "man" / f"nodus-{'-'.join(path)}.1").is_file(), path


def test_readme_mentions_every_top_level_command() -> None:
    readme = (PROJECT / "README.md").read_text()
    for path, _ in _commands():
        if len(path) == 1:
            assert f"nodus {path[0]}" in readme, path[0]


def test_every_option_is_in_its_man_page() -> None:
    for path, command in _commands():
        page = (PROJECT / "man" / f"nodus-{'-'.join(path)}.1").read_text()
        for param in command.params:  # type: ignore[attr-defined]
            if param.param_type_name == "option" and not param.hidden:
                assert param.opts[0].replace("-", "\\-") in page, (path, param.opts)


def test_readme_test_command_is_what_ci_runs() -> None:
    readme = (PROJECT / "README.md").read_text()
    ci = (PROJECT / ".ci" / "run").read_text()
    assert "pytest -n auto" in readme and "pytest -n auto" in ci
    install = "pip install -e '.[test,spark]'"
    assert install in readme and install in ci


def test_every_command_takes_json() -> None:
    for path, command in _commands():
        if getattr(command, "commands", None):
            continue  # a group: its subcommands are checked
        options = {opt for p in command.params for opt in p.opts}  # type: ignore[attr-defined]
        assert "--json" in options, path


def test_every_environment_variable_nodus_reads_is_documented() -> None:
    """Names read through os.environ or named by an ``*_ENV`` constant, in the man pages'
    ENVIRONMENT and in README's table."""
    source = "\n".join(p.read_text() for p in (PROJECT / "nodus_cli").rglob("*.py"))
    read = set(re.findall(r'environ(?:\.get\(|\.setdefault\(|\[)"([A-Z][A-Z0-9_]+)"', source))
    read |= set(re.findall(r'_ENV = "([A-Z][A-Z0-9_]+)"', source))
    documented = {name.strip() for names, _, _ in ENVIRONMENT for name in names.split(",")}
    assert read <= documented, read - documented
    readme = (PROJECT / "README.md").read_text()
    for name in documented:
        assert f"`{name}`" in readme, name
