"""Learn the patterns of the log rows not learned yet, in the store's transaction.

Rows carry their shape from the moment they are inserted (``schema.shape_sql``).
Learning folds the new rows' shapes into the shape rows of ``patterns``, then mines
templates again over every shape the store knows (thousands of strings, not millions
of lines). Mining depends only on the multiset of shapes with their line counts, so
the current templates and their ids are the same whatever order files came in, and a
run killed before its commit is simply learned again by the next one: the learned
line numbers move in the same transaction as the patterns they produced.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nodus_cli.patterns import miner

SHAPE = "shape"
TEMPLATE = "template"
_NO_LIMIT = 2**62  # rows of no ingested file (loaded by hand) are never held


@dataclass
class _Pattern:
    id: int
    kind: str
    template: str
    absorbed_by: int | None
    count: int
    first_seen: datetime | None
    last_seen: datetime | None
    sources: set[str]
    levels: Counter[str]
    example: str | None
    learned_at: datetime

    def add(self, other: _Pattern) -> None:
        self.count += other.count
        self.first_seen = _least(self.first_seen, other.first_seen)
        self.last_seen = _greatest(self.last_seen, other.last_seen)
        self.sources |= other.sources
        self.levels.update(other.levels)


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
    """Learn every row past ``patterns_learned``; the caller owns the transaction."""
    # One row per shape of the rows to learn; its smallest line stands for it (the
    # same whatever the order), masked in DuckDB with the miner's own expression. A
    # row past its file's checkpoint is held (a last line still being written, which
    # ingest may replace): its shape is made known but its line counts only once the
    # checkpoint passes it.
    delta = con.execute(
        f"""SELECT *, {miner.mask_sql("example")} FROM (
              SELECT pattern_id, count(*) FILTER (WHERE counted),
                  min(time) FILTER (WHERE counted), max(time) FILTER (WHERE counted),
                  coalesce(list(DISTINCT source ORDER BY source) FILTER (WHERE counted), []),
                  histogram(level) FILTER (WHERE counted),
                  min(coalesce(message, '')) AS example
              FROM (SELECT l.*, coalesce(l.line_no, -1) > coalesce(w.line_no, -2)
                          AND coalesce(l.line_no, -1) <= coalesce(f.line_no, {_NO_LIMIT})
                          AS counted
                    FROM logs AS l
                    LEFT JOIN ingest_files AS f ON f.file_id = l.file_id
                    LEFT JOIN patterns_learned AS w ON w.file_id = coalesce(l.file_id, -1))
              WHERE counted
                 -- a held row, or a record whose message grew after it was learned
                 OR pattern_id NOT IN (SELECT id FROM patterns WHERE kind = 'shape')
              GROUP BY pattern_id)"""
    ).fetchall()
    if not delta:
        return Learned()
    known = {p.id: p for p in _load(con)}
    shapes = {i: p for i, p in known.items() if p.kind == SHAPE}
    held_by = {i: p.absorbed_by for i, p in shapes.items()}  # before mining moves them
    new_shapes = 0
    rows = 0
    for shape_id, count, first, last, sources, levels, example, masked_text in delta:
        rows += count
        fresh = _Pattern(
            int(shape_id),
            SHAPE,
            masked_text,  # a shape's template: its masked line, header and all
            None,
            int(count),
            first,
            last,
            {s for s in sources if s is not None},
            Counter({str(k): int(v) for k, v in (levels or {}).items() if k is not None}),
            example,
            now,
        )
        if fresh.id in shapes:
            shape = shapes[fresh.id]
            shape.add(fresh)
            if shape.example is None or fresh.example < shape.example:  # type: ignore[operator]
                shape.example, shape.template = fresh.example, fresh.template
        else:
            shapes[fresh.id] = fresh
            new_shapes += 1
    # Mining sees each distinct masked text once, with the lines of all its shapes.
    masked = Counter[str]()
    members: dict[str, list[_Pattern]] = {}
    for shape in shapes.values():
        masked[shape.template] += shape.count
        members.setdefault(shape.template, []).append(shape)
    templates: dict[int, _Pattern] = {}
    for mined in miner.mine(masked, settings):
        tid = template_id(mined.text)
        group = [shape for text in mined.messages for shape in members[text]]
        group.sort(key=lambda s: (-s.count, s.id))
        previous = known.get(tid)
        template = _Pattern(
            tid,
            TEMPLATE,
            mined.text,
            None,
            0,
            None,
            None,
            set(),
            Counter(),
            group[0].example,
            previous.learned_at if previous else now,
        )
        for shape in group:
            template.add(shape)
            shape.absorbed_by = tid
        templates[tid] = template
    new_templates = sorted(tid for tid in templates if tid not in known)
    # A template no longer mined was generalised: it points to the template that
    # holds most of its lines now; its own figures stay as they were.
    retired = [p for p in known.values() if p.kind == TEMPLATE and p.id not in templates]
    for old in retired:
        holders = Counter[int]()
        for shape in shapes.values():
            if held_by.get(shape.id) == old.id and shape.absorbed_by is not None:
                holders[shape.absorbed_by] += shape.count
        old.absorbed_by = (
            min(holders, key=lambda t: (-holders[t], t)) if holders else old.absorbed_by
        )
    # Earlier absorptions follow the chain to a current template (one hop to read).
    for old in retired:
        seen = set()
        while old.absorbed_by in known and old.absorbed_by not in templates:
            if old.absorbed_by in seen:
                break
            seen.add(old.absorbed_by)
            old.absorbed_by = known[old.absorbed_by].absorbed_by
    _store(con, [*shapes.values(), *templates.values(), *retired])
    con.execute("DELETE FROM patterns_learned")
    con.execute(
        f"""INSERT INTO patterns_learned
            SELECT coalesce(l.file_id, -1), coalesce(max(l.line_no) FILTER (
                WHERE coalesce(l.line_no, -1) <= coalesce(f.line_no, {_NO_LIMIT})), -1)
            FROM logs AS l LEFT JOIN ingest_files AS f ON f.file_id = l.file_id
            GROUP BY 1"""
    )
    return Learned(rows, new_shapes, new_templates, len(retired))


def _load(con: Any) -> list[_Pattern]:
    rows = con.execute(
        """SELECT id, kind, template, absorbed_by, count, first_seen, last_seen, sources,
                  levels, example, learned_at FROM patterns"""
    ).fetchall()
    return [
        _Pattern(
            int(r[0]),
            r[1],
            r[2],
            None if r[3] is None else int(r[3]),
            int(r[4]),
            r[5],
            r[6],
            set(r[7]),
            Counter(json.loads(r[8]) if r[8] else {}),
            r[9],
            r[10],
        )
        for r in rows
    ]


def _store(con: Any, patterns: list[_Pattern]) -> None:
    """Replace the derived ``patterns`` table in one statement."""
    patterns.sort(key=lambda p: (p.kind, p.id))
    con.execute("DELETE FROM patterns")
    con.execute(
        """INSERT INTO patterns
           SELECT unnest($id::UBIGINT[]), unnest($kind), unnest($template),
                  unnest($absorbed::UBIGINT[]),
                  unnest($count::BIGINT[]), unnest($first::TIMESTAMPTZ[]),
                  unnest($last::TIMESTAMPTZ[]), unnest($sources::VARCHAR[][]),
                  unnest($levels::JSON[]), unnest($example), unnest($learned::TIMESTAMPTZ[])""",
        {
            "id": [p.id for p in patterns],
            "kind": [p.kind for p in patterns],
            "template": [p.template for p in patterns],
            "absorbed": [p.absorbed_by for p in patterns],
            "count": [p.count for p in patterns],
            "first": [p.first_seen for p in patterns],
            "last": [p.last_seen for p in patterns],
            "sources": [sorted(p.sources) for p in patterns],
            "levels": [json.dumps(dict(sorted(p.levels.items()))) for p in patterns],
            "example": [p.example for p in patterns],
            "learned": [p.learned_at for p in patterns],
        },
    )


def _least(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _greatest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


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
