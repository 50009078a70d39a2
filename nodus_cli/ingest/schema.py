"""Migration 2: the ingest bookkeeping columns that migration 1 did not carry.

``logs``, ``metrics``, ``quarantine`` and ``ingest_files`` come from migration 1
(their columns are an interface other packages rely on); this only adds what the
ingest checkpoint and ``nodus sources`` need. Documented in ``man/nodus-store.5``.
"""

from __future__ import annotations

from typing import Any

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
