"""An export directory: one folder of Parquet files per table, each with a manifest.

Layout (see ``man 5 nodus-export``)::

    DIR/<table>/_nodus.json                              manifest (columns, partitioning)
    DIR/<table>/day=2026-01-02/source=app/part-<batch>-0.parquet
    DIR/.nodus-staging/<batch>/                          files not yet published

Every Parquet file holds every column of the table (partition columns too), so the
files are self-contained and readers need no partition discovery; the directory
names are for layout and for pruning by other tools.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nodus_cli.errors import InputError, NotFoundError
from nodus_cli.fsutil import atomic_write

MANIFEST_NAME = "_nodus.json"
MANIFEST_FORMAT = "nodus-export"
MANIFEST_VERSION = 1
STAGING_DIRNAME = ".nodus-staging"
PARQUET_GLOB = "**/*.parquet"
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def quote_identifier(identifier: str) -> str:
    """A DuckDB identifier in double quotes."""
    return '"' + identifier.replace('"', '""') + '"'


def sql_literal(text: str) -> str:
    """A DuckDB string literal (for statements that take no parameters, such as COPY)."""
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Manifest:
    """What a table folder holds: the store table's columns and how it is partitioned."""

    table: str
    columns: list[tuple[str, str]]  # (name, DuckDB type) of the store table
    partition_by: list[str]  # the partition spec, e.g. ["day(time)", "source"]
    partition_columns: list[str]  # hive keys, e.g. ["day", "source"]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "table": self.table,
            "columns": [{"name": n, "type": t} for n, t in self.columns],
            "partition_by": self.partition_by,
            "partition_columns": self.partition_columns,
        }

    def write(self, folder: Path) -> None:
        atomic_write(folder / MANIFEST_NAME, (json.dumps(self.to_json(), indent=2) + "\n").encode())


def read_manifest(folder: Path) -> Manifest | None:
    """The folder's manifest, or None for Parquet that nodus did not write."""
    path = folder / MANIFEST_NAME
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable export manifest: {exc}") from None
    if document.get("format") != MANIFEST_FORMAT or document.get("version") != MANIFEST_VERSION:
        raise InputError(f"{path}: not a nodus export manifest of version {MANIFEST_VERSION}")
    return Manifest(
        document["table"],
        [(c["name"], c["type"]) for c in document["columns"]],
        list(document["partition_by"]),
        list(document["partition_columns"]),
    )


@dataclass(frozen=True)
class ExportedTable:
    """One table of an export directory, as a query engine sees it."""

    name: str
    folder: Path
    manifest: Manifest | None

    def files(self) -> list[Path]:
        return sorted(self.folder.glob(PARQUET_GLOB))

    @property
    def columns(self) -> list[str] | None:
        """The store table's columns (derived partition keys left out), None if unknown."""
        return [name for name, _ in self.manifest.columns] if self.manifest else None


def exported_tables(data: Path) -> list[ExportedTable]:
    """The tables under an export directory: folders with a manifest or Parquet files."""
    if not data.is_dir():
        raise NotFoundError(f"{data}: no such export directory")
    found = []
    for folder in sorted(data.iterdir()):
        if not folder.is_dir() or folder.name.startswith((".", "_")):
            continue
        if not _TABLE_NAME.fullmatch(folder.name):
            continue
        manifest = read_manifest(folder)
        if manifest is None and next(folder.glob(PARQUET_GLOB), None) is None:
            continue
        found.append(ExportedTable(folder.name, folder, manifest))
    if not found:
        raise NotFoundError(f"{data}: no exported tables here (run nodus export --to {data})")
    return found
