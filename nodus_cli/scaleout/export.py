"""``nodus export``: store tables to hive-partitioned Parquet, incremental and crash-safe.

The high-water mark is not a timestamp watermark: ``time`` is not insertion order
(late and backfilled data), and a wall clock can step backwards. It is one of three
ledgers:

- By commit (``logs``, ``metrics``, ``quarantine``, ``anomalies``, whose rows carry
  ``committed_at``, the start time of the transaction that wrote them): every commit
  time seen goes into ``export_commits`` with how many rows of it the table held. An
  export counts the table's rows per ``committed_at`` (one column, no hashing) and
  writes the rows of commit times the ledger has never seen. The order of the values
  plays no part, so a clock stepping back, or a transaction committing after a later
  one, loses nothing. A commit time whose count grew since the last export (two
  commits that started in the same microsecond, rows written with an explicit
  ``committed_at``) is settled row by row: its rows' fingerprints against those of
  its rows already in the export's files. Rows written with an earlier commit's
  exact ``committed_at`` while at least as many of that commit's rows are deleted
  (between the same two exports) are not seen; nodus only stamps a row with the
  time of the transaction writing it.
- By load (user tables written by ``nodus load``, which is the only writer of a user
  table: user SQL runs read-only): each load is in ``table_loads`` with the table's
  row count before and after it, and an export keeps the load and row position it
  reached (``export_loads``). When every load since was an append that began where
  the previous one ended, and the table holds as many rows as the last load left
  (its row ids then run from 0 in insertion order: nothing was deleted), the new
  rows are those at and past the position, read by row id (DuckDB skips the row
  groups before it). Otherwise (a ``--replace``) the table's rows are settled row by
  row: their fingerprints against those of the rows in the export's files.
- By row (every other table): each exported row's fingerprint, the 128-bit
  ``md5_number(to_json(row))``, goes into ``export_rows``; an export writes the rows
  whose fingerprint occurs more often in the table than in the ledger (a multiset
  difference, so identical rows are counted, not merged). This rehashes the table.

Both survive deletes and any insert order; an update is a new row by row, and by
commit when it sets a new ``committed_at`` (ingest does, when it appends a
continuation line to an earlier record). Rows deleted from the store stay in the
export, which is append-only until ``--full`` rewrites it.

Crash safety: DuckDB writes the new files into ``DIR/.nodus-staging/<batch>/``, they
are fsynced, then one store transaction records the batch and its ledger entries
(the decision point), and only then are the files renamed into place. A crash
before the decision leaves an invisible staging folder that the next export
deletes; a crash after it leaves a staging folder that the next export finishes
publishing. Readers only ever see complete files.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodus_cli.errors import InputError, NotFoundError, UsageError
from nodus_cli.fsutil import fsync_dir
from nodus_cli.progress import ProgressLike, reporter
from nodus_cli.scaleout.dataset import (
    PARQUET_GLOB,
    STAGING_DIRNAME,
    Manifest,
    quote_identifier,
    sql_literal,
)
from nodus_cli.scaleout.schema import COMMIT_LEDGER, LOAD_MARKS
from nodus_cli.store.asof import COMMITTED_AT, is_stamped
from nodus_cli.store.db import Store
from nodus_cli.store.loads import LOAD_LEDGER

DEFAULT_PARTITIONING: dict[str, list[str]] = {
    "logs": ["day(time)", "source"],
    "metrics": ["day(time)", "source"],
}
# Derived partition keys: name -> DuckDB expression over one date/time column.
DERIVED_KEYS = {
    "year": "year({})",
    "month": "strftime({}, '%Y-%m')",
    "day": "CAST({} AS DATE)",
    "hour": "strftime({}, '%Y-%m-%dT%H')",
}
MAX_PARTITIONS = 10_000  # more directories than this is almost surely a wrong column
FILE_SIZE = "256MB"  # DuckDB starts a new file in a partition beyond this size
FINGERPRINT = "md5_number(to_json(row))"
NEW_ROWS_TABLE = "_nodus_export_new"
COMMITS_TABLE = "_nodus_export_commits"
FINGERPRINT_COLUMN = "_nodus_fp"
BY_COMMIT, BY_LOAD, BY_ROW = "commit", "load", "row"  # how a table's exported rows are tracked
COMMIT_METHOD = f"rows per {COMMITTED_AT}"
LOAD_METHOD = "row position per nodus load"
MAX_LISTED_COMMITS = 1_000  # beyond this, commit times are a subquery, not SQL text
_SPEC_ITEM = re.compile(r"(?:(?P<fn>[a-z]+)\((?P<arg>[^()]+)\)|(?P<col>[^()]+))")


@dataclass(frozen=True)
class PartitionKey:
    """One hive partition level: its directory key and the expression computing it."""

    spec: str  # as written: "day(time)" or "source"
    name: str  # directory key: "day" or "source"
    expression: str  # DuckDB SQL over the table's columns
    derived: bool


@dataclass
class ExportResult:
    """What one table's export did."""

    table: str
    target: str
    mode: str  # "full", "append" or "unchanged"
    rows: int
    tracking: str = BY_ROW  # BY_COMMIT, BY_LOAD or BY_ROW
    files: list[str] = field(default_factory=list)
    partitions: int = 0
    batch: str | None = None
    total_rows: int = 0  # rows in the export after this run

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "target": self.target,
            "mode": self.mode,
            "tracking": self.tracking,
            "rows": self.rows,
            "files": len(self.files),
            "partitions": self.partitions,
            "batch": self.batch,
            "total_rows": self.total_rows,
        }


