"""``nodus quickstart``: a fresh workspace, the bundled samples, and the main job end to end.

Each capability adds its step to ``STEPS``; the CLI prints every step as it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from nodus_cli.errors import WorkspaceError
from nodus_cli.store import Invocation, Store, open_store
from nodus_cli.workspace import Workspace, init_workspace

SAMPLE_FILES = (
    "app.jsonl",
    "access.log",
    "syslog.log",
    "node.prom",
    "cpu.csv",
    "disk_used_pct.csv",
)


@dataclass
class StepResult:
    """What one step did: a title, a sentence, and optionally a small table."""

    title: str
    text: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


@dataclass
class Context:
    directory: Path
    workspace: Workspace
    store: Store
    samples: Path


Step = Callable[[Context], StepResult]


def copy_samples(target: Path) -> Path:
    """Copy the bundled sample files to ``target/samples`` and return that folder."""
    samples = target / "samples"
    samples.mkdir(parents=True, exist_ok=True)
    package = resources.files("nodus_cli.quickstart") / "data"
    for name in SAMPLE_FILES:
        (samples / name).write_bytes((package / name).read_bytes())
    return samples


def _query(ctx: Context, title: str, text: str, sql: str) -> StepResult:
    cursor = ctx.store.con.execute(sql)
    columns = [d[0] for d in cursor.description]
    return StepResult(title, text, columns, cursor.fetchall())


def load_samples(ctx: Context) -> StepResult:
    """Read the JSON-lines log and the CSV metrics straight into the store."""
    con = ctx.store.con
    with ctx.store.change({"step": "quickstart load"}) as summary:
        con.execute(
            """INSERT INTO logs (time, level, app, message, attrs, source, line_no)
            SELECT ts::TIMESTAMPTZ, level, service, msg,
                   to_json({'user': "user", 'latency_ms': latency_ms, 'order_id': order_id}),
                   'quickstart', row_number() OVER ()
            FROM read_json_auto(?)""",
            [str(ctx.samples / "app.jsonl")],
        )
        for name in ("cpu", "disk_used_pct"):
            con.execute(
                """INSERT INTO metrics (time, series, labels, value, source)
                SELECT time::TIMESTAMPTZ, ?, '{}', value, 'quickstart' FROM read_csv(?)""",
                [name, str(ctx.samples / f"{name}.csv")],
            )
        logs = con.execute("SELECT count(*) FROM logs").fetchone()[0]
        points = con.execute("SELECT count(*) FROM metrics").fetchone()[0]
        summary.update(logs=logs, metrics=points)
    return StepResult(
        "Load the sample logs and metrics",
        f"{logs} log records and {points} metric points are in the store.",
    )


def errors_per_hour(ctx: Context) -> StepResult:
    return _query(
        ctx,
        "Which hours had the most errors?",
        "nodus query \"SELECT date_trunc('hour', time) AS hour, count(*) AS errors "
        "FROM logs WHERE level = 'error' GROUP BY hour ORDER BY errors DESC LIMIT 5\"",
        """SELECT strftime(date_trunc('hour', time), '%Y-%m-%d %H:00') AS hour,
                  count(*) AS errors
           FROM logs WHERE level = 'error' GROUP BY ALL ORDER BY errors DESC, hour LIMIT 5""",
    )


def metric_summary(ctx: Context) -> StepResult:
    return _query(
        ctx,
        "What do the metric series look like?",
        'nodus query "SELECT series, count(*), min(value), max(value) FROM metrics GROUP BY 1"',
        """SELECT series, count(*) AS points, round(min(value), 1) AS min,
                  round(avg(value), 1) AS mean, round(max(value), 1) AS max
           FROM metrics GROUP BY series ORDER BY series""",
    )


def export_parquet(ctx: Context) -> StepResult:
    """Export logs and metrics to Parquet and count them back with DuckDB over the files."""
    from nodus_cli.scaleout import QueryEngine
    from nodus_cli.scaleout.engines import query_export
    from nodus_cli.scaleout.export import export_tables

    target = ctx.directory / "export"
    results = export_tables(ctx.store, ["logs", "metrics"], target)
    sql = "SELECT 'logs' AS table_name, count(*) AS rows FROM logs UNION ALL "
    sql += "SELECT 'metrics', count(*) FROM metrics ORDER BY table_name"
    with query_export(sql, QueryEngine.duckdb, target) as counted:
        rows = list(counted.rows)
        columns = counted.columns
    files = sum(len(r.files) for r in results)
    return StepResult(
        "Export to partitioned Parquet for DuckDB or Spark",
        f"nodus export logs metrics --to {target} wrote {files} files (by day, then "
        f"source); nodus query --data {target} [--engine spark] reads them back:",
        columns,
        rows,
        [str(target)],
    )


SAMPLE_SERVICE = """\
# A sample service configuration for nodus config.
[service]
name = "checkout"
port = 8080

[pool]
max = 100  # connections
min = 5
"""


def change_configuration(ctx: Context) -> StepResult:
    """Edit one value of a service file atomically, health-checked, with history."""
    from nodus_cli.confops.apply import apply_config
    from nodus_cli.confops.edit import parse_set
    from nodus_cli.confops.history import list_generations

    target = ctx.directory / "service.toml"
    target.write_text(SAMPLE_SERVICE)
    check = 'grep -q "max = 500" "$NODUS_CONFIG_TARGET"'
    result = apply_config(ctx.store, target, edits=[parse_set("pool.max=500")], check=check)
    rows = [
        (g.generation, g.source, g.sha256[:12], g.check_outcome or "")
        for g in list_generations(ctx.store, result.plan.target)
    ]
    return StepResult(
        "Change a service's configuration safely",
        f"nodus config apply service.toml --set pool.max=500 --check '{check}'; "
        "nodus config history service.toml",
        ["generation", "source", "sha256", "check"],
        rows,
        files=[str(target)],
    )


STEPS: list[Step] = [
    load_samples,
    errors_per_hour,
    metric_summary,
    change_configuration,
    export_parquet,
]


def run_quickstart(
    directory: Path, *, invocation: Invocation | None = None, lock_timeout: float = 10.0
) -> Iterator[StepResult]:
    """Make a fresh workspace in ``directory`` and run every step, yielding results."""
    workspace, created = init_workspace(directory)
    if not created:
        raise WorkspaceError(
            f"{workspace.root} already exists; quickstart wants a fresh directory "
            "(remove it or pass another DIR)"
        )
    samples = copy_samples(directory)
    with open_store(workspace, invocation=invocation, lock_timeout=lock_timeout) as store:
        ctx = Context(directory, workspace, store, samples)
        for step in STEPS:
            yield step(ctx)
