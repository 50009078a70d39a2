"""Tables of ``nodus patterns`` (migration 12); documented in ``man/nodus-store.5``.

``logs.pattern_id`` is the row's *shape* (``ingest.schema.shape_sql``): a hash of
its message with every digit turned into ``0``, computed as the row is inserted. It
is a pure function of the text (the same line gets the same id in any run, order or
workspace) and a row is never rewritten afterwards. Every shape is a row of
``patterns`` (kind ``shape``); mining groups shapes into templates (kind
``template``) and a shape points to the template that holds it through
``absorbed_by``. A template that a later, more general one absorbed points to it the
same way, so ``coalesce(absorbed_by, id)`` is always the pattern a row belongs to now.
"""

from __future__ import annotations

from typing import Any

from nodus_cli.store.migrations import Migration

TABLES = ("patterns", "patterns_learned")


def create_tables(con: Any) -> None:
    con.execute(
        """CREATE TABLE patterns (
            id UBIGINT NOT NULL,
            kind VARCHAR NOT NULL,          -- 'shape' or 'template'
            template VARCHAR NOT NULL,      -- <*> for every variable part
            absorbed_by UBIGINT,            -- the template holding it now; NULL: current
            count BIGINT NOT NULL,
            first_seen TIMESTAMPTZ,         -- event time of its first and last line
            last_seen TIMESTAMPTZ,
            sources VARCHAR[] NOT NULL,
            levels JSON NOT NULL,           -- lines per level
            example VARCHAR,
            learned_at TIMESTAMPTZ NOT NULL -- when nodus first committed it
        )"""
    )
    # How far each file's rows have been learned: rows past it are still to learn.
    con.execute(
        """CREATE TABLE patterns_learned (
            file_id BIGINT NOT NULL,
            line_no BIGINT NOT NULL
        )"""
    )


MIGRATIONS = (
    Migration(
        12,
        "patterns: patterns, patterns_learned",
        create_tables,
        TABLES,
        as_of=(("patterns", "learned_at"),),
    ),
)
