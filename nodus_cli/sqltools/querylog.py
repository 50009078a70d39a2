"""The query log: what ``nodus query`` ran and how long it took, folded into ``query_log``.

``nodus query`` holds the store read-only (other readers run beside it), so it cannot
insert a row. It appends one JSON line to a spool file in the workspace instead, with one
``O_APPEND`` write: cheap, no lock, safe with concurrent queries. ``fold_spool`` (run by
``nodus sql advise`` with the store open for writing) moves the spool aside under a unique
batch name, inserts its lines with their fingerprints in one journaled transaction, and
deletes it; a batch already in the table after a crash is only deleted, never re-inserted.
This module imports nothing heavy at top level: ``nodus query`` loads it on every run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nodus_cli.sqltools.deep import deep_recursion

if TYPE_CHECKING:
    from nodus_cli.store.db import Store

SPOOL_NAME = "query_log.spool"
FOLDING_SUFFIX = ".folding"
MAX_SQL_CHARS = 100_000  # longer queries are logged truncated (the fingerprint uses it all)


def spool_path(workspace_root: Path) -> Path:
    return workspace_root / SPOOL_NAME


def record_query(workspace_root: Path, sql: str, seconds: float, rows: int) -> None:
    """Append one line for a query that ran; never fails the query (errors are ignored)."""
    entry = {
        "time": dt.datetime.now(dt.UTC).isoformat(),
        "sql": sql,
        "ms": round(seconds * 1000, 3),
        "rows": rows,
    }
    line = (json.dumps(entry, ensure_ascii=False) + "\n").encode()
    with contextlib.suppress(OSError):
        fd = os.open(spool_path(workspace_root), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


@deep_recursion
def fingerprint(sql: str) -> tuple[str, str]:
    """The query with literals replaced by ``?`` as sqlglot writes it, and a short hash.

    ``IN`` lists of literals collapse to one ``?`` so that list length does not matter.
    Text sqlglot cannot parse is fingerprinted on its whitespace-normalised lower case.
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]

        def placeholder(node: exp.Expr) -> exp.Expr:
            if isinstance(node, exp.In) and node.expressions:
                if all(isinstance(item, exp.Literal) for item in node.expressions):
                    node.set("expressions", [exp.Placeholder()])
                return node
            if isinstance(node, exp.Literal):
                return exp.Placeholder()
            return node

        normalized = ";\n".join(
            statement.transform(placeholder).sql(dialect="duckdb", normalize=True)
            for statement in statements
        )
    except SqlglotError:
        normalized = " ".join(sql.lower().split())
    digest = hashlib.sha256(normalized.encode()).hexdigest()[:16]
    return normalized, digest


@dataclass
class FoldResult:
    batches: int = 0
    rows: int = 0
    skipped_lines: int = 0


def fold_spool(store: Store) -> FoldResult:
    """Move every spooled query into ``query_log`` (store opened for writing)."""
    root = store.path.parent
    result = FoldResult()
    spool = spool_path(root)
    if spool.exists():
        with contextlib.suppress(FileNotFoundError):
            spool.rename(root / f"{SPOOL_NAME}.{uuid.uuid4().hex}{FOLDING_SUFFIX}")
    for batch_file in sorted(root.glob(f"{SPOOL_NAME}.*{FOLDING_SUFFIX}")):
        batch = batch_file.name.removeprefix(f"{SPOOL_NAME}.").removesuffix(FOLDING_SUFFIX)
        done = store.con.execute(
            "SELECT count(*) FROM query_log WHERE batch = ?", [batch]
        ).fetchone()[0]
        if not done:
            rows, skipped = _rows(batch_file, batch)
            if rows:
                with store.change({"query_log": "fold", "batch": batch}) as summary:
                    store.con.executemany(
                        "INSERT INTO query_log VALUES (?, ?, ?, ?, ?, ?, ?)", rows
                    )
                    summary["rows"] = len(rows)
            result.rows += len(rows)
            result.skipped_lines += skipped
        batch_file.unlink()
        result.batches += 1
    return result


@deep_recursion
def _rows(path: Path, batch: str) -> tuple[list[list[Any]], int]:
    rows: list[list[Any]] = []
    skipped = 0
    for entry in _entries(path):
        if entry is None:
            skipped += 1
            continue
        normalized, digest = fingerprint(entry["sql"])
        rows.append(
            [
                entry["time"],
                digest,
                normalized,
                entry["sql"][:MAX_SQL_CHARS],
                float(entry["ms"]),
                entry.get("rows"),
                batch,
            ]
        )
    return rows, skipped


def _entries(path: Path) -> Iterator[dict[str, Any] | None]:
    """Each line as a dict, or None for a torn or foreign line."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                entry = json.loads(line)
            except ValueError:
                yield None
                continue
            valid = isinstance(entry, dict) and isinstance(entry.get("sql"), str)
            yield entry if valid and isinstance(entry.get("ms"), int | float) else None


@dataclass
class SlowQuery:
    fingerprint: str
    normalized: str
    sample: str
    runs: int
    total_ms: float
    mean_ms: float
    max_ms: float


def slowest(store: Store, limit: int) -> list[SlowQuery]:
    """Fingerprints by total time spent, with their latest query text as the sample."""
    rows = store.con.execute(
        """SELECT fingerprint, any_value(normalized), arg_max(sql, time), count(*),
                  sum(duration_ms), avg(duration_ms), max(duration_ms)
           FROM query_log GROUP BY fingerprint
           ORDER BY sum(duration_ms) DESC, fingerprint LIMIT ?""",
        [limit],
    ).fetchall()
    return [SlowQuery(*row) for row in rows]