def parse_partition_spec(
    spec: str | Sequence[str], columns: list[tuple[str, str]]
) -> list[PartitionKey]:
    """Parse ``"day(time),source"`` against the table's columns; ``"none"`` is no partitioning."""
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    items = [item for item in items if item]
    if items == ["none"] or not items:
        return []
    types = {name.lower(): (name, type_name) for name, type_name in columns}
    keys: list[PartitionKey] = []
    for item in items:
        match = _SPEC_ITEM.fullmatch(item)
        if match is None:
            raise UsageError(f"bad partition key {item!r} (a column, or day(COLUMN), ...)")
        column_ref = (match.group("arg") or match.group("col")).strip()
        if column_ref.lower() not in types:
            raise UsageError(f"partition key {item!r}: no column {column_ref!r} in the table")
        column, type_name = types[column_ref.lower()]
        function = match.group("fn")
        if function is None:
            keys.append(PartitionKey(item, column, quote_identifier(column), derived=False))
            continue
        if function not in DERIVED_KEYS:
            raise UsageError(
                f"partition key {item!r}: unknown function {function}() "
                f"(one of {', '.join(f'{f}()' for f in DERIVED_KEYS)})"
            )
        if "DATE" not in type_name.upper() and "TIMESTAMP" not in type_name.upper():
            raise UsageError(f"partition key {item!r}: {column} is {type_name}, not a date or time")
        if function in types:
            raise UsageError(
                f"partition key {item!r}: the table already has a column named {function}"
            )
        keys.append(
            PartitionKey(
                item, function, DERIVED_KEYS[function].format(quote_identifier(column)), True
            )
        )
    names = [key.name.lower() for key in keys]
    if len(set(names)) != len(names):
        raise UsageError(f"partition keys repeat a name: {', '.join(k.spec for k in keys)}")
    return keys


@dataclass(frozen=True)
class _TargetState:
    target_id: int
    partition_by: list[str]
    columns: list[tuple[str, str]]
    fingerprint: str
    rows: int
    batches: int


def _target_state(store: Store, target: Path) -> _TargetState | None:
    row = store.con.execute(
        "SELECT target_id, partition_by, columns, fingerprint, rows, batches "
        "FROM export_targets WHERE target = ?",
        [str(target)],
    ).fetchone()
    if row is None:
        return None
    columns = [(name, type_name) for name, type_name in json.loads(row[2])]
    return _TargetState(row[0], json.loads(row[1]), columns, row[3], row[4], row[5])


