"""``nodus quickstart``: a fresh workspace, the bundled samples, and the main job end to end.

Each capability adds its step to ``STEPS``; the CLI prints every step as it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from nodus_cli.errors import InputError, WorkspaceError
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
    """Ingest the sample logs and metrics through the same code path as ``nodus ingest``."""
    from nodus_cli.ingest.engine import ingest

    report = ingest(ctx.store, [str(ctx.samples / name) for name in SAMPLE_FILES])
    if report.failed:
        raise InputError(f"quickstart sample {report.failed[0].path}: {report.failed[0].error}")
    con = ctx.store.con
    logs = con.execute("SELECT count(*) FROM logs").fetchone()[0]
    points = con.execute("SELECT count(*) FROM metrics").fetchone()[0]
    return StepResult(
        "Ingest the sample logs and metrics",
        f"nodus ingest {ctx.samples}: {logs} log records and {points} metric points are in the "
        "store.",
        ["file", "format", "rows", "quarantined"],
        [(Path(f.path).name, f.format, f.rows, f.quarantined) for f in report.files],
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


QUICKSTART_PASSPHRASE = b"nodus-quickstart-demo"  # a demo keyring only: never reuse it


def keys_seal_and_open(ctx: Context) -> StepResult:
    """Make the keyring with a known demo passphrase, then seal and open one sample."""
    from nodus_cli.keys import age
    from nodus_cli.keys.files import keyring_identities
    from nodus_cli.keys.keyring import ENCRYPT, SIGN, Keyring

    unlocked = Keyring(ctx.workspace).unlock(QUICKSTART_PASSPHRASE, create=True)
    records = [unlocked.generate(SIGN), unlocked.generate(ENCRYPT)]
    unlocked.save()
    sample = ctx.samples / "cpu.csv"
    sealed = ctx.directory / "cpu.csv.age"  # beside samples/, which stays ingestible
    recipient = age.HybridRecipient(unlocked.encryption_recipient().public)
    with sample.open("rb") as source, sealed.open("wb") as target:
        age.seal(source, target, [recipient])
    opened = ctx.directory / "cpu.opened.csv"
    with sealed.open("rb") as source, opened.open("wb") as target:
        age.open_file(source, target, keyring_identities(unlocked))
    same = opened.read_bytes() == sample.read_bytes()
    ctx.store.record("ok", {"step": "quickstart keys", "keys": [r.key_id for r in records]})
    return StepResult(
        "Keep hybrid post-quantum keys, seal and open a file",
        "NODUS_PASSPHRASE=nodus-quickstart-demo nodus keys generate; nodus keys seal "
        "samples/cpu.csv -r @keyring -o cpu.csv.age; nodus keys open cpu.csv.age -o ... "
        f"(this demo keyring's passphrase is 'nodus-quickstart-demo'; the opened copy "
        f"{'matches' if same else 'DIFFERS FROM'} the original).",
        ["key", "purpose", "state", "algorithm"],
        [(r.key_id, r.purpose, r.state, r.algorithm) for r in records],
        files=[str(sealed), str(opened)],
    )


def audit_seal_and_verify(ctx: Context) -> StepResult:
    """Seal the logs table into a signed bundle with the demo key, then verify it."""
    from nodus_cli.audit.seal import last_checkpoint, remember, seal_rows
    from nodus_cli.audit.verify import verify_bundle
    from nodus_cli.keys.keyring import Keyring

    keyring = Keyring(ctx.workspace)
    key = keyring.primary_signing_key(QUICKSTART_PASSPHRASE)
    bundle = ctx.directory / "logs.bundle"
    prev = last_checkpoint(ctx.store, "nodus/logs")
    sealed = seal_rows(ctx.store, "logs", bundle, key=key, prev=prev)
    remember(ctx.store, sealed)
    report = verify_bundle(bundle, keyring.public_signing_keys())
    verdict = "verifies (exit 0)" if report.exit_code == 0 else f"FAILS (exit {report.exit_code})"
    return StepResult(
        "Seal the logs into a signed audit bundle and verify it",
        "nodus audit seal logs -o logs.bundle; nodus audit verify logs.bundle "
        f"(the bundle {verdict}; it holds every row, so it is evidence on its own).",
        ["bundle", "entries", "root", "signed by"],
        [(bundle.name, sealed.size, sealed.root.hex()[:16], sealed.key_id)],
        files=[str(bundle)],
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


def sql_lint_and_transpile(ctx: Context) -> StepResult:
    """Lint a query with two classic bugs against the store, and write it for Postgres."""
    from nodus_cli.sqltools.catalog import read_catalog
    from nodus_cli.sqltools.lint import lint_source
    from nodus_cli.sqltools.transpile import transpile_sql

    sql = "SELECT app, message FROM logs WHERE level = NULL OR attrs = NULL LIMIT 5"
    findings = lint_source(sql, catalog=read_catalog(ctx.store.con)).findings
    postgres = transpile_sql(sql.replace("= NULL", "IS NULL"), "duckdb", "postgres").sql
    return StepResult(
        "Lint a query, then write it for Postgres",
        f"nodus sql lint finds {len(findings)} problem(s) in: {sql}  --  "
        f"nodus sql transpile --to postgres gives: {postgres}",
        ["line", "column", "code", "message"],
        [(f.line, f.column, f.code, f.message) for f in findings],
    )


def detect_cpu(ctx: Context) -> StepResult:
    """Score the cpu series; the sample has a spike on 2026-11-20 14:15-14:20."""
    from nodus_cli.anomaly.detect import detect
    from nodus_cli.anomaly.source import parse_series

    result = detect(ctx.store, parse_series("cpu"))
    return StepResult(
        "Which cpu points are anomalous?",
        f"nodus detect cpu  (scored {result.scored} points, "
        f"{len(result.anomalies)} saved in the anomalies table)",
        ["time", "value", "score", "reason"],
        [
            (found.time.strftime("%Y-%m-%d %H:%M"), found.value, found.score, found.reason)
            for found in result.anomalies
        ],
    )


def forecast_disk(ctx: Context) -> StepResult:
    """Forecast disk usage against a 90% limit and write a self-contained HTML report."""
    from datetime import timedelta

    from nodus_cli.anomaly.source import parse_series
    from nodus_cli.forecast.model import forecast_source
    from nodus_cli.forecast.report import write_report

    result = forecast_source(
        ctx.store, parse_series("disk_used_pct"), horizon=timedelta(days=1), threshold=90.0
    )
    report = ctx.directory / "disk_used_pct-forecast.html"
    written = write_report(result, report)
    ctx.store.record("ok", {"step": "quickstart forecast", "report": str(report)})
    return StepResult(
        "When will the disk be 90% full?",
        "nodus forecast disk_used_pct --horizon 1d --threshold 90 "
        f"--report {report.name}\n    {result.summary()}",
        files=[str(path) for path in written],
    )


STEPS: list[Step] = [
    load_samples,
    errors_per_hour,
    metric_summary,
    detect_cpu,
    forecast_disk,
    change_configuration,
    keys_seal_and_open,
    audit_seal_and_verify,
    sql_lint_and_transpile,
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
