"""`nodus --help`, `--version` and completion must not import heavy engines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
HEAVY = (
    "duckdb",
    "river",
    "sqlglot",
    "scipy",
    "numpy",
    "cryptography",
    "tomlkit",
    "matplotlib",
    "pyspark",
    "pandas",
    "nanoarrow",
)
PROBE = """
import sys
sys.argv = ["nodus", *sys.argv[1:]]
from nodus_cli.cli.app import main
try:
    main()
except SystemExit:
    pass
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))
sys.stderr.write("HEAVY=" + ",".join(heavy) + "\\n")
"""


def _imported(
    args: list[str], extra_env: dict[str, str] | None = None, watch: tuple[str, ...] = HEAVY
) -> list[str]:
    """Which of the ``watch`` packages ``nodus ARGS`` imports."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT), **(extra_env or {})}
    code = f"HEAVY = {watch!r}\n{PROBE}"
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=60
    )
    line = [x for x in proc.stderr.splitlines() if x.startswith("HEAVY=")]
    assert line, proc.stderr
    return [m for m in line[-1].removeprefix("HEAVY=").split(",") if m]


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["query", "--help"]])
def test_help_and_version_import_no_heavy_library(args: list[str]) -> None:
    assert _imported(args) == []


def test_every_command_help_imports_no_heavy_library() -> None:
    import typer

    from nodus_cli.cli.app import app
    from nodus_cli.cli.docgen import _walk

    root = typer.main.get_command(app)
    paths = [path[1:] for path, _ in _walk(root, ["nodus"]) if len(path) > 1]
    for path in paths:
        assert _imported([*path, "--help"]) == [], path


def test_parsing_a_command_imports_no_validation_library(tmp_path: Path) -> None:
    """Parsing options stays plain: pydantic alone would add about 0.1 s to every command."""
    args = ["--home", str(tmp_path), "sources", "--format", "csv"]
    assert _imported(args, watch=("pydantic", "pydantic_core")) == []


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_imports_no_heavy_library(shell: str) -> None:
    env = {
        "_NODUS_COMPLETE": f"complete_{shell}",
        "COMP_WORDS": "nodus qu",
        "COMP_CWORD": "1",
        "_TYPER_COMPLETE_ARGS": "nodus qu",
    }
    assert _imported([], env) == []


@pytest.mark.parametrize(("preset", "expected"), [(None, "1"), ("4", "4")])
def test_blas_gets_one_thread_unless_the_environment_says_otherwise(
    preset: str | None, expected: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    env["PYTHONPATH"] = str(PROJECT)
    if preset is not None:
        env["OPENBLAS_NUM_THREADS"] = preset
    probe = (
        "import os, sys\nsys.argv = ['nodus', '--version']\n"
        "from nodus_cli.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(os.environ['OPENBLAS_NUM_THREADS'])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.stdout.splitlines()[-1] == expected, proc.stderr
