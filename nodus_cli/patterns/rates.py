"""A pattern's lines per time bucket, as a series the detectors can score."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from nodus_cli.errors import UsageError
from nodus_cli.patterns.query import ROW_PATTERN, format_id, resolve


@dataclass(frozen=True)
class PatternRate:
    """Which pattern, how wide a bucket, and the read-only query of its counts."""

    pattern_id: int
    template: str
    bucket: timedelta
    sql: str

    @property
    def key(self) -> str:
        """The series' name in ``anomalies`` and ``detector_state``."""
        return f"pattern:{format_id(self.pattern_id)}/{int(self.bucket.total_seconds())}s"


def rate_sql(pattern_id: int, bucket: timedelta, level: str | None = None) -> str:
    """(time, value): lines of the pattern in each bucket from its first line to the
    store's last, empty buckets included (a pattern that stops is a change too)."""
    seconds = int(bucket.total_seconds())
    if seconds < 1:
        raise UsageError("--bucket must be at least 1s")
    width = f"INTERVAL '{seconds} seconds'"
    level_filter = f"AND l.level = '{level.replace(chr(39), '')}'" if level else ""
    # The span ends at the last line of the pattern's sources, not of the whole store:
    # another system's later logs say nothing about this one's silence.
    return f"""WITH hits AS (
        SELECT time_bucket({width}, l.time) AS t, l.source FROM logs AS l
        JOIN patterns AS s ON s.id = l.pattern_id AND s.kind = 'shape'
        WHERE {ROW_PATTERN} = {int(pattern_id)} AND l.time IS NOT NULL {level_filter}),
    span AS (SELECT min(t) AS lo, (SELECT time_bucket({width}, max(time)) FROM logs
                                   WHERE source IN (SELECT source FROM hits)) AS hi
             FROM hits)
    SELECT g.t AS time, count(h.t) AS value
    FROM span, generate_series(span.lo, span.hi, {width}) AS g(t)
    LEFT JOIN hits AS h ON h.t = g.t
    GROUP BY g.t ORDER BY g.t"""


def pattern_rate(con: Any, text: str, bucket: timedelta, level: str | None = None) -> PatternRate:
    pattern_id = resolve(con, text)
    template = con.execute(
        "SELECT template FROM patterns WHERE id = ? AND kind = 'template'", [pattern_id]
    ).fetchone()
    return PatternRate(
        pattern_id, template[0] if template else "", bucket, rate_sql(pattern_id, bucket, level)
    )


def current_patterns(con: Any, level: str | None = None) -> list[tuple[int, str]]:
    """Every current template (with lines at ``level`` when given), most lines first."""
    if level is None:
        rows = con.execute(
            """SELECT id, template FROM patterns WHERE kind = 'template'
               AND absorbed_by IS NULL ORDER BY count DESC, id"""
        ).fetchall()
    else:
        rows = con.execute(
            f"""SELECT {ROW_PATTERN} AS id, any_value(t.template) FROM logs AS l
                JOIN patterns AS s ON s.id = l.pattern_id AND s.kind = 'shape'
                JOIN patterns AS t ON t.id = {ROW_PATTERN} AND t.kind = 'template'
                WHERE l.level = ? GROUP BY 1 ORDER BY count(*) DESC, 1""",
            [level],
        ).fetchall()
    return [(int(r[0]), r[1]) for r in rows]
