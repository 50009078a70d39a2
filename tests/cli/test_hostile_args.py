"""Hostile arguments (issue 23, crashes): each is one ``nodus: error:`` line and exit 2.

Found by running every command with every parameter set to hostile values (NUL bytes,
bytes that are not UTF-8, huge numbers, devices that never end); before the fixes each
of these exited 70 (a bug) or hung.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import PROJECT, nodus_command

HUGE = "9" * 400

CASES = [
    (("query", "SELECT 1\0"), "NUL byte"),
    (("ingest", "\0"), "NUL byte"),
    (("audit", "verify", "a\0b"), "NUL byte"),
    (("keys", "sign", "x", "--passphrase-file", "\0"), "NUL byte"),
    (("query", "SELECT 1", "--as-of", HUGE), "out of range"),
    (("journal", "--since", HUGE), "out of range"),
    (("timeline", "--around", "99999999999"), ""),  # far future: nothing around it
    (("timeline", "--window", HUGE), "too long"),
    (("timeline", "--window", "70000000000"), "out of range (years 1 to 9999)"),
    (("timeline", "--window", "\u0ced0000000000"), "invalid duration"),  # a Kannada digit
    (("keys", "generate", "--not-after", "300000000000s"), "out of range (years 1 to 9999)"),
    (("forecast", "cpu", "--horizon", HUGE), "too long"),
    (("quarantine", "--limit", HUGE), "64-bit"),
    (("config", "show", "app.toml", "--generation", HUGE), "64-bit"),
    (("sql", "advise", "--limit", HUGE), "64-bit"),
    (("keys", "sign", ""), "an empty path"),
    (("keys", "seal", "", "--recipient", "x"), "an empty path"),
    (("query", "@/dev/zero"), "larger than 64 MiB"),
    (("sql", "lint", "/dev/zero"), "larger than 64 MiB"),
]


@pytest.mark.parametrize(("args", "says"), CASES, ids=[" ".join(c[0])[:40] for c in CASES])
def test_hostile_arguments_are_one_error_line(cli, args: tuple[str, ...], says: str) -> None:
    result = cli(*args)
    if not says:
        assert result.exit_code in (0, 2), result.stderr
        return
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("nodus: error: "), result.stderr
    assert says in lines[0]


@pytest.mark.parametrize(
    "args",
    [
        [b"query", b"SELECT '\xff'"],
        [b"quarantine", b"--source", b"caf\xe9"],
        [b"ingest", b"\xff.log"],
    ],
)
def test_arguments_that_are_not_utf8_are_refused(args: list[bytes]) -> None:
    """Bytes a shell can pass (Python keeps them as lone surrogates) reached DuckDB."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}  # this checkout, as run_nodus does
    result = subprocess.run(
        [*map(str.encode, nodus_command()), *args], capture_output=True, timeout=60, env=env
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.decode().startswith("nodus: error: argument ")
    assert b"not UTF-8 text" in result.stderr


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    option=st.sampled_from(
        [("journal", "--since"), ("timeline", "--window"), ("query", "SELECT 1", "--as-of")]
    ),
    value=st.one_of(st.text(max_size=30), st.from_regex(r"\d{1,40}(\.\d+)?[a-z]{0,3}( ago)?")),
)
def test_times_and_durations_never_crash(cli, option: tuple[str, ...], value: str) -> None:
    result = cli(*option, value)
    assert result.exit_code in (0, 2), result.stderr
    assert "internal error" not in result.stderr
