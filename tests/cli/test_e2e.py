"""A few runs of the real `nodus` program in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path


def test_answer_42(run_nodus, tmp_path: Path) -> None:
    result = run_nodus("--home", str(tmp_path / "h"), "query", "select 42 as answer", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"answer": 42}]


def test_bad_sql_one_line_no_stdout(run_nodus) -> None:
    result = run_nodus("query", "select from where")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("nodus: error:")


def test_quickstart_in_a_subprocess(run_nodus, tmp_path: Path) -> None:
    result = run_nodus("quickstart", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "nodus-quickstart" / ".nodus" / "store.duckdb").is_file()
    tables = run_nodus("tables", "--json", cwd=tmp_path / "nodus-quickstart")
    names = {t["table"] for t in json.loads(tables.stdout)}
    assert {"logs", "metrics", "journal"} <= names


def test_broken_pipe_is_quiet(run_nodus, tmp_path: Path) -> None:
    import os
    import subprocess

    from tests.conftest import PROJECT, nodus_command

    proc = subprocess.run(
        " ".join(
            [
                *nodus_command(),
                "--home",
                str(tmp_path / "h"),
                "query",
                "'select * from range(200000)'",
                "-f",
                "csv",
                "| head -1",
            ]
        ),
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )
    assert proc.stdout == "range\n"
    assert "Traceback" not in proc.stderr


def test_numeric_warnings_never_reach_the_user(run_nodus, tmp_path: Path) -> None:
    """Values near the float limits overflow inside NumPy; the user sees no Python text."""
    extremes = ("1e308", "-1e308", "1.7976931348623157e308", "5e-324", "0")
    rows = [
        f"2026-01-01T{i // 60:02d}:{i % 60:02d}:00Z,"
        + (extremes[(i // 37) % 5] if i % 37 == 0 else f"{(i * 7919) % 1000 / 1000}")
        for i in range(300)
    ]
    (tmp_path / "extreme.csv").write_text("time,value\n" + "\n".join(rows) + "\n")
    home = str(tmp_path / "h")
    assert run_nodus("--home", home, "ingest", str(tmp_path / "extreme.csv")).returncode == 0
    commands = [("detect", "extreme", "--method", m, "--points", "all") for m in ("hst", "auto")]
    commands.append(("forecast", "extreme", "--threshold", "100"))
    for command in commands:
        result = run_nodus("--home", home, *command, "--format", "json")
        assert result.returncode == 0, result.stderr
        assert "Warning" not in result.stderr and "py:" not in result.stderr, result.stderr
    # for nodus's developers, -v names the warning in one line
    fresh = str(tmp_path / "fresh")
    run_nodus("--home", fresh, "ingest", str(tmp_path / "extreme.csv"))
    verbose = run_nodus("-v", "--home", fresh, "detect", "extreme", "--method", "hst")
    assert "nodus: RuntimeWarning at hst.py:" in verbose.stderr, verbose.stderr
