"""``nodus sql advise``: the fingerprints that cost the most time, with verified rewrites."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from nodus_cli.errors import InputError, UsageError
from nodus_cli.sqltools.catalog import read_catalog
from nodus_cli.sqltools.deep import deep_recursion
from nodus_cli.sqltools.querylog import FoldResult, SlowQuery, fold_spool, slowest
from nodus_cli.sqltools.rewrite import DEFAULT_RUNS, rewrite_sql, verify_rewrite
from nodus_cli.store.sandbox import check_read_only

if TYPE_CHECKING:
    from nodus_cli.store.db import Store

# A verified rewrite is offered only when its median time is at least 5% lower: anything
# closer is within the noise of a busy machine and not worth a change.
MEASURABLY_FASTER = 0.95


@dataclass
class Advice:
    fingerprint: str
    runs: int
    total_ms: float
    mean_ms: float
    max_ms: float
    sql: str
    rewrite: str | None = None
    speedup: float | None = None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def slowest_queries(store: Store, limit: int) -> tuple[FoldResult, list[SlowQuery]]:
    """Fold the query spool into the log (a write), then pick the slowest fingerprints."""
    folded = fold_spool(store)
    return folded, slowest(store, limit)


@deep_recursion
def advise(
    sandbox: Store,
    queries: list[SlowQuery],
    *,
    rules: list[str],
    runs: int = DEFAULT_RUNS,
    on_progress: Callable[[str], None] | None = None,
) -> list[Advice]:
    """Try a verified rewrite of each logged query, on a sandboxed store.

    The logged text is SQL someone else may have written (the spool is a file):
    it runs only where it cannot change anything (``open_user_sql``).
    """
    if not sandbox.sandboxed:
        raise ValueError("logged SQL runs only on a sandboxed store (open_user_sql)")
    catalog = read_catalog(sandbox.con)
    advice: list[Advice] = []
    for entry in queries:
        item = Advice(
            entry.fingerprint,
            entry.runs,
            round(entry.total_ms, 3),
            round(entry.mean_ms, 3),
            round(entry.max_ms, 3),
            entry.sample,
        )
        try:
            check_read_only(sandbox.con, entry.sample)
            report = rewrite_sql(entry.sample, rules=rules, catalog=catalog, con=sandbox.con)
            verify_rewrite(report, sandbox.con, runs=runs, on_progress=on_progress)
        except (InputError, UsageError) as exc:
            item.note = exc.message
        else:
            ratio = report.time_ratio
            if report.kept and ratio is not None and ratio <= MEASURABLY_FASTER:
                item.rewrite, item.speedup = report.rewritten, round(1 / ratio, 3)
            elif report.kept:
                item.note = "a verified rewrite exists but is not measurably faster"
            else:
                item.note = report.reason
        advice.append(item)
    return advice
