"""``nodus quickstart``: run the main job end to end on the bundled samples."""

import sys
from pathlib import Path
from typing import Annotated

import typer

from nodus_cli.cli import flags, state
from nodus_cli.cli.output import Format, JsonOption, emit_json, render_rows, say


def quickstart(
    directory: Annotated[
        Path, typer.Argument(help="Directory for the fresh workspace and sample files.")
    ] = Path("nodus-quickstart"),
    as_json: JsonOption = False,
) -> None:
    """Make a fresh workspace, load the bundled samples and show what nodus does."""
    from nodus_cli.quickstart import run_quickstart
    from nodus_cli.store import Invocation

    invocation = Invocation.from_argv("quickstart", flags.STATE.argv)
    state.install_schemas()
    steps = []
    for number, step in enumerate(run_quickstart(directory, invocation=invocation), 1):
        steps.append(step)
        if as_json:
            continue
        say("")
        say(f"[{number}] {step.title}")
        if step.text:
            say(f"    {step.text}")
        if step.columns:
            sys.stderr.flush()
            render_rows(step.columns, step.rows, Format.table)
    if as_json:
        emit_json(
            {
                "workspace": str((directory / ".nodus").absolute()),
                "steps": [
                    {
                        "title": s.title,
                        "text": s.text,
                        "rows": [dict(zip(s.columns, row, strict=True)) for row in s.rows],
                        "files": s.files,
                    }
                    for s in steps
                ],
            }
        )
    else:
        say("")
        say(f"Done. Try: cd {directory} && nodus tables")


def register(app: typer.Typer) -> None:
    app.command()(quickstart)
