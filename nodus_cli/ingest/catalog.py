"""What has been ingested: the files (``nodus sources``) and quarantined lines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nodus_cli.store import Store

SOURCE_COLUMNS = (
    "file_id",
    "path",
    "source",
    "format",
    "fingerprint",
    "rows",
    "quarantined",
    "records",
    "bytes_read",
    "byte_offset",
    "line_no",
    "last_ingested",
)
QUARANTINE_COLUMNS = ("file_id", "path", "source", "line_no", "byte_offset", "reason", "raw")


@dataclass
class Listing:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def list_sources(store: Store) -> Listing:
    """Every ingested file with its checkpoint and counts, oldest first."""
    columns = ", ".join(SOURCE_COLUMNS)
    rows = store.con.execute(f"SELECT {columns} FROM ingest_files ORDER BY file_id").fetchall()
    return Listing(list(SOURCE_COLUMNS), rows)


def list_quarantine(store: Store, source: str | None = None, limit: int | None = None) -> Listing:
    """Quarantined lines, optionally of one source (its name or its file's path)."""
    sql = """SELECT q.file_id, f.path, f.source, q.line_no, q.byte_offset, q.reason, q.raw
             FROM quarantine q LEFT JOIN ingest_files f USING (file_id)"""
    params: list[Any] = []
    if source is not None:
        sql += " WHERE f.source = ? OR f.path = ?"
        params += [source, source]
    sql += " ORDER BY q.file_id, q.line_no"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return Listing(list(QUARANTINE_COLUMNS), store.con.execute(sql, params).fetchall())
