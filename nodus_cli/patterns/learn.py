"""Learn the patterns of the log rows not learned yet, in the store's transaction.

Rows carry their shape from the moment they are inserted (``schema.shape_sql``).
Learning folds the new rows' shapes into the shape rows of ``patterns``, then mines
templates again over every shape the store knows (thousands of strings, not millions
of lines). The figures of shapes and templates are aggregated and written in DuckDB;
Python only mines the distinct masked texts. Mining depends only on the multiset of
shapes with their line counts, so the current templates and their ids are the same
whatever order files came in, and a run killed before its commit is simply learned
again by the next one: the learned line numbers move in the same transaction as the
patterns they produced.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nodus_cli.patterns import miner

SHAPE = "shape"
TEMPLATE = "template"
_NO_LIMIT = 2**62  # rows of no ingested file (loaded by hand) are never held


@dataclass(frozen=True)
class Learned:
    """What one learning pass did."""

    rows: int = 0
    new_shapes: int = 0
    new_templates: list[int] = field(default_factory=list)
    absorbed: int = 0


def template_id(text: str) -> int:
    """A template's id: the first 8 bytes of the SHA-256 of its text."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def learn(con: Any, now: datetime, settings: miner.Settings | None = None) -> Learned:
    """Learn every row past ``patterns_learned``; the caller owns the transaction.

    Shapes and templates are aggregated in DuckDB; Python sees only the distinct
    masked texts with their line counts (what mining needs) and the templates that
    were generalised away.
    """
    # One row per shape of the rows to learn; its smallest line stands for it (the
    # same whatever the order). A row past its file's checkpoint is held (a last line
    # still being written, which ingest may replace): its shape is made known but its
    # line counts only once the checkpoint passes it.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE learn_delta AS
            SELECT pattern_id AS id, count(*) FILTER (WHERE counted) AS count,
                min(time) FILTER (WHERE counted) AS first_seen,
                max(time) FILTER (WHERE counted) AS last_seen,
                coalesce(list(DISTINCT source ORDER BY source)
                    FILTER (WHERE counted AND source IS NOT NULL), []) AS sources,
                histogram(level) FILTER (WHERE counted AND level IS NOT NULL) AS levels,
                min(coalesce(message, '')) AS example
            FROM (SELECT l.pattern_id, l.time, l.source, l.level, l.message,
                      coalesce(l.line_no, -1) > coalesce(w.line_no, -2)
                      AND coalesce(l.line_no, -1) <= coalesce(f.line_no, {_NO_LIMIT})
                      AS counted
                  FROM logs AS l
                  LEFT JOIN ingest_files AS f ON f.file_id = l.file_id
                  LEFT JOIN patterns_learned AS w ON w.file_id = coalesce(l.file_id, -1))
            WHERE counted
               -- a held row, or a record whose message grew after it was learned
               OR pattern_id NOT IN (SELECT id FROM patterns WHERE kind = 'shape')
            GROUP BY pattern_id"""
    )
    rows, new_shapes = con.execute(
        """SELECT sum(count), count(*) FILTER (WHERE id NOT IN
               (SELECT id FROM patterns WHERE kind = 'shape')) FROM learn_delta"""
    ).fetchone()
    if rows is None:
        con.execute("DROP TABLE learn_delta")
        return Learned()
    # Every shape with its new figures; a shape's template is its masked example
    # (header and all), masked in DuckDB with the miner's own expression.
    newer = "d.id IS NOT NULL AND (o.example IS NULL OR d.example < o.example)"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE learn_shapes AS
            WITH old AS (SELECT * FROM patterns WHERE kind = '{SHAPE}')
            SELECT coalesce(d.id, o.id) AS id,
                CASE WHEN {newer} THEN {miner.mask_sql("d.example")} ELSE o.template END
                    AS template,
                o.absorbed_by AS held_by,
                coalesce(o.count, 0) + coalesce(d.count, 0) AS count,
                least(o.first_seen, d.first_seen) AS first_seen,
                greatest(o.last_seen, d.last_seen) AS last_seen,
                list_sort(list_distinct(list_concat(coalesce(o.sources, []),
                    coalesce(d.sources, [])))) AS sources,
                {_merged_levels("CAST(o.levels AS MAP(VARCHAR, BIGINT))", "d.levels")} AS levels,
                CASE WHEN {newer} THEN d.example ELSE o.example END AS example,
                coalesce(o.learned_at, $now) AS learned_at
            FROM old AS o FULL JOIN learn_delta AS d ON d.id = o.id""",
        {"now": now},
    )
    # Mining sees each distinct masked text once, with the lines of all its shapes.
    masked = Counter[str](
        dict(con.execute("SELECT template, sum(count) FROM learn_shapes GROUP BY 1").fetchall())
    )
    mined = miner.mine(masked, settings)
    tids = [template_id(t.text) for t in mined]
    con.execute(
        """CREATE OR REPLACE TEMP TABLE learn_mined AS
           SELECT unnest($message) AS message, unnest($tid::UBIGINT[]) AS tid""",
        {
            "message": [m for t in mined for m in t.messages],
            "tid": [tid for tid, t in zip(tids, mined, strict=True) for _ in t.messages],
        },
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE learn_text AS
           SELECT unnest($tid::UBIGINT[]) AS tid, unnest($text) AS text""",
        {"tid": tids, "text": [t.text for t in mined]},
    )
    known = {
        int(tid): None if absorbed is None else int(absorbed)
        for tid, absorbed in con.execute(
            f"SELECT id, absorbed_by FROM patterns WHERE kind = '{TEMPLATE}'"
        ).fetchall()
    }
    current = set(tids)
    every = {int(row[0]) for row in con.execute("SELECT id FROM patterns").fetchall()}
    new_templates = sorted(tid for tid in current if tid not in every)
    retired = _retire(con, known, current)
    con.execute(
        """CREATE OR REPLACE TEMP TABLE learn_retired AS
           SELECT unnest($id::UBIGINT[]) AS id, unnest($absorbed::UBIGINT[]) AS absorbed_by""",
        {"id": list(retired), "absorbed": list(retired.values())},
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE learn_patterns AS
            SELECT s.id, '{SHAPE}' AS kind, s.template, m.tid AS absorbed_by, s.count,
                s.first_seen, s.last_seen, s.sources, s.levels, s.example, s.learned_at
            FROM learn_shapes AS s JOIN learn_mined AS m ON m.message = s.template
            UNION ALL
            SELECT t.tid, '{TEMPLATE}', t.text, NULL, g.count, g.first_seen, g.last_seen,
                g.sources, g.levels, g.example, coalesce(p.learned_at, $now)
            FROM learn_text AS t
            JOIN (SELECT m.tid, sum(s.count) AS count, min(s.first_seen) AS first_seen,
                      max(s.last_seen) AS last_seen,
                      list_sort(list_distinct(flatten(list(s.sources)))) AS sources,
                      {_summed_levels("s.levels")} AS levels,
                      first(s.example ORDER BY s.count DESC, s.id) AS example
                  FROM learn_shapes AS s JOIN learn_mined AS m ON m.message = s.template
                  GROUP BY m.tid) AS g ON g.tid = t.tid
            LEFT JOIN patterns AS p ON p.id = t.tid AND p.kind = '{TEMPLATE}'
            UNION ALL
            SELECT p.id, p.kind, p.template, r.absorbed_by, p.count, p.first_seen,
                p.last_seen, p.sources, CAST(p.levels AS MAP(VARCHAR, BIGINT)), p.example,
                p.learned_at
            FROM patterns AS p JOIN learn_retired AS r ON r.id = p.id
            WHERE p.kind = '{TEMPLATE}'""",
        {"now": now},
    )
    con.execute("DELETE FROM patterns")
    con.execute(
        """INSERT INTO patterns
           SELECT id, kind, template, absorbed_by, count, first_seen, last_seen, sources,
               CAST(levels AS JSON), example, learned_at
           FROM learn_patterns ORDER BY kind, id"""
    )
    for table in _WORK_TABLES:
        con.execute(f"DROP TABLE {table}")
    con.execute("DELETE FROM patterns_learned")
    con.execute(
        f"""INSERT INTO patterns_learned
            SELECT coalesce(l.file_id, -1), coalesce(max(l.line_no) FILTER (
                WHERE coalesce(l.line_no, -1) <= coalesce(f.line_no, {_NO_LIMIT})), -1)
            FROM logs AS l LEFT JOIN ingest_files AS f ON f.file_id = l.file_id
            GROUP BY 1"""
    )
    return Learned(int(rows), int(new_shapes), new_templates, len(retired))


