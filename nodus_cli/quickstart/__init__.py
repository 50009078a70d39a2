"""``nodus quickstart``: a fresh workspace, the bundled samples, and the main job end to end.

Each capability adds its step to ``STEPS``: the ``nodus`` commands it runs, in a new
process each, in the quickstart's directory, exactly as a user would type them there.
The CLI prints every command and what it printed, so what the quickstart shows is what
the commands did.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from nodus_cli.errors import NodusError, WorkspaceError
from nodus_cli.workspace import init_workspace

EXIT_INTERNAL = 70

SAMPLE_FILES = (
    "app.jsonl",
    "access.log",
    "syslog.log",
    "node.prom",
    "cpu.csv",
    "disk_used_pct.csv",
)


@dataclass(frozen=True)
class Command:
    """One ``nodus`` command line a step runs, exactly as the quickstart shows it."""

    args: tuple[str, ...]
    expect: int = 0  # its documented exit status on the samples (lint finds bugs: 1)
    env: tuple[tuple[str, str], ...] = ()

    @property
    def shown(self) -> str:
        prefix = "".join(f"{name}={_quote(value)} " for name, value in self.env)
        return prefix + " ".join(_quote(arg) for arg in ["nodus", *self.args])


def _quote(arg: str) -> str:
    """Shell quoting as a person writes it: SQL with 'literals' goes in double quotes."""
    if "'" in arg and not any(char in arg for char in '"$`\\!'):
        return f'"{arg}"'
    return shlex.quote(arg)


@dataclass(frozen=True)
class Step:
    """A titled group of commands, with a sentence that says what to look at."""

    title: str
    commands: tuple[Command, ...]
    note: str = ""
    files: tuple[str, ...] = ()  # what the step leaves in the directory


@dataclass
class CommandRun:
    """A command the quickstart ran, and what it printed (stdout and stderr, in order)."""

    command: Command
    exit_code: int
    output: str


@dataclass
class StepResult:
    title: str
    note: str
    runs: list[CommandRun] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


class StepFailed(NodusError):
    """A quickstart command did not exit as documented on the bundled samples: a bug."""

    exit_code = EXIT_INTERNAL


def copy_samples(target: Path) -> Path:
    """Copy the bundled sample files to ``target/samples`` and return that folder."""
    samples = target / "samples"
    samples.mkdir(parents=True, exist_ok=True)
    package = resources.files("nodus_cli.quickstart") / "data"
    for name in SAMPLE_FILES:
        (samples / name).write_bytes((package / name).read_bytes())
    return samples


QUICKSTART_PASSPHRASE = "nodus-quickstart-demo"  # a demo keyring only: never reuse it
DEMO_KEYRING = (("NODUS_PASSPHRASE", QUICKSTART_PASSPHRASE),)

SAMPLE_SERVICE = """\
# A sample service configuration for nodus config.
[service]
name = "checkout"
port = 8080