def _table_columns(store: Store, table: str) -> list[tuple[str, str]]:
    rows = store.con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return [(name, type_name) for name, type_name in rows]


def _fingerprint_method() -> str:
    """The fingerprint and the DuckDB version whose ``to_json`` text it hashes."""
    import duckdb

    major_minor = ".".join(duckdb.__version__.split(".")[:2])
    return f"{FINGERPRINT} duckdb {major_minor}"


def _tracking(
    store: Store, table: str, columns: list[tuple[str, str]], kept: str | None
) -> tuple[str, str]:
    """How the table's rows are tracked, and the method's name in ``export_targets``.

    By commit for the tables nodus stamps with ``committed_at``; by load for a table
    ``nodus load`` wrote, unless its export is kept (``kept``: the target's method,
    None for a new or ``--full`` export) by row fingerprints, as one exported before
    loads were recorded is; by row otherwise.
    """
    if is_stamped(table) and (COMMITTED_AT, "TIMESTAMP WITH TIME ZONE") in columns:
        return BY_COMMIT, COMMIT_METHOD
    loaded = store.con.execute(
        f"SELECT count(*) FROM {LOAD_LEDGER} WHERE lower(table_name) = lower(?)", [table]
    ).fetchone()[0]
    if loaded and kept in (None, LOAD_METHOD):
        return BY_LOAD, LOAD_METHOD
    return BY_ROW, _fingerprint_method()


def export_tables(
    store: Store,
    tables: Sequence[str],
    to: Path,
    *,
    partition_by: str | None = None,
    full: bool = False,
    on_progress: ProgressLike | None = None,
) -> list[ExportResult]:
    """Export each table to ``to/<table>/``; finish or clean up interrupted exports first.

    ``on_progress`` hears the steps of each table (see ``export_table``), the current
    stage and the tables done."""
    if not tables:
        raise UsageError("name at least one table to export")
    known = {name.lower(): name for name in store.table_names()}
    missing = [t for t in tables if t.lower() not in known]
    if missing:
        raise NotFoundError(f"no such table: {', '.join(missing)} (see nodus tables)")
    names = list(dict.fromkeys(known[t.lower()] for t in tables))
    to = Path(to).absolute()
    if to.exists() and not to.is_dir():
        raise UsageError(f"{to} is not a directory")
    try:
        (to / STAGING_DIRNAME).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create {to}: {exc.strerror}") from None
    progress = reporter(on_progress)
    progress.total(None, items=len(names))
    recover(store, to)
    results = []
    for name in names:
        results.append(
            export_table(
                store, name, to, partition_by=partition_by, full=full, on_progress=progress
            )
        )
        progress.advance(items=1)
    return results


