"""Read patterns back: the current templates with their counts, one pattern in detail."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nodus_cli.errors import NotFoundError, UsageError

# The template a row belongs to now: its shape's ``absorbed_by`` (one hop, kept so).
ROW_PATTERN = "coalesce(s.absorbed_by, s.id)"


def format_id(pattern_id: int) -> str:
    return f"{pattern_id:016x}"


def parse_id(text: str) -> str:
    """A pattern id or a prefix of one (at least 4 hex digits), lower-cased."""
    cleaned = text.strip().lower()
    if len(cleaned) < 4 or len(cleaned) > 16 or any(c not in "0123456789abcdef" for c in cleaned):
        raise UsageError(f"{text!r}: a pattern id is 4 to 16 hex digits (see nodus patterns)")
    return cleaned


@dataclass(frozen=True)
class Filters:
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    level: str | None = None
    new_since: datetime | None = None

    def rows_where(self) -> tuple[str, list[Any]]:
        """Conditions on log rows ``l`` (empty when every row counts)."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.source is not None:
            clauses.append("l.source = ?")
            params.append(self.source)
        if self.since is not None:
            clauses.append("l.time >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("l.time < ?")
            params.append(self.until)
        if self.level is not None:
            clauses.append("l.level = ?")
            params.append(self.level)
        return " AND ".join(clauses), params


COLUMNS = ["id", "count", "first_seen", "last_seen", "levels", "sources", "template"]


def list_patterns(con: Any, filters: Filters, top: int | None = None) -> list[tuple[Any, ...]]:
    """Current templates, most lines first: id, count, first/last seen, levels, sources,
    template. With row filters the figures are those of the matching rows only."""
    where, params = filters.rows_where()
    if where:
        stats = f"""SELECT {ROW_PATTERN} AS id, count(*) AS count, min(l.time) AS first_seen,
                max(l.time) AS last_seen, histogram(l.level)::JSON AS levels,
                list(DISTINCT l.source ORDER BY l.source) AS sources
            FROM logs AS l JOIN patterns AS s ON s.id = l.pattern_id AND s.kind = 'shape'
            WHERE {where} GROUP BY 1"""
    else:
        stats = """SELECT id, count, first_seen, last_seen, levels, sources FROM patterns
            WHERE kind = 'template' AND absorbed_by IS NULL AND count > 0"""
    sql = f"""SELECT st.id, st.count, st.first_seen, st.last_seen, st.levels, st.sources,
            t.template
        FROM ({stats}) AS st JOIN patterns AS t ON t.id = st.id AND t.kind = 'template'
        {"WHERE t.first_seen >= ?" if filters.new_since is not None else ""}
        ORDER BY st.count DESC, t.template, st.id"""
    if filters.new_since is not None:
        params = [*params, filters.new_since]
    if top is not None:
        sql += f" LIMIT {int(top)}"
    rows = con.execute(sql, params).fetchall()
    return [(format_id(r[0]), r[1], r[2], r[3], _levels(r[4]), ", ".join(r[5]), r[6]) for r in rows]


def _levels(value: Any) -> str:
    """``error 3, info 120``: the level mix, most first; lines without a level last."""
    counts = json.loads(value) if isinstance(value, str) else dict(value or {})
    items = sorted(counts.items(), key=lambda kv: (kv[0] is None or kv[0] == "null", -kv[1]))
    return ", ".join(f"{'-' if k in (None, 'null') else k} {v}" for k, v in items)


@dataclass(frozen=True)
class PatternDetail:
    id: str
    template: str
    count: int
    first_seen: datetime | None
    last_seen: datetime | None
    sources: list[str]
    levels: str
    learned_at: datetime
    examples: list[str]
    absorbed: list[str]  # ids of patterns this one absorbed
    buckets: list[tuple[datetime, int]]


def resolve(con: Any, text: str) -> int:
    """The current template an id (or prefix) names, following absorption."""
    prefix = parse_id(text)
    rows = con.execute(
        "SELECT id, kind, absorbed_by FROM patterns WHERE printf('%016x', id) LIKE ? || '%'",
        [prefix],
    ).fetchall()
    if not rows:
        raise NotFoundError(f"no pattern {text!r} (see nodus patterns)")
    templates = [r for r in rows if r[1] == "template"] or rows
    targets = {int(r[2]) if r[2] is not None else int(r[0]) for r in templates}
    if len(targets) > 1:
        raise UsageError(f"pattern id {text!r} is ambiguous: give more digits")
    return targets.pop()


def show_pattern(
    con: Any, text: str, *, examples: int = 5, bucket: str = "1 hour"
) -> PatternDetail:
    pattern_id = resolve(con, text)
    row = con.execute(
        """SELECT template, count, first_seen, last_seen, sources, levels, learned_at
           FROM patterns WHERE id = ? AND kind = 'template'""",
        [pattern_id],
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no pattern {text!r} (see nodus patterns)")
    sample = con.execute(
        f"""SELECT DISTINCT l.message FROM logs AS l
            JOIN patterns AS s ON s.id = l.pattern_id AND s.kind = 'shape'
            WHERE {ROW_PATTERN} = ? ORDER BY l.message LIMIT ?""",
        [pattern_id, examples],
    ).fetchall()
    absorbed = con.execute(
        "SELECT id FROM patterns WHERE kind = 'template' AND absorbed_by = ? ORDER BY id",
        [pattern_id],
    ).fetchall()
    buckets = con.execute(
        f"""SELECT time_bucket(INTERVAL '{bucket}', l.time) AS b, count(*) FROM logs AS l
            JOIN patterns AS s ON s.id = l.pattern_id AND s.kind = 'shape'
            WHERE {ROW_PATTERN} = ? AND l.time IS NOT NULL GROUP BY b ORDER BY b""",
        [pattern_id],
    ).fetchall()
    return PatternDetail(
        format_id(pattern_id),
        row[0],
        row[1],
        row[2],
        row[3],
        list(row[4]),
        _levels(row[5]),
        row[6],
        [r[0] for r in sample],
        [format_id(int(r[0])) for r in absorbed],
        [(b, int(n)) for b, n in buckets],
    )


def lines_per_bucket(
    con: Any, ids: list[str], filters: Filters, buckets: int
) -> dict[str, list[int]]:
    """Lines of each listed pattern in ``buckets`` equal slices of their time span."""
    if not ids:
        return {}
    where, params = filters.rows_where()
    rows = con.execute(
        f"""WITH r AS (
              SELECT printf('%016x', {ROW_PATTERN}) AS id, l.time FROM logs AS l
              JOIN patterns AS s ON s.id = l.pattern_id AND s.kind = 'shape'
              WHERE l.time IS NOT NULL {"AND " + where if where else ""}),
            span AS (SELECT min(epoch(time)) AS lo, max(epoch(time)) AS hi FROM r)
            SELECT id, least({buckets - 1}, floor(({buckets}) * (epoch(time) - lo)
                   / greatest(hi - lo, 1e-9)))::INTEGER AS b, count(*)
            FROM r, span WHERE id IN (SELECT unnest(?::VARCHAR[])) GROUP BY ALL""",
        [*params, ids],
    ).fetchall()
    out = {i: [0] * buckets for i in ids}
    for pattern_id, bucket, count in rows:
        out[pattern_id][bucket] = int(count)
    return out
