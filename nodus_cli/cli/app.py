"""The ``nodus`` application: global options, error handling, command registration.

Command modules are imported eagerly (typer has no lazy loading), so they must stay
cheap to import: heavy engines are imported inside the functions that use them.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click import Context, Parameter
from typer._click import exceptions as click_exceptions
from typer._click import types as click_types
from typer.core import TyperCommand, TyperGroup, TyperOption
from typer.models import TyperPath

from nodus_cli import __version__
from nodus_cli.cli import audit, core, export, flags, ingest, keys, patterns, quickstart, timeline
from nodus_cli.cli import detect as detect_commands
from nodus_cli.cli.config import config_app
from nodus_cli.cli.options import WIDE_HELP, WideOption, set_wide
from nodus_cli.cli.output import Format, detail, error_line, visible
from nodus_cli.cli.sql import sql_app
from nodus_cli.errors import EXIT_USAGE, NodusError, describe_os_error

EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug in nodus, never a user's mistake
EXIT_INTERRUPTED = 130

# The engines whose versions -v shows (those installed).
ENGINES_SHOWN = ("duckdb", "sqlglot", "river", "pyspark")


class NodusGroup(TyperGroup):
    """Turns every error into one ``nodus: error:`` line and its documented exit code."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _add_wide_option(self)
        _bound_integers(self)

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        flags.reset(argv)
        _reflow_prose(self, shutil.get_terminal_size().columns)
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.showwarning = _library_warning
            code = self._run(argv, prog_name or "nodus", complete_var, extra)
        detail(f"nodus: exit {code} after {time.perf_counter() - started:.2f} s")
        if standalone_mode:
            sys.exit(code)
        return code

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # before typer's own handler, which exits 1
            _reader_gone()
            return 0

    def _run(
        self, argv: list[str], prog_name: str, complete_var: str | None, extra: dict[str, Any]
    ) -> int:
        unusable = _unusable_argument(argv)
        if unusable is not None:
            error_line(unusable)
            return EXIT_USAGE
        try:
            result = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except NodusError as exc:
            error_line(exc.message)
            _print_traceback()
            return exc.exit_code
        except OSError as exc:
            if isinstance(exc, BrokenPipeError):
                _reader_gone()
                return 0
            error_line(describe_os_error(exc))  # a file nodus was given or made
            _print_traceback()
            return EXIT_USAGE
        except UnicodeDecodeError:
            error_line("an input is not UTF-8 text")
            _print_traceback()
            return EXIT_USAGE
        except UnicodeEncodeError as exc:
            error_line(f"cannot write text as {exc.encoding}: use a UTF-8 locale (LANG=C.UTF-8)")
            _print_traceback()
            return EXIT_USAGE
        except click_exceptions.NoArgsIsHelpError as exc:
            sys.stderr.write(exc.format_message())  # rich help has already been printed
            return exc.exit_code
        except click_exceptions.ClickException as exc:
            error_line(_usage_message(exc))
            return exc.exit_code
        except (typer.Abort, KeyboardInterrupt):
            error_line("interrupted")
            return EXIT_INTERRUPTED
        except Exception as exc:
            error_line(
                f"internal error: {type(exc).__name__}: {exc} "
                "(please report this, with the traceback -vv prints)"
            )
            _print_traceback()
            return EXIT_INTERNAL
        return result if isinstance(result, int) else 0


def _library_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """A Python warning (NumPy's overflow, a deprecation) is for nodus's developers:
    shown with ``-v`` in one line, never as Python's text in a user's terminal or cron mail."""
    detail(f"nodus: {category.__name__} at {Path(filename).name}:{lineno}: {message}")


def _unusable_argument(argv: Sequence[str]) -> str | None:
    """Why an argument cannot be used at all, before any command sees it.

    Every argument ends up as text somewhere (SQL, a DuckDB parameter, the journal):
    one holding a NUL byte or bytes that are not UTF-8 (Python keeps those as lone
    surrogates) is refused here once, instead of failing deep inside each command.
    """
    for number, arg in enumerate(argv, 1):
        if "\0" in arg:
            return f"argument {number} holds a NUL byte"
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            shown = arg.encode("utf-8", "backslashreplace").decode("utf-8")
            return f"argument {number} ({shown!r}) is not UTF-8 text"
    return None