def export_table(
    store: Store,
    table: str,
    to: Path,
    *,
    partition_by: str | None = None,
    full: bool = False,
    on_progress: ProgressLike | None = None,
) -> ExportResult:
    """Write the table's new rows (all rows with ``full``) as Parquet under ``to/<table>/``.

    Call ``recover`` on ``to`` first (``export_tables`` does). ``on_progress(1)`` is
    called when the files are staged, when the batch is committed, and per file
    published.
    """
    progress = reporter(on_progress)
    columns = _table_columns(store, table)
    target = to / table
    state = _target_state(store, target)
    kept = None if full or state is None else state.fingerprint
    tracking, method = _tracking(store, table, columns, kept)
    spec = partition_by
    if spec is None:
        spec_items = state.partition_by if state else DEFAULT_PARTITIONING.get(table, [])
    else:
        spec_items = [s.strip() for s in spec.split(",") if s.strip()]
    keys = parse_partition_spec(spec_items, columns)
    spec_items = [key.spec for key in keys]
    mode = "full" if full or state is None else "append"
    if state is None and not full and target.exists() and any(target.iterdir()):
        raise UsageError(
            f"{target} exists and was not exported from this store; pass --full to replace it"
        )
    if mode == "append" and state is not None:
        if spec_items != state.partition_by:
            raise UsageError(
                f"{target} is partitioned by {','.join(state.partition_by) or 'none'}; "
                "changing the partitioning rewrites it: pass --full"
            )
        if columns != state.columns:
            raise UsageError(
                f"the columns of {table} changed since {target} was exported; pass --full"
            )
        if method != state.fingerprint:
            raise UsageError(
                f"{target} was tracked with {state.fingerprint}, this nodus uses {method}; "
                "pass --full to rewrite it"
            )
    batch = uuid.uuid4().hex
    staging = to / STAGING_DIRNAME / batch
    result = ExportResult(table, str(target), mode, 0, tracking, batch=batch)
    summary = {
        "table": table,
        "to": str(target),
        "mode": mode,
        "tracking": tracking,
        "batch": batch,
    }
    committed = False
    try:
        with store.change(summary) as details:
            target_id = state.target_id if state else _next_target_id(store)
            progress.stage(f"{table}: finding new rows")
            ledger_id = target_id if mode == "append" else None
            mark: _LoadMark | None = None
            if tracking == BY_COMMIT:
                result.rows = _stage_new_commits(store, table, columns, target, ledger_id)
            elif tracking == BY_LOAD:
                result.rows, mark = _stage_new_loads(store, table, columns, target, ledger_id)
            else:
                result.rows = _stage_new_rows(store, table, ledger_id)
            details["rows"] = result.rows
            if result.rows == 0 and mode == "append":
                result.mode, result.batch = "unchanged", None
                details["mode"] = "unchanged"
                if tracking == BY_COMMIT:
                    _record_commits(store, target_id)
                if mark is not None:
                    _record_mark(store, target_id, mark, 0, full=False)
                store.con.execute(
                    "UPDATE export_targets SET last_export = now() WHERE target_id = ?",
                    [target_id],
                )
            else:
                result.partitions = _check_partitions(store, keys)
                progress.stage(f"{table}: writing {result.rows:,} rows")
                result.files = _write_staging(store, columns, keys, staging, batch)
                if mode == "full":
                    staging.mkdir(exist_ok=True)
                    Manifest(table, columns, spec_items, [k.name for k in keys]).write(staging)
                _fsync_tree(staging)
                progress.advance(1)
                _record_batch(store, target_id, mode, tracking, staging, batch, result)
                if mark is not None:
                    _record_mark(store, target_id, mark, result.rows, full=mode == "full")
                _record_target(store, target_id, target, table, spec_items, columns, method)
                details.update(files=len(result.files), partitions=result.partitions)
        committed = True
        progress.advance(1)
    finally:
        for scratch in (NEW_ROWS_TABLE, COMMITS_TABLE):
            with contextlib.suppress(Exception):
                store.con.execute(f"DROP TABLE IF EXISTS {scratch}")
        if not committed:
            shutil.rmtree(staging, ignore_errors=True)
    if result.batch is not None:
        progress.stage(f"{table}: publishing {len(result.files):,} files")
        publish(mode, staging, target, progress)
    result.total_rows = _exported_total(store, target_id)
    return result


def _next_target_id(store: Store) -> int:
    return int(
        store.con.execute("SELECT coalesce(max(target_id), 0) + 1 FROM export_targets").fetchone()[
            0
        ]
    )


def _exported_total(store: Store, target_id: int) -> int:
    """Rows in the target's export, as its ledger counts them."""
    return int(
        store.con.execute(
            f"""SELECT (SELECT count(*) FROM export_rows WHERE target_id = $1)
            + (SELECT coalesce(sum(exported), 0) FROM {COMMIT_LEDGER} WHERE target_id = $1)
            + (SELECT coalesce(sum(exported), 0) FROM {LOAD_MARKS} WHERE target_id = $1)""",
            [target_id],
        ).fetchone()[0]
    )