[pool]
max = 100  # connections
min = 5
"""
SAMPLE_QUERY = "SELECT app, message FROM logs WHERE level = NULL OR attrs = NULL ORDER BY time\n"
SAMPLE_FILES_MADE = {"service.toml": SAMPLE_SERVICE, "query.sql": SAMPLE_QUERY}
HEALTH_CHECK = 'grep -q "max = 500" "$NODUS_CONFIG_TARGET"'


SAMPLE_INCIDENT = "2026-11-20T14:17"  # the cpu spike of the samples


def _nodus(*args: str, expect: int = 0, keyring: bool = False) -> Command:
    return Command(tuple(args), expect, DEMO_KEYRING if keyring else ())


STEPS: list[Step] = [
    Step(
        "Ingest the sample logs and metrics",
        (_nodus("ingest", "samples/"),),
        "Each file's format is sniffed; rows + quarantined = records.",
    ),
    Step(
        "What kinds of log line are there?",
        (_nodus("patterns", "--top", "8"),),
        "Every row of logs has a pattern_id; nodus patterns show ID gives example lines "
        "and counts over time.",
    ),
    Step(
        "Which hours had the most errors?",
        (
            _nodus(
                "query",
                "SELECT strftime(date_trunc('hour', time), '%Y-%m-%d %H:00') AS hour, "
                "count(*) AS errors FROM logs WHERE level = 'error' "
                "GROUP BY hour ORDER BY errors DESC, hour LIMIT 5",
            ),
        ),
    ),
    Step(
        "What do the metric series look like?",
        (
            _nodus(
                "query",
                "SELECT series, count(*) AS points, round(min(value), 1) AS min, "
                "round(avg(value), 1) AS mean, round(max(value), 1) AS max "
                "FROM metrics GROUP BY series ORDER BY series",
            ),
        ),
    ),
    Step(
        "Which cpu points are anomalous?",
        (_nodus("detect", "cpu"),),
        "The sample has a spike on 2026-11-20 14:15-14:20; the next run scores only new points.",
    ),
    Step(
        "When will the disk be 90% full?",
        (
            _nodus(
                "forecast",
                "disk_used_pct",
                "--horizon",
                "1d",
                "--threshold",
                "90",
                "--report",
                "disk_used_pct-forecast.html",
            ),
        ),
        files=("disk_used_pct-forecast.html",),
    ),
    Step(
        "Change a service's configuration safely",
        (
            _nodus(
                "config", "apply", "service.toml", "--set", "pool.max=500", "--check", HEALTH_CHECK
            ),
            _nodus("config", "history", "service.toml"),
        ),
        "service.toml is a sample file; a failing --check would have put the old bytes back.",
        ("service.toml",),
    ),
    Step(
        "Keep hybrid post-quantum keys, seal and open a file",
        (
            _nodus("keys", "generate", keyring=True),
            _nodus("keys", "seal", "samples/cpu.csv", "-r", "@keyring", "-o", "cpu.csv.age"),
            _nodus("keys", "open", "cpu.csv.age", "-o", "cpu.opened.csv", keyring=True),
        ),
        f"This demo keyring's passphrase is '{QUICKSTART_PASSPHRASE}': never use it for real keys.",
        ("cpu.csv.age", "cpu.opened.csv"),
    ),
    Step(
        "Seal the logs into a signed audit bundle and verify it",
        (
            _nodus("audit", "seal", "logs", "-o", "logs.bundle", keyring=True),
            _nodus("audit", "verify", "logs.bundle"),
        ),
        "The bundle holds every row, so it is evidence on its own.",
        ("logs.bundle",),
    ),
    Step(
        "Lint a query, fix it, then write it for Postgres",
        (
            _nodus("sql", "lint", "query.sql", expect=1),
            _nodus("sql", "lint", "query.sql", "--fix"),
            _nodus("sql", "transpile", "query.sql", "--to", "postgres"),
        ),
        "query.sql is a sample query with two classic bugs; --fix rewrote the file.",
        ("query.sql",),
    ),
    Step(
        "Export to partitioned Parquet for DuckDB or Spark",
        (
            _nodus("export", "logs", "metrics", "--to", "export"),
            _nodus(
                "query",
                "SELECT 'logs' AS table_name, count(*) AS rows FROM logs UNION ALL "
                "SELECT 'metrics', count(*) FROM metrics ORDER BY table_name",
                "--data",
                "export",
            ),
        ),
        "Add --engine spark to run the same SQL on Apache Spark.",
        ("export",),
    ),
    Step(
        "What happened around the cpu spike?",
        (_nodus("timeline", "--around", SAMPLE_INCIDENT, "--window", "1h"),),
        "The events on one clock, then those before the spike, most likely related first.",
    ),
]


def run_command(command: Command, directory: Path) -> CommandRun:
    """Run ``nodus`` in ``directory`` as a user would after ``cd DIRECTORY``: a new
    process of this same nodus, finding the workspace ``.nodus/`` there."""
    package_root = str(Path(__file__).resolve().parents[2])
    env = {k: v for k, v in os.environ.items() if k not in ("NODUS_HOME", "NODUS_PASSPHRASE")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    env.update(command.env)
    done = subprocess.run(
        [sys.executable, "-m", "nodus_cli", *command.args],
        cwd=directory,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    return CommandRun(command, done.returncode, done.stdout)


def run_quickstart(directory: Path) -> Iterator[StepResult]:
    """Make a fresh workspace in ``directory`` and run every step, yielding results."""
    workspace, created = init_workspace(directory)
    if not created:
        raise WorkspaceError(
            f"{workspace.root} already exists; quickstart wants a fresh directory "
            "(remove it or pass another DIR)"
        )
    copy_samples(directory)
    for name, text in SAMPLE_FILES_MADE.items():
        (directory / name).write_text(text)
    for step in STEPS:
        result = StepResult(step.title, step.note, files=[str(directory / f) for f in step.files])
        for command in step.commands:
            run = run_command(command, directory)
            result.runs.append(run)
            if run.exit_code != command.expect:
                yield result
                raise StepFailed(
                    f"quickstart: '{command.shown}' exited {run.exit_code} instead of "
                    f"{command.expect} (please report this)"
                )
        yield result
