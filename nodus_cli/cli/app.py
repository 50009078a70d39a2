"""The ``nodus`` application: global options, error handling, command registration.

Command modules are imported eagerly (typer has no lazy loading), so they must stay
cheap to import: heavy engines are imported inside the functions that use them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click import exceptions as click_exceptions
from typer.core import TyperGroup

from nodus_cli import __version__
from nodus_cli.cli import audit, core, export, ingest, keys, quickstart, state
from nodus_cli.cli import detect as detect_commands
from nodus_cli.cli.config import config_app
from nodus_cli.cli.output import error_line
from nodus_cli.cli.sql import sql_app
from nodus_cli.errors import NodusError

EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug in nodus, never a user's mistake
EXIT_INTERRUPTED = 130


class NodusGroup(TyperGroup):
    """Turns every error into one ``nodus: error:`` line and its documented exit code."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        state.reset(argv)
        code = self._run(argv, prog_name or "nodus", complete_var, extra)
        if standalone_mode:
            sys.exit(code)
        return code

    def _run(
        self, argv: list[str], prog_name: str, complete_var: str | None, extra: dict[str, Any]
    ) -> int:
        try:
            result = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except NodusError as exc:
            error_line(exc.message)
            if state.STATE.verbose > 1:
                _print_traceback()
            return exc.exit_code
        except click_exceptions.NoArgsIsHelpError as exc:
            sys.stderr.write(exc.format_message())  # rich help has already been printed
            return exc.exit_code
        except click_exceptions.ClickException as exc:
            error_line(_usage_message(exc))
            return exc.exit_code
        except (typer.Abort, KeyboardInterrupt):
            error_line("interrupted")
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            sys.stderr.close()  # the reader went away (| head): not an error
            return 0
        except Exception as exc:
            error_line(f"internal error: {type(exc).__name__}: {exc} (please report this)")
            if state.STATE.verbose:
                _print_traceback()
            return EXIT_INTERNAL
        return result if isinstance(result, int) else 0


def _print_traceback() -> None:
    import traceback

    traceback.print_exc()


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
        int, typer.Option("--verbose", "-v", count=True, help="More detail on stderr.")
    ] = 0,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    current = state.STATE
    current.home = str(home) if home else None
    current.lock_timeout = lock_timeout
    current.no_color = no_color
    current.quiet = quiet
    current.verbose = verbose


core.register(app)
ingest.register(app)
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