def _multiset_difference(current: str, done: str) -> str:
    """The rows of ``current`` whose fingerprint occurs more often there than in ``done``.

    ``current`` selects ``FINGERPRINT_COLUMN`` and the rows; ``done`` selects
    ``fingerprint, copies`` (how many rows with it were exported).
    """
    fp = FINGERPRINT_COLUMN
    return f"""
        WITH current AS ({current}),
        done AS ({done}),
        recount AS (
            SELECT {fp}, count(*) - any_value(done.copies) AS extra
            FROM current JOIN done ON {fp} = done.fingerprint
            GROUP BY {fp} HAVING extra > 0)
        SELECT * FROM current WHERE {fp} NOT IN (SELECT fingerprint FROM done)
        UNION ALL
        (SELECT current.* FROM current JOIN recount USING ({fp})
         QUALIFY row_number() OVER (PARTITION BY {fp})
               <= any_value(extra) OVER (PARTITION BY {fp}))"""


def _stage_new_rows(store: Store, table: str, target_id: int | None) -> int:
    """Put the rows to write, with their fingerprints, in a temporary table; count them.

    With a ``target_id`` these are the rows the ledger has not seen (as a multiset);
    without one, every row.
    """
    current = (
        f"SELECT md5_number(to_json(_row)) AS {FINGERPRINT_COLUMN}, * "
        f"FROM {quote_identifier(table)} AS _row"
    )
    if target_id is None:
        query = current
        params: list[Any] = []
    else:
        done = (
            "SELECT fingerprint, count(*) AS copies FROM export_rows "
            "WHERE target_id = ? GROUP BY fingerprint"
        )
        query = _multiset_difference(current, done)
        params = [target_id]
    store.con.execute(f"CREATE OR REPLACE TEMP TABLE {NEW_ROWS_TABLE} AS {query}", params)
    return int(store.con.execute(f"SELECT count(*) FROM {NEW_ROWS_TABLE}").fetchone()[0])