_WORK_TABLES = (
    "learn_delta",
    "learn_shapes",
    "learn_mined",
    "learn_text",
    "learn_retired",
    "learn_patterns",
)


def _merged_levels(*maps: str) -> str:
    """Lines per level of several MAP(level, lines) expressions of one row, summed."""
    return _summed_entries(" || ".join(f"coalesce(map_entries({m}), [])" for m in maps))


def _summed_levels(column: str) -> str:
    """Lines per level summed over a group's MAP(level, lines) values."""
    return _summed_entries(f"flatten(list(coalesce(map_entries({column}), [])))")


def _summed_entries(entries: str) -> str:
    return f"""map_from_entries(list_transform(
        list_sort(list_distinct(list_transform({entries}, lambda e: e.key))),
        lambda k: {{'key': k, 'value': list_sum(list_transform(
            list_filter({entries}, lambda e: e.key = k), lambda e: e.value))::BIGINT}}))"""


def _retire(con: Any, known: dict[int, int | None], current: set[int]) -> dict[int, int | None]:
    """Where each template no longer mined points now.

    A template no longer mined was generalised: it points to the template that holds
    most of its lines now (ties: the smaller id), its own figures staying as they
    were. Earlier absorptions then follow the chain to a current template.
    """
    retired = {tid: absorbed for tid, absorbed in known.items() if tid not in current}
    if not retired:
        return {}
    holders: dict[int, Counter[int]] = {}
    for held_by, tid, count in con.execute(
        """SELECT s.held_by, m.tid, sum(s.count) FROM learn_shapes AS s
           JOIN learn_mined AS m ON m.message = s.template
           WHERE s.held_by IS NOT NULL GROUP BY ALL"""
    ).fetchall():
        holders.setdefault(int(held_by), Counter())[int(tid)] += int(count)
    for old in sorted(retired):
        held = holders.get(old)
        if held:
            retired[old] = min(held, key=lambda t: (-held[t], t))
    for old in sorted(retired):
        seen: set[int] = set()
        target = retired[old]
        while target in retired and target not in seen:
            seen.add(target)
            target = retired[target]
        retired[old] = target
    return retired


def learn_pending(store: Any, settings: miner.Settings | None = None) -> Learned:
    """Learn the rows not learned yet in a transaction of its own (derived state: no
    journal row; a run killed before its commit is learned again by the next)."""
    import datetime as dt

    con = store.con
    con.execute("BEGIN TRANSACTION")
    try:
        learned = learn(con, dt.datetime.now(dt.UTC), settings)
        store.commit()
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return learned