def _print_traceback() -> None:
    """With ``-vv``, the traceback of the error being handled."""
    if flags.STATE.verbose > 1:
        import traceback

        traceback.print_exc()


def _reader_gone() -> None:
    """The reader of stdout went away (``| head``): not an error. stdout is pointed at
    /dev/null so that flushing it at exit does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is no file descriptor (a test's capture)
        pass
    finally:
        os.close(devnull)


def _quiet_libraries() -> None:
    """Third-party warnings (sqlglot's "Falling back to parsing as a 'Command'") reach
    stderr only with ``-v``, escaped like every message; without a handler of its own,
    Python's last-resort handler would print them always."""
    import logging

    class EscapingFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return visible(super().format(record), keep="\n")  # tracebacks keep their lines

    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "name", None) == "nodus"]:
        root.removeHandler(handler)
    ours = logging.StreamHandler(sys.stderr) if flags.STATE.verbose else logging.NullHandler()
    ours.set_name("nodus")
    ours.setFormatter(EscapingFormatter("nodus: %(name)s: %(message)s"))
    root.addHandler(ours)


def _engine_versions() -> str:
    from importlib import metadata

    versions = []
    for name in ENGINES_SHOWN:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(versions)


INT64 = (-(2**63), 2**63 - 1)


class _Int64Range(click_types.IntRange):
    """An integer type as declared (its help unchanged) that also fits in 64 bits."""

    def __init__(self, declared: click_types.ParamType) -> None:
        self.declared = declared
        low = getattr(declared, "min", None)
        high = getattr(declared, "max", None)
        super().__init__(
            INT64[0] if low is None else low,
            INT64[1] if high is None else high,
            getattr(declared, "min_open", False),
            getattr(declared, "max_open", False),
        )
        self.name = declared.name

    def _describe_range(self) -> str:
        describe = getattr(self.declared, "_describe_range", None)
        return describe() if describe else ""

    def get_metavar(self, param: Parameter, ctx: Context) -> str | None:
        return self.declared.get_metavar(param, ctx)

    def convert(self, value: Any, param: Parameter | None, ctx: Context | None) -> Any:
        number = self.declared.convert(value, param, ctx)  # the declared range's message
        if not INT64[0] <= number <= INT64[1]:
            self.fail(f"{number} is out of range (a 64-bit integer at most)", param, ctx)
        return number