def _stage_new_commits(
    store: Store,
    table: str,
    columns: list[tuple[str, str]],
    target: Path,
    target_id: int | None,
) -> int:
    """Like ``_stage_new_rows`` for a table tracked by commit; count the rows staged.

    ``COMMITS_TABLE`` gets the commit times whose row count differs from the ledger's
    (all of them without a ``target_id``): a time the ledger lacks brings all its
    rows; one whose count grew brings its rows not yet in the export; one that
    shrank (deletes, a record regrown under a new commit) only gets its new count.
    """
    con = store.con
    quoted = quote_identifier(table)
    ledger = f"SELECT * FROM {COMMIT_LEDGER} WHERE target_id = ?" if target_id else None
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {COMMITS_TABLE} AS
        SELECT coalesce(counted.{COMMITTED_AT}, ledger.{COMMITTED_AT}) AS {COMMITTED_AT},
               coalesce(counted.n, 0) AS n, ledger.seen,
               coalesce(ledger.exported, 0) AS exported
        FROM (SELECT {COMMITTED_AT}, count(*) AS n FROM {quoted} GROUP BY ALL) AS counted
        FULL JOIN ({ledger or f"SELECT * FROM {COMMIT_LEDGER} WHERE false"}) AS ledger
          ON counted.{COMMITTED_AT} IS NOT DISTINCT FROM ledger.{COMMITTED_AT}
        WHERE ledger.seen IS DISTINCT FROM coalesce(counted.n, 0)""",
        [target_id] if target_id else [],
    )
    everything = f"SELECT NULL::UHUGEINT AS {FINGERPRINT_COLUMN}, * FROM {quoted}"
    if target_id is None:
        query = everything
    else:
        fresh = _in_commits(store, "seen IS NULL")
        query = " UNION ALL ".join(f"{everything} WHERE {where}" for where in fresh)
        changed = _in_commits(store, "seen < n")  # a commit that shrank brings no rows
        if changed:
            fingerprint = "md5_number(to_json(_row))"
            current = " UNION ALL ".join(
                f"SELECT {fingerprint} AS {FINGERPRINT_COLUMN}, * FROM {quoted} AS _row "
                f"WHERE {where}"
                for where in changed
            )
            done = (
                f"SELECT {fingerprint} AS fingerprint, count(*) AS copies FROM ("
                + " UNION ALL ".join(_read_back(target, columns, where) for where in changed)
                + ") AS _row GROUP BY fingerprint"
            )
            difference = _multiset_difference(current, done)
            query = f"{query} UNION ALL ({difference})" if query else difference
        query = query or f"{everything} WHERE false"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {NEW_ROWS_TABLE} AS {query}")
    return int(con.execute(f"SELECT count(*) FROM {NEW_ROWS_TABLE}").fetchone()[0])


@dataclass(frozen=True)
class _LoadMark:
    """How far an export of a loaded table reaches: its last load and row position."""

    load_id: int
    position: int


def _stage_new_loads(
    store: Store,
    table: str,
    columns: list[tuple[str, str]],
    target: Path,
    target_id: int | None,
) -> tuple[int, _LoadMark]:
    """Like ``_stage_new_rows`` for a table tracked by load: the rows staged and the mark.

    Without a ``target_id`` every row; with one, the rows past the export's position
    when the loads since only appended, else the rows not in the export's files.
    """
    con = store.con
    quoted = quote_identifier(table)
    latest, rows, top = con.execute(
        f"""SELECT (SELECT max(load_id) FROM {LOAD_LEDGER} WHERE lower(table_name) = lower(?)),
            (SELECT count(*) FROM {quoted}), (SELECT coalesce(max(rowid) + 1, 0) FROM {quoted})""",
        [table],
    ).fetchone()
    mark = _LoadMark(int(latest), int(rows))
    everything = f"SELECT NULL::UHUGEINT AS {FINGERPRINT_COLUMN}, * FROM {quoted}"
    if target_id is None:
        query = everything
    else:
        previous = con.execute(
            f"SELECT load_id, position FROM {LOAD_MARKS} WHERE target_id = ?", [target_id]
        ).fetchone()
        loads = con.execute(
            f"""SELECT mode, rows_before, rows_after FROM {LOAD_LEDGER}
            WHERE lower(table_name) = lower(?) AND load_id > ? ORDER BY load_id""",
            [table, previous[0] if previous else 0],
        ).fetchall()
        position = previous[1] if previous else -1
        for load_mode, before, after in loads:
            if load_mode != "append" or before != position:
                position = -1
                break
            position = after
        if position == rows == top and previous is not None:  # only appended since
            query = f"{everything} WHERE rowid >= {int(previous[1])}"
        else:
            current = (
                f"SELECT md5_number(to_json(_row)) AS {FINGERPRINT_COLUMN}, * FROM {quoted} AS _row"
            )
            done = (
                "SELECT md5_number(to_json(_row)) AS fingerprint, count(*) AS copies FROM ("
                + _read_back(target, columns, "true")
                + ") AS _row GROUP BY fingerprint"
            )
            query = _multiset_difference(current, done)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {NEW_ROWS_TABLE} AS {query}")
    return int(con.execute(f"SELECT count(*) FROM {NEW_ROWS_TABLE}").fetchone()[0]), mark


def _record_mark(store: Store, target_id: int, mark: _LoadMark, rows: int, *, full: bool) -> None:
    """Move the target's mark to ``mark``, adding the ``rows`` this export wrote."""
    con = store.con
    before = con.execute(
        f"SELECT coalesce(sum(exported), 0) FROM {LOAD_MARKS} WHERE target_id = ?", [target_id]
    ).fetchone()[0]
    con.execute(f"DELETE FROM {LOAD_MARKS} WHERE target_id = ?", [target_id])
    con.execute(
        f"INSERT INTO {LOAD_MARKS} VALUES (?, ?, ?, ?)",
        [target_id, mark.load_id, mark.position, rows + (0 if full else int(before))],
    )


