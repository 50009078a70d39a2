"""Conventions every command shares: exit codes, one-line errors, colour, version."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from nodus_cli import __version__
from nodus_cli.cli.app import EXIT_INTERNAL, NodusGroup
from nodus_cli.cli.output import Format, jsonable, render_rows
from nodus_cli.cli.progressbar import progress
from nodus_cli.errors import CannotVerify, CheckFailed, InputError, NotFoundError, UsageError


def _app_raising(exc: BaseException) -> typer.Typer:
    app = typer.Typer(cls=NodusGroup)

    @app.command()
    def boom() -> None:
        raise exc

    @app.command()
    def ok() -> None:
        pass

    return app


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (CheckFailed("tampered: 2 entries changed"), 1),
        (UsageError("--a and --b exclude each other"), 2),
        (InputError("bad.json: line 3: not JSON"), 2),
        (NotFoundError("no series 'cpu'"), 2),
        (CannotVerify("signer abc is not trusted"), 3),
    ],
)
def test_library_errors_map_to_exit_codes(exc: Exception, code: int) -> None:
    result = CliRunner().invoke(_app_raising(exc), ["boom"])
    assert result.exit_code == code
    assert result.stderr == f"nodus: error: {exc}\n"
    assert result.stdout == ""


def test_success_is_zero() -> None:
    assert CliRunner().invoke(_app_raising(ValueError()), ["ok"]).exit_code == 0


def test_internal_error_is_one_line_without_traceback() -> None:
    result = CliRunner().invoke(_app_raising(RuntimeError("bug")), ["boom"])
    assert result.exit_code == EXIT_INTERNAL
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("nodus: error: internal error: RuntimeError: bug")


def test_usage_errors_are_one_line_exit_2(cli) -> None:
    for args in (["query"], ["query", "select 1", "--bogus"], ["no-such-command"]):
        result = cli(*args)
        assert result.exit_code == 2, args
        assert result.stderr.startswith("nodus: error: ")
        assert result.stderr.count("\n") == 1
        assert result.stdout == ""


def test_version_and_help(cli) -> None:
    assert cli("--version").stdout == f"nodus {__version__}\n"
    result = cli("--help")
    assert result.exit_code == 0 and "query" in result.stdout
    bare = cli()  # no arguments: the help, and the usage exit code
    assert bare.exit_code == 2 and "Usage" in bare.stdout and "error" not in bare.stderr


def test_no_color_and_quiet(cli, tmp_path) -> None:
    data = tmp_path / "x.csv"
    data.write_text("a\n1\n")
    loud = cli("--no-color", "load", str(data), "-t", "x")
    assert loud.exit_code == 0 and "Loaded 1 rows" in loud.stderr
    quiet = cli("-q", "load", str(data), "-t", "y")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    colourless = cli("query", "select 1 as a", env={"NO_COLOR": "1"})
    assert "\x1b[" not in colourless.stdout


def test_progress_is_silent_outside_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    with progress("working", total=10) as advance:
        advance(5)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_render_formats_directly(capsys: pytest.CaptureFixture[str]) -> None:
    count = render_rows(["a", "j"], [(1, '{"x": 1}')], Format.json, types=["INTEGER", "JSON"])
    assert count == 1
    assert capsys.readouterr().out == '[{"a": 1, "j": {"x": 1}}]\n'


def test_jsonable_edge_values() -> None:
    import datetime as dt
    import decimal
    import uuid

    assert jsonable(float("inf")) is None
    assert jsonable(decimal.Decimal("3")) == 3
    assert jsonable(dt.timedelta(days=1, seconds=5)) == "P1DT5S"
    assert jsonable(b"\x00\xff") == "AP8="
    assert jsonable(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert jsonable({1: (1, 2)}) == {"1": [1, 2]}