class _NonEmptyPath(TyperPath):
    """A path option or argument that refuses the empty string (Python reads it as ``.``)."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if value == "":
            self.fail("an empty path names no file", param, ctx)
        return super().convert(value, param, ctx)


def _bound_integers(group: TyperGroup) -> None:
    """Every integer option and argument of every command fits in 64 bits, and no path
    is the empty string.

    Integers end in DuckDB (a LIMIT, a generation number), which takes no larger
    integer: ``--limit 99999999999999999999`` is a usage error (exit 2) at parsing,
    like any other value out of its range, not a crash deep inside the command.
    """
    for command in group.commands.values():
        if isinstance(command, TyperGroup):
            _bound_integers(command)
            continue
        for param in command.params:
            kind = param.type
            plain = kind is click_types.INT
            ranged = isinstance(kind, click_types.IntRange) and not kind.clamp
            if (plain or ranged) and not isinstance(kind, _Int64Range):
                param.type = _Int64Range(kind)
            elif type(kind) is TyperPath:
                kind.__class__ = _NonEmptyPath  # the same settings, one check more


def _reflow_prose(command: Any, width: int) -> None:
    """Join the lines of each prose paragraph in the help of ``command`` and its subcommands.

    Typer keeps a docstring's line breaks, so on a terminal narrower than the source
    (80 columns, or a pipe) a line wraps early and leaves a word alone on the next
    one; a joined paragraph is wrapped by rich at the width there is. Paragraphs
    with indented lines (the examples) keep theirs, fitted to ``width`` (see
    ``_fit_examples``).
    """
    if command.help:
        command.help = "\n\n".join(
            _fit_examples(paragraph, width)
            if paragraph.startswith("\b")
            or any(line[:1].isspace() for line in paragraph.splitlines())
            else " ".join(line.strip() for line in paragraph.splitlines())
            for paragraph in command.help.split("\n\n")
        )
    for sub in getattr(command, "commands", {}).values():
        _reflow_prose(sub, width)


# rich shows help one column in from the edge and keeps one free at the end
HELP_MARGIN = 2


def _fit_examples(paragraph: str, width: int) -> str:
    """Example lines too wide for the terminal with their comment get it on a line above.

    A wrapped example breaks the command in the middle of its arguments, so the
    reader cannot copy it; its ``# comment`` alone can move without changing it.
    """
    fitted = []
    for line in paragraph.splitlines():
        command, hash_mark, comment = line.partition("  # ")
        if hash_mark and len(line.rstrip()) + HELP_MARGIN > width:
            indent = line[: len(line) - len(line.lstrip())]
            fitted += [f"{indent}# {comment.strip()}", command.rstrip()]
        else:
            fitted.append(line)
    return "\n".join(fitted)


def _add_wide_option(group: TyperGroup) -> None:
    """Every command that prints a table (it takes ``--format table|json|...``) also
    takes ``--wide``: on a terminal, show every cell whole instead of fitting the width."""
    for command in group.commands.values():
        if isinstance(command, TyperGroup):
            _add_wide_option(command)
        elif isinstance(command, TyperCommand) and _prints_tables(command):
            if any("--wide" in getattr(p, "opts", ()) for p in command.params):
                continue
            command.params.append(
                TyperOption(
                    param_decls=["--wide"],
                    is_flag=True,
                    default=False,
                    expose_value=False,
                    callback=set_wide,
                    help=WIDE_HELP,
                )
            )


def _prints_tables(command: TyperCommand) -> bool:
    table_choices = {f.value for f in Format}
    for param in command.params:
        choices = getattr(param.type, "choices", None)
        if "--format" in getattr(param, "opts", ()) and choices is not None:
            return {str(getattr(c, "value", c)) for c in choices} == table_choices
    return False


def _usage_message(exc: click_exceptions.ClickException) -> str:
    message = exc.format_message()
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click_exceptions.UsageError) and ctx is not None:
        message += f" (see '{ctx.command_path} --help')"
    return message


app = typer.Typer(
    cls=NodusGroup,
    name="nodus",
    help=(
        "nodus: logs, metrics, anomalies, audit bundles, configuration and SQL "
        "over one local DuckDB store.\n\n"
        "Examples:\n\n"
        "  nodus quickstart                    # try it on the bundled samples\n"
        "  nodus --home demo init              # a workspace in ./demo, not .nodus/\n"
        '  nodus -v query "SELECT count(*) FROM logs"   # -v: what nodus does, on stderr'
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"nodus {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def global_options(
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            help="Workspace directory (default: $NODUS_HOME, the nearest .nodus/, "
            "else $XDG_DATA_HOME/nodus).",
            show_default=False,
        ),
    ] = None,
    lock_timeout: Annotated[
        float | None,
        typer.Option(
            "--lock-timeout",
            min=0,
            help="Seconds to wait for another process's store lock (default 10).",
            show_default=False,
        ),
    ] = None,
    no_color: Annotated[
        bool, typer.Option("--no-color", help="No colour (also when NO_COLOR is set).")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            metavar="",
            show_default=False,
            help="Say what nodus does (files, timings, engine versions); -vv adds tracebacks.",
        ),
    ] = 0,
    wide: WideOption = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    current = flags.STATE
    current.home = str(home) if home else None
    current.lock_timeout = lock_timeout
    current.no_color = no_color
    current.quiet = quiet
    current.verbose = verbose
    current.wide = wide
    _quiet_libraries()
    detail(f"nodus {__version__}, Python {sys.version.split()[0]}, {_engine_versions()}")


core.register(app)
ingest.register(app)
patterns.register(app)
timeline.register(app)
detect_commands.register(app)
keys.register(app)
app.add_typer(audit.app)
app.add_typer(config_app)
app.add_typer(sql_app)
export.register(app)
quickstart.register(app)


def main() -> None:
    """Console-script entry point."""
    _tune_process()
    app()


def _tune_process() -> None:
    """Settings for a nodus process, made here rather than when the library is imported.

    NumPy's OpenBLAS starts a thread per core that spins for a while after import,
    taking a core from DuckDB for nothing: nodus gives NumPy only element-wise work.
    So BLAS gets one thread unless the environment says otherwise.
    """
    import os

    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


if __name__ == "__main__":  # pragma: no cover
    main()