def _in_commits(store: Store, which: str) -> list[str]:
    """Predicates on ``committed_at`` that select the rows of some of ``COMMITS_TABLE``.

    Constants, so that DuckDB skips the row groups (of the table or of Parquet files)
    whose commit times lie outside them; the NULL time gets a predicate of its own.
    """
    times = store.con.execute(
        f"SELECT CAST({COMMITTED_AT} AS VARCHAR) FROM {COMMITS_TABLE} WHERE {which} "
        f"ORDER BY {COMMITTED_AT}"
    ).fetchall()
    literals = [f"TIMESTAMPTZ {sql_literal(t)}" for (t,) in times if t is not None]
    predicates = []
    if literals:
        listed = ", ".join(literals)
        if len(literals) > MAX_LISTED_COMMITS:
            listed = f"SELECT {COMMITTED_AT} FROM {COMMITS_TABLE} WHERE {which}"
        predicates.append(
            f"{COMMITTED_AT} BETWEEN {literals[0]} AND {literals[-1]} "
            f"AND {COMMITTED_AT} IN ({listed})"
        )
    if len(literals) < len(times):
        predicates.append(f"{COMMITTED_AT} IS NULL")
    return predicates


def _read_back(target: Path, columns: list[tuple[str, str]], where: str) -> str:
    """The target's exported rows that match ``where``, typed as in the store."""
    typed = ", ".join(
        f"CAST({quote_identifier(n)} AS {t}) AS {quote_identifier(n)}" for n, t in columns
    )
    files = [sql_literal(str(f)) for f in sorted(target.glob(PARQUET_GLOB))]
    if not files:
        nothing = ", ".join(f"NULL::{t} AS {quote_identifier(n)}" for n, t in columns)
        return f"SELECT {nothing} WHERE false"
    return (
        f"SELECT {typed} FROM read_parquet([{', '.join(files)}], hive_partitioning = false) "
        f"WHERE {where}"
    )


def _record_commits(store: Store, target_id: int) -> None:
    """Set the ledger's count of each commit time in ``COMMITS_TABLE``; add the rows staged."""
    con = store.con
    con.execute(
        f"""DELETE FROM {COMMIT_LEDGER} AS e USING {COMMITS_TABLE} AS c
        WHERE e.target_id = ? AND e.{COMMITTED_AT} IS NOT DISTINCT FROM c.{COMMITTED_AT}
          AND c.seen IS NOT NULL""",
        [target_id],
    )
    con.execute(
        f"""INSERT INTO {COMMIT_LEDGER}
        SELECT ?, c.{COMMITTED_AT}, c.n, c.exported + coalesce(staged.rows, 0)
        FROM {COMMITS_TABLE} AS c LEFT JOIN
          (SELECT {COMMITTED_AT}, count(*) AS rows FROM {NEW_ROWS_TABLE} GROUP BY ALL) AS staged
          ON c.{COMMITTED_AT} IS NOT DISTINCT FROM staged.{COMMITTED_AT}""",
        [target_id],
    )


def _check_partitions(store: Store, keys: list[PartitionKey]) -> int:
    if not keys:
        return 1
    expressions = ", ".join(key.expression for key in keys)
    count = int(
        store.con.execute(
            f"SELECT count(*) FROM (SELECT DISTINCT {expressions} FROM {NEW_ROWS_TABLE})"
        ).fetchone()[0]
    )
    if count > MAX_PARTITIONS:
        raise UsageError(
            f"partitioning by {','.join(k.spec for k in keys)} would make {count:,} "
            f"directories (more than {MAX_PARTITIONS:,}); choose coarser keys"
        )
    return count


def _write_staging(
    store: Store,
    columns: list[tuple[str, str]],
    keys: list[PartitionKey],
    staging: Path,
    batch: str,
) -> list[str]:
    """DuckDB's Parquet writer into the staging folder; return the files, relative."""
    select = [quote_identifier(name) for name, _ in columns]
    select += [f"{key.expression} AS {quote_identifier(key.name)}" for key in keys if key.derived]
    options = [
        "FORMAT parquet",
        f"FILENAME_PATTERN {sql_literal(f'part-{batch}-{{i}}')}",
        f"FILE_SIZE_BYTES {sql_literal(FILE_SIZE)}",
    ]
    if keys:
        names = ", ".join(quote_identifier(key.name) for key in keys)
        options += [f"PARTITION_BY ({names})", "WRITE_PARTITION_COLUMNS true"]
    store.con.execute(
        f"COPY (SELECT {', '.join(select)} FROM {NEW_ROWS_TABLE}) "
        f"TO {sql_literal(str(staging))} ({', '.join(options)})"
    )
    return sorted(str(p.relative_to(staging)) for p in staging.rglob("*.parquet"))


