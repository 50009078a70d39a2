"""``nodus sql advise``: the fingerprints that cost the most time, with verified rewrites."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from nodus_cli.errors import InputError, UsageError
from nodus_cli.sqltools.catalog import read_catalog
from nodus_cli.sqltools.querylog import FoldResult, fold_spool, slowest
from nodus_cli.sqltools.rewrite import DEFAULT_RUNS, rewrite_sql, verify_rewrite

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


def advise(
    store: Store,
    *,
    limit: int,
    rules: list[str],
    runs: int = DEFAULT_RUNS,
    on_progress: Callable[[str], None] | None = None,
) -> tuple[FoldResult, list[Advice]]:
    """Fold the query spool, then try a verified rewrite of each of the slowest queries."""
    folded = fold_spool(store)
    catalog = read_catalog(store.con)
    advice: list[Advice] = []
    for entry in slowest(store, limit):
        item = Advice(
            entry.fingerprint,
            entry.runs,
            round(entry.total_ms, 3),
            round(entry.mean_ms, 3),
            round(entry.max_ms, 3),
            entry.sample,
        )
        try:
            report = rewrite_sql(entry.sample, rules=rules, catalog=catalog, con=store.con)
            verify_rewrite(report, store.con, runs=runs, on_progress=on_progress)
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
    return folded, advice
