"""Shared fixtures: every test gets its own NODUS_HOME; conformance data from ../shared."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings
from typer.testing import CliRunner

from nodus_cli import schemas

# Hypothesis explores new inputs on every local run; CI (NODUS_HYPOTHESIS_PROFILE=ci,
# set by .ci/run) runs the same examples every time, so that a gate's verdict is that
# of the commit and not of the draw. A failure prints the blob that reproduces it.
settings.register_profile("explore", print_blob=True)
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("NODUS_HYPOTHESIS_PROFILE", "explore"))

# Library tests open stores themselves: every package's tables are registered first.
schemas.install()

PROJECT = Path(__file__).resolve().parents[1]
SHARED_ENV = "NODUS_SHARED"


def shared_path() -> Path:
    return Path(os.environ.get(SHARED_ENV) or PROJECT.parent / "shared").resolve()


@pytest.fixture(scope="session")
def shared() -> Path:
    """The conformance data folder; its absence is a failure, never a skip."""
    path = shared_path()
    if not path.is_dir():
        pytest.fail(f"conformance data not found at {path} (set {SHARED_ENV})")
    return path


@pytest.fixture(autouse=True)
def nodus_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test touches a real workspace: NODUS_HOME points into the test's tmp dir."""
    home = tmp_path / "home"
    monkeypatch.setenv("NODUS_HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("NO_COLOR", raising=False)
    return home


class Result:
    def __init__(self, exit_code: int, stdout: str, stderr: str) -> None:
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr

    def json(self) -> object:
        import json

        return json.loads(self.stdout)


Invoke = Callable[..., Result]


@pytest.fixture
def cli() -> Invoke:
    """Run the real typer app in-process: ``cli("query", "select 1", input=...)``."""
    from nodus_cli.cli.app import app

    runner = CliRunner()

    def invoke(*args: str, input: str | bytes | None = None, env: dict | None = None) -> Result:
        result = runner.invoke(app, list(args), input=input, env=env, catch_exceptions=False)
        return Result(result.exit_code, result.stdout, result.stderr)

    return invoke


def nodus_command() -> list[str]:
    """The installed console script when it is beside this Python, else ``python -m``."""
    script = Path(sys.executable).with_name("nodus")
    return [str(script)] if script.exists() else [sys.executable, "-m", "nodus_cli"]


@pytest.fixture
def run_nodus() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``nodus`` in a subprocess, with this checkout first on the import path."""

    def run(*args: str, input: str | None = None, cwd: Path | None = None, **kwargs: object):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT), env.get("PYTHONPATH")]))
        return subprocess.run(
            [*nodus_command(), *args],
            input=input,
            capture_output=True,
            text=True,
            cwd=cwd,
            env=env,
            timeout=kwargs.pop("timeout", 120),
            **kwargs,
        )

    return run