def _fsync_tree(root: Path) -> None:
    """Make every file and directory under ``root`` durable before the decision point."""
    for directory, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(directory))
    fsync_dir(root.parent)


def _record_batch(
    store: Store,
    target_id: int,
    mode: str,
    tracking: str,
    staging: Path,
    batch: str,
    result: ExportResult,
) -> None:
    """The decision point's content: the batch and its rows' ledger entries."""
    con = store.con
    if mode == "full":
        con.execute("DELETE FROM export_rows WHERE target_id = ?", [target_id])
        con.execute(f"DELETE FROM {COMMIT_LEDGER} WHERE target_id = ?", [target_id])
        con.execute(f"DELETE FROM {LOAD_MARKS} WHERE target_id = ?", [target_id])
    if tracking == BY_COMMIT:
        _record_commits(store, target_id)
    elif tracking == BY_ROW:
        con.execute(
            f"INSERT INTO export_rows SELECT ?, {FINGERPRINT_COLUMN} FROM {NEW_ROWS_TABLE}",
            [target_id],
        )
    con.execute(
        "INSERT INTO export_batches VALUES (?, ?, ?, ?, ?, ?, now())",
        [batch, target_id, mode, str(staging), result.rows, json.dumps(result.files)],
    )


def _record_target(
    store: Store,
    target_id: int,
    target: Path,
    table: str,
    spec: list[str],
    columns: list[tuple[str, str]],
    method: str,
) -> None:
    con = store.con
    con.execute("DELETE FROM export_targets WHERE target_id = ?", [target_id])
    con.execute(
        """INSERT INTO export_targets
        SELECT ?, ?, ?, ?, ?, ?, ?,
               (SELECT count(*) FROM export_batches WHERE target_id = ?), now()""",
        [
            target_id,
            str(target),
            table,
            json.dumps(spec),
            json.dumps([list(c) for c in columns]),
            method,
            _exported_total(store, target_id),
            target_id,
        ],
    )


def publish(
    mode: str, staging: Path, target: Path, on_progress: ProgressLike | None = None
) -> None:
    """Move a committed batch's files into place; safe to repeat after a crash.

    ``append`` renames each file into its partition folder (file names carry the
    batch id, so nothing is overwritten); ``full`` swaps the whole table folder.
    """
    step = reporter(on_progress).advance
    if not staging.is_dir():
        return
    if mode == "full":
        old = staging.with_name(staging.name + "-old")
        if target.exists() and not old.exists():
            os.rename(target, old)
        os.rename(staging, target)
        fsync_dir(target.parent)
        shutil.rmtree(old, ignore_errors=True)
        step(1)
        return
    touched: set[Path] = set()
    for path in sorted(staging.rglob("*.parquet")):
        destination = target / path.relative_to(staging)
        for parent in reversed(destination.relative_to(target).parents):
            folder = target / parent
            if not folder.is_dir():
                folder.mkdir()
                touched.add(folder.parent)
        os.rename(path, destination)
        touched.add(destination.parent)
        step(1)
    for folder in touched:
        fsync_dir(folder)
    shutil.rmtree(staging)
    fsync_dir(staging.parent)


def recover(store: Store, to: Path) -> list[str]:
    """Finish publishing committed batches under ``to``; delete uncommitted staging folders.

    Returns the ids of the batches that were finished.
    """
    root = to / STAGING_DIRNAME
    if not root.is_dir():
        return []
    staged = {entry.name for entry in root.iterdir()}
    finished = []
    if staged:
        rows = store.con.execute(
            "SELECT b.batch_id, b.mode, t.target FROM export_batches b "
            "JOIN export_targets t USING (target_id) WHERE starts_with(b.staging, ?)",
            [str(root) + os.sep],
        ).fetchall()
        for batch_id, mode, target in rows:
            if batch_id in staged:
                publish(mode, root / batch_id, Path(target))
                finished.append(batch_id)
    for entry in root.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    return finished
