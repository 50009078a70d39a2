"""``nodus quickstart``: run the main job end to end on the bundled samples."""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nodus_cli.cli.options import JsonOption
from nodus_cli.cli.output import emit_json, say

if TYPE_CHECKING:
    from nodus_cli.quickstart import StepResult


def quickstart(
    directory: Annotated[
        Path, typer.Argument(help="Directory for the fresh workspace and sample files.")
    ] = Path("nodus-quickstart"),
    as_json: JsonOption = False,
) -> None:
    """Make a fresh workspace, load the bundled samples and show what nodus does.

    Every step runs real nodus commands in DIRECTORY, each in its own process, and
    shows each command line and what it printed.

    Examples:

      nodus quickstart              # a fresh workspace in ./nodus-quickstart, on the samples
    """
    from nodus_cli.quickstart import StepResult, run_quickstart

    steps: list[StepResult] = []
    try:
        for number, step in enumerate(run_quickstart(directory), 1):
            steps.append(step)
            if not as_json:
                _print_step(number, step, directory)
    finally:
        if as_json:
            emit_json(
                {
                    "workspace": str((directory / ".nodus").absolute()),
                    "steps": [
                        {
                            "title": s.title,
                            "note": s.note,
                            "commands": [
                                {
                                    "command": run.command.shown,
                                    "exit_code": run.exit_code,
                                    "output": run.output,
                                }
                                for run in s.runs
                            ],
                            "files": s.files,
                        }
                        for s in steps
                    ],
                }
            )
    if not as_json:
        say("")
        say(f"Done. Try: cd {directory} && nodus tables")


def _print_step(number: int, step: "StepResult", directory: Path) -> None:
    say("")
    say(f"[{number}] {step.title}" + (f"  (in {directory}/)" if number == 1 else ""))
    for run in step.runs:
        say(f"$ {run.command.shown}")
        sys.stderr.flush()
        sys.stdout.write(_shortened(run.output))
        sys.stdout.flush()
    if step.note:
        say(f"    {step.note}")


SHOWN_LINES = 24  # a longer output shows its head and tail, saying how much is left out


def _shortened(output: str) -> str:
    lines = output.splitlines(keepends=True)
    if len(lines) <= SHOWN_LINES:
        return output
    head, tail = lines[: SHOWN_LINES - 6], lines[-4:]
    skipped = len(lines) - len(head) - len(tail)
    return "".join([*head, f"... ({skipped} more lines)\n", *tail])


def register(app: typer.Typer) -> None:
    app.command()(quickstart)
