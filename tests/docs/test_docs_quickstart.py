"""The quickstart shows the commands it ran and what they printed, nothing else."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from nodus_cli.quickstart import STEPS, Command, _quote
from tests.conftest import PROJECT, nodus_command

# Commands that only read: run again where the quickstart ran them, they print the same.
REPEATABLE = ("query", "sql transpile", "audit verify", "config history")


def _is_repeatable(command: Command) -> bool:
    return " ".join(command.args).startswith(REPEATABLE)


def _run_shown(shown: str, directory: Path) -> subprocess.CompletedProcess[str]:
    """The shown command line, typed into a shell in the quickstart's directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NODUS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT), env.get("PYTHONPATH")]))
    script = f'nodus() {{ {" ".join(_quote(a) for a in nodus_command())} "$@"; }}\n{shown}'
    return subprocess.run(
        ["bash", "-c", script],
        cwd=directory,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )


def test_every_step_shows_the_command_it_ran_and_its_real_output(run_nodus, tmp_path) -> None:
    directory = tmp_path / "qs"
    result = run_nodus("quickstart", str(directory), "--json")
    assert result.returncode == 0, result.stderr
    steps = json.loads(result.stdout)["steps"]
    assert [s["title"] for s in steps] == [s.title for s in STEPS]
    repeated = 0
    for step, planned in zip(steps, STEPS, strict=True):
        shown = [c["command"] for c in step["commands"]]
        assert shown == [c.shown for c in planned.commands]
        for command, run in zip(planned.commands, step["commands"], strict=True):
            assert run["exit_code"] == command.expect, run
            if _is_repeatable(command):
                again = _run_shown(run["command"], directory)
                assert (again.returncode, again.stdout) == (run["exit_code"], run["output"])
                repeated += 1
    assert repeated >= 5


def test_the_transpile_step_transpiles_the_file_lint_fixed(run_nodus, tmp_path) -> None:
    """The IS NULL in the Postgres SQL comes from `sql lint --fix`, not from the quickstart."""
    directory = tmp_path / "qs"
    result = run_nodus("quickstart", str(directory))
    assert result.returncode == 0, result.stderr
    assert "$ nodus sql lint query.sql --fix" in result.stderr
    assert "$ nodus sql transpile query.sql --to postgres" in result.stderr
    fixed = (directory / "query.sql").read_text()
    assert "IS NULL" in fixed and "= NULL" not in fixed
    assert "level IS NULL OR attrs IS NULL" in result.stdout
