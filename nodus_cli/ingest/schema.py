"""Ingest's migrations: bookkeeping columns (2), how ``logs`` stores its text (9) and
the exact bytes of quarantined lines (10) and each row's shape for ``nodus patterns``
(11).

``logs``, ``metrics``, ``quarantine`` and ``ingest_files`` come from migration 1
(their columns are an interface other packages rely on); these only add what the
ingest checkpoint and ``nodus sources`` need, and never change a column's name or
type. Documented in ``man/nodus-store.5``.
"""

from __future__ import annotations

from typing import Any

from nodus_cli.store.migrations import Migration

INGEST_V2_STATEMENTS = (
    # Records seen (rows + quarantined), so "nothing lost" can be checked per file.
    "ALTER TABLE ingest_files ADD COLUMN records BIGINT NOT NULL DEFAULT 0",
    # Content bytes consumed over all runs (decompressed bytes for gzip input).
    "ALTER TABLE ingest_files ADD COLUMN bytes_read BIGINT NOT NULL DEFAULT 0",
    # 'gzip' when the file was recognised as gzip by its magic bytes, else NULL.
    "ALTER TABLE ingest_files ADD COLUMN compression VARCHAR",
    # The file's modification time at the last ingest (year inference uses it).
    "ALTER TABLE ingest_files ADD COLUMN mtime TIMESTAMPTZ",
)


def apply_ingest_v2(con: Any) -> None:
    for statement in INGEST_V2_STATEMENTS:
        con.execute(statement)


# Long, mostly unique text compresses better and several times faster with zstd than
# with the dictionary/FSST analysis DuckDB would otherwise run on every row group.
LOGS_V9 = """CREATE TABLE logs_v9 (
    time TIMESTAMPTZ,
    level VARCHAR,
    host VARCHAR,
    app VARCHAR,
    pid BIGINT,
    message VARCHAR USING COMPRESSION zstd,
    attrs JSON USING COMPRESSION zstd,
    source VARCHAR,
    file_id BIGINT,
    line_no BIGINT,
    byte_offset BIGINT
)"""


def apply_logs_zstd(con: Any) -> None:
    """Rebuild ``logs`` with zstd for ``message`` and ``attrs``, keeping every row."""
    con.execute(LOGS_V9)
    con.execute("INSERT INTO logs_v9 SELECT * FROM logs")
    con.execute("DROP TABLE logs")
    con.execute("ALTER TABLE logs_v9 RENAME TO logs")


# The raw text of a quarantined line is valid UTF-8 (undecodable bytes read as '?',
# NULs as spaces): the bytes as read are kept beside it whenever they differ.
QUARANTINE_BYTES = "ALTER TABLE quarantine ADD COLUMN raw_bytes BLOB"


def apply_quarantine_bytes(con: Any) -> None:
    con.execute(QUARANTINE_BYTES)


# A row's shape (``logs.pattern_id``): its message with every digit turned into 0,
# hashed. One digit or several stays visible (the pattern masks need to know), the
# values do not, so the lines of one kind share a few thousand shapes at most. Chained
# replace() costs DuckDB less than translate() or a regular expression.
def shape_sql(message: str) -> str:
    """The SQL expression of a row's shape id over the ``message`` expression."""
    expr = message
    for digit in "123456789":
        expr = f"replace({expr}, '{digit}', '0')"
    return shape_of_masked(expr)


def shape_of_masked(masked: str) -> str:
    """``shape_sql`` of a message whose digits are already 0 (``masked``; NULL as '')."""
    return f"hash(coalesce({masked}, ''))"


def add_pattern_id(con: Any) -> None:
    con.execute("ALTER TABLE logs ADD COLUMN pattern_id UBIGINT")
    con.execute(f"UPDATE logs SET pattern_id = {shape_sql('message')}")


MIGRATIONS = (
    Migration(2, "ingest: checkpoint bookkeeping on ingest_files", apply_ingest_v2),
    Migration(9, "ingest: zstd for logs.message and logs.attrs", apply_logs_zstd),
    Migration(10, "ingest: quarantine.raw_bytes, a line's bytes as read", apply_quarantine_bytes),
    Migration(11, "ingest: logs.pattern_id (each row's shape)", add_pattern_id),
)
