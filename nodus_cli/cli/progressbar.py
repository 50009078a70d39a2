"""The progress bar: real progress of long work, on a terminal only.

A library reports progress through ``nodus_cli.progress``; ``progress`` here is the
reporter the CLI passes, which draws on stderr when it is a terminal that can redraw
a line, after the work has run ``PROGRESS_DELAY`` seconds, and never with ``-q``, so
cron mail and pipes stay clean.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

from nodus_cli.cli import flags
from nodus_cli.cli.output import stderr_console, visible

# Work shorter than this many seconds shows no progress at all (``NODUS_PROGRESS_DELAY``
# overrides it: the tests set 0 to see the bar of a small input).
PROGRESS_DELAY = 1.0
PROGRESS_DELAY_ENV = "NODUS_PROGRESS_DELAY"


def _progress_delay() -> float:
    try:
        return max(0.0, float(os.environ.get(PROGRESS_DELAY_ENV, PROGRESS_DELAY)))
    except ValueError:
        return PROGRESS_DELAY


def _shows_progress() -> bool:
    """A progress line only on a terminal that can redraw it, and never with ``-q``."""
    return (
        not flags.STATE.quiet
        and flags.stderr_is_terminal()
        and os.environ.get("TERM", "") != "dumb"
    )


class _Meter:
    """A :class:`nodus_cli.progress.Progress` drawn as one line on stderr.

    Without a bar (a pipe, a file, ``-q``) every call does nothing. The bar appears
    once the work has taken the progress delay, so quick commands print nothing.
    It is also callable as ``advance(amount)``.
    """

    def __init__(self, bar: Any = None, task: Any = None) -> None:
        self._bar, self._task = bar, task
        self._items_done = 0

    def total(
        self, amount: float | None, items: int | None = None, unit: str | None = None
    ) -> None:
        if self._bar is not None:
            fields = {"items_total": items, "unit": unit}
            given = {name: value for name, value in fields.items() if value is not None}
            self._bar.update(self._task, total=amount, **given)

    def advance(self, amount: float = 0, items: int = 0) -> None:
        if self._bar is not None:
            self._items_done += items
            self._bar.update(self._task, advance=amount, items_done=self._items_done)
            if items:  # a finished file is drawn, not left to the next timed refresh
                self._bar.refresh()

    def stage(self, text: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, stage=text)

    def __call__(self, amount: float) -> None:
        self.advance(amount)


def _minutes(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}:{rest:02d}"


def _status_column(unit: str, items_unit: str) -> Any:
    """The text after the bar: ``45%  1.2 MB/2.7 MB  3/16 files  STAGE  0:04 (~0:05 left)``,
    on one line (cut with an ellipsis on a narrow terminal)."""
    from rich.filesize import decimal
    from rich.progress import ProgressColumn
    from rich.text import Text

    def amounts(counted: str, *values: float) -> str:
        if counted == "bytes":
            return "/".join(decimal(int(v)) for v in values)
        return "/".join(f"{v:,.0f}" for v in values) + f" {counted}"

    class Status(ProgressColumn):
        def render(self, task: Any) -> Text:
            parts = []
            counted = task.fields.get("unit", unit)
            if task.total:
                parts.append(f"{task.percentage:3.0f}%")
                parts.append(amounts(counted, task.completed, task.total))
            elif task.completed:
                parts.append(amounts(counted, task.completed))
            if task.fields.get("items_total"):
                items = f"{task.fields.get('items_done', 0)}/{task.fields['items_total']}"
                parts.append(f"{items} {items_unit}")
            if task.fields.get("stage"):
                parts.append(visible(task.fields["stage"]))
            clock = _minutes(task.elapsed or 0)
            remaining = task.time_remaining if task.total and not task.finished else None
            if remaining is not None:
                clock += f" (~{_minutes(remaining)} left)"
            parts.append(clock)
            return Text("  ".join(parts), no_wrap=True, overflow="ellipsis")

    return Status()


@contextlib.contextmanager
def progress(
    description: str,
    total: float | None = None,
    *,
    unit: str = "bytes",
    items_unit: str = "files",
    data_on_stdout: bool = False,
) -> Iterator[_Meter]:
    """Yield a Progress (see ``nodus_cli.progress``) to hand to the library doing the work.

    On a terminal it is a transient line on stderr: spinner, ``description``, bar,
    percentage, amount done of ``total`` in ``unit`` (sizes for bytes), items (files)
    done, the current stage, the time elapsed and left; it appears only once the work has
    taken ``PROGRESS_DELAY`` seconds and is erased at the end. In a pipe, a file
    (cron) or with ``-q`` nothing at all is printed. ``NO_COLOR`` only drops colour.
    Work that writes its data to stdout meanwhile (``data_on_stdout``) shows no bar
    when stdout is a terminal too: the two would be drawn over each other.
    """
    if not _shows_progress() or (data_on_stdout and flags.stdout_is_terminal()):
        yield _Meter()
        return
    import threading

    from rich.progress import BarColumn, SpinnerColumn, TextColumn
    from rich.progress import Progress as Bar

    # A duplicate of the terminal: the bar stays visible while fd 2 is /dev/null for
    # a child process (see child_stderr_quiet).
    stream = os.fdopen(
        os.dup(sys.stderr.fileno()), "w", encoding=sys.stderr.encoding, errors="replace"
    )
    console = stderr_console(stream)
    bar = Bar(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
        BarColumn(bar_width=24),
        _status_column(unit, items_unit),
        console=console,
        transient=True,
        redirect_stdout=False,  # data stays on stdout, never in the bar's console
        redirect_stderr=True,  # messages written meanwhile go above the bar
    )
    task = bar.add_task(visible(description), total=total)
    delay = _progress_delay()
    timer = threading.Timer(delay, bar.start)
    timer.daemon = True
    if delay:
        timer.start()
    else:
        bar.start()
    try:
        yield _Meter(bar, task)
    finally:
        timer.cancel()
        if delay:
            timer.join()  # a start under way finishes before the stop
        bar.stop()
        stream.close()
