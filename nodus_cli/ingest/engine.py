"""Ingest files into the store exactly once, parsing inside DuckDB window by window.

Each window's rows, its quarantined lines and the file's new checkpoint (byte
offset, line number, fingerprint) are written in one transaction, so a run
killed at any moment leaves the store as if it had stopped after the last
committed window; the next run resumes there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from nodus_cli.errors import InputError, NodusError, UsageError
from nodus_cli.ingest import formats, redact
from nodus_cli.ingest.formats import Detected, sql_str
from nodus_cli.ingest.lines import WindowLines, numbered
from nodus_cli.ingest.schema import shape_sql
from nodus_cli.ingest.source import (
    HEAD_BYTES,
    SNIFF_BYTES,
    STDIN,
    Source,
    expand_paths,
    fingerprint,
    head_hash,
    skip_to,
    windows,
)
from nodus_cli.store import Store

WINDOW_BYTES = 64 << 20
MEMORY_LIMIT = "256MB"
WINDOW_VIEW = "nodus_window"  # the registered Arrow stream of the window being parsed
Progress = Callable[[int], None]


@dataclass
class IngestOptions:
    format: str = "auto"
    source: str | None = None
    tz: str | None = None
    redact: list[str] = field(default_factory=list)
    at: datetime | None = None  # scrape time for Prometheus samples without one
    time_column: str | None = None
    series: str | None = None
    window_bytes: int = WINDOW_BYTES


@dataclass
class FileResult:
    path: str
    format: str | None = None
    status: str = "ingested"  # ingested | unchanged | failed
    file_id: int | None = None
    records: int = 0
    rows: int = 0
    quarantined: int = 0
    skipped: int = 0  # lines already ingested by earlier runs
    bytes_read: int = 0
    seconds: float = 0.0
    error: str | None = None
    layout: str | None = None  # the timestamp layout chosen for plain text

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "status": self.status,
            "file_id": self.file_id,
            "records": self.records,
            "rows": self.rows,
            "quarantined": self.quarantined,
            "skipped": self.skipped,
            "bytes_read": self.bytes_read,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "layout": self.layout,
        }


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    def totals(self) -> dict[str, int]:
        return {
            "files": len(self.files),
            "failed": len(self.failed),
            "records": sum(f.records for f in self.files),
            "rows": sum(f.rows for f in self.files),
            "quarantined": sum(f.quarantined for f in self.files),
        }


@dataclass
class _Checkpoint:
    file_id: int
    byte_offset: int
    line_no: int
    format: str | None
    new: bool
    tail: bytes = b""  # the KiB before byte_offset


def ingest(
    store: Store,
    paths: list[str],
    options: IngestOptions | None = None,
    *,
    secret: bytes | None = None,
    stdin: BinaryIO | None = None,
    on_progress: Progress | None = None,
) -> IngestReport:
    """Ingest every file named by ``paths``; a failing file never stops the others."""
    options = options or IngestOptions()
    if options.format not in formats.FORMATS:
        raise UsageError(f"unknown format {options.format!r} ({', '.join(formats.FORMATS)})")
    kinds, fields = redact.parse_redactions(options.redact)
    if (kinds or fields) and secret is None:
        raise UsageError("redaction needs the workspace secret")
    report = IngestReport()
    con = store.con
    with (
        _session(con, options.tz),
        tempfile.TemporaryDirectory(prefix="nodus-ingest-") as tmp,
    ):
        for statement in formats.MACROS:
            con.execute(statement)
        if secret is not None and (kinds or fields):
            for statement in redact.macros(secret, kinds):
                con.execute(statement)
        job = _Job(store, options, Path(tmp), kinds, fields, on_progress)
        for path in expand_paths(paths):
            result = FileResult(path)
            started = time.monotonic()
            try:
                source = job.stdin_source(stdin) if path == STDIN else Source.open_path(path)
                job.ingest_file(source, result)
            except NodusError as exc:
                result.status, result.error = "failed", exc.message
            result.seconds = time.monotonic() - started
            report.files.append(result)
        if job.unfolded:
            # now, under this session's settings: the close's checkpoint would run
            # DuckDB's vacuum, which rewrites every partial row group a window left
            store.checkpoint()
    return report


@contextlib.contextmanager
def _session(con: Any, tz: str | None) -> Iterator[None]:
    """Session settings for one ingest: ``--tz`` for naive times, memory, the optimizer.

    Filter pushdown is off: it would copy ``WHERE ok`` below the projection that
    parses each line, so every regular expression or JSON parse would run twice.
    """
    saved = con.execute(
        "SELECT current_setting('memory_limit'), current_setting('disabled_optimizers'), "
        "current_setting('max_vacuum_tasks')"
    ).fetchone()
    # A bounded buffer pool keeps peak memory flat however large the input is.
    con.execute(f"SET memory_limit = {sql_str(MEMORY_LIMIT)}")
    # A window's checkpoint would otherwise rewrite (decompress and compress again)
    # every row group after the partial one the previous window ended with, to pack
    # them: it doubled the cost of each window after the first.
    con.execute("SET max_vacuum_tasks = 0")
    disabled = ",".join(filter(None, [saved[1], "filter_pushdown"]))
    con.execute(f"SET disabled_optimizers = {sql_str(disabled)}")
    try:
        if tz is not None:
            try:
                con.execute(f"SET TimeZone = {sql_str(tz)}")
            except Exception as exc:
                raise UsageError(f"--tz {tz!r}: unknown time zone") from exc
        yield
    finally:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET memory_limit = {sql_str(saved[0])}")
        con.execute(f"SET disabled_optimizers = {sql_str(saved[1])}")
        con.execute(f"SET max_vacuum_tasks = {int(saved[2])}")


class _Job:
    def __init__(
        self,
        store: Store,
        options: IngestOptions,
        tmp: Path,
        kinds: list[str],
        fields: list[str],
        on_progress: Progress | None,
    ) -> None:
        self.store = store
        self.con = store.con
        self.options = options
        self.tmp = tmp
        self.kinds = kinds
        self.fields = fields
        self.on_progress = on_progress
        self.unfolded = 0  # bytes committed since the last checkpoint

    def stdin_source(self, stdin: BinaryIO | None) -> Source:
        spool = self.tmp / "stdin"
        stream = stdin if stdin is not None else sys.stdin.buffer
        with spool.open("wb") as handle:
            shutil.copyfileobj(stream, handle, 1 << 20)
        return Source.open_path(STDIN, spool)

    # --- one file ---------------------------------------------------------------------

    def ingest_file(self, source: Source, result: FileResult) -> None:
        head = source.read_prefix(SNIFF_BYTES)
        if not head:
            result.status = "unchanged"
            return
        checkpoint, stream = self._resume(source, head)
        with stream:
            requested = checkpoint.format if checkpoint.format else self.options.format
            try:
                detected = formats.detect(
                    _decode(head), requested, time_column=self.options.time_column
                )
            except NodusError as exc:
                raise InputError(f"{source.path}: {exc.message}") from None
            result.format = detected.format
            result.file_id = checkpoint.file_id
            result.skipped = checkpoint.line_no
            if detected.layout is not None:
                result.layout = detected.layout.name
            cut = windows(stream, self.options.window_bytes, detected.record_start())
            prepared = numbered(cut, checkpoint.byte_offset, checkpoint.line_no)
            # Closed before the file, even on an error: the reader thread stops first.
            with contextlib.closing(prepared):
                self._windows(source, head, detected, checkpoint, prepared, result)
        if result.records == 0 and not checkpoint.new:
            result.status = "unchanged"

    def _resume(self, source: Source, head: bytes) -> tuple[_Checkpoint, BinaryIO]:
        """Find the checkpoint this file continues (same first KiB and fingerprint).

        Candidates are earlier files at the same path, and files elsewhere with the
        same first KiB whose old path no longer holds them (a rotation by rename).
        """
        rows = self.con.execute(
            "SELECT file_id, path, byte_offset, line_no, fingerprint, format, head_hash "
            "FROM ingest_files WHERE path = ? OR head_hash = ? "
            "ORDER BY (path = ?) DESC, file_id DESC",
            [source.path, head_hash(head), source.path],
        ).fetchall()
        for file_id, path, offset, line_no, stored_fp, fmt, stored_head in rows:
            if head_hash(head, offset) != stored_head:
                continue
            if path != source.path and _still_there(path, stored_head, offset):
                continue  # another file with the same start, still in place: not a rename
            stream = source.open()
            tail = skip_to(stream, offset)
            if tail is not None and fingerprint(head, tail, offset) == stored_fp:
                return _Checkpoint(file_id, offset, line_no, fmt, False, tail), stream
            stream.close()
        next_id = self.con.execute(
            "SELECT coalesce(max(file_id), 0) + 1 FROM ingest_files"
        ).fetchone()[0]
        return _Checkpoint(next_id, 0, 0, None, True), source.open()

    def _windows(
        self,
        source: Source,
        head: bytes,
        detected: Detected,
        checkpoint: _Checkpoint,
        prepared: Iterator[WindowLines],
        result: FileResult,
    ) -> None:
        """One transaction per window: its rows, its quarantine and the new checkpoint."""
        offset, line_no, tail = checkpoint.byte_offset, checkpoint.line_no, checkpoint.tail
        source_name = self.options.source or _default_source(source.path)
        mtime_sql = f"TIMESTAMPTZ {sql_str(source.mtime.isoformat())}"
        first = checkpoint.new
        for lines in prepared:
            tail = (tail + lines.last_bytes)[-HEAD_BYTES:]
            summary = {
                "path": source.path,
                "file_id": checkpoint.file_id,
                "format": detected.format,
                "lines": [line_no + 1, line_no + lines.count],
            }
            with self.store.change(summary) as details:
                if first:
                    self._register(source, checkpoint.file_id, head, detected)
                    first = False
                with self._window_view(lines):
                    rows, quarantined = self._load_window(
                        lines,
                        detected,
                        (checkpoint.file_id, source_name, _stem(source.path)),
                        mtime_sql,
                        continues=line_no > 0,
                    )
                offset += lines.size
                line_no += lines.count
                self.con.execute(
                    """UPDATE ingest_files SET path = ?, fingerprint = ?, head_hash = ?, size = ?,
                        byte_offset = ?, line_no = ?, rows = rows + ?,
                        quarantined = quarantined + ?, records = records + ?,
                        bytes_read = bytes_read + ?, source = ?, mtime = ?,
                        last_ingested = now() WHERE file_id = ?""",
                    [
                        source.path,
                        fingerprint(head, tail, offset),
                        head_hash(head, offset),
                        source.size,
                        offset,
                        line_no,
                        rows,
                        quarantined,
                        rows + quarantined,
                        lines.size,
                        source_name,
                        source.mtime,
                        checkpoint.file_id,
                    ],
                )
                details.update(rows=rows, quarantined=quarantined, byte_offset=offset)
            # Fold each big window into the database file: the checkpoint at close would
            # otherwise hold every window of the run in memory at once. Small files share
            # a checkpoint (each costs ~15 ms with its guard). A window cut back to a
            # record boundary is a little under the window size: half of it is the bar.
            self.unfolded += lines.size
            if self.unfolded >= self.options.window_bytes // 2:
                self.store.checkpoint()
                self.unfolded = 0
            result.rows += rows
            result.quarantined += quarantined
            result.records += rows + quarantined
            result.bytes_read += lines.size
            if self.on_progress:
                self.on_progress(lines.size)

    def _register(self, source: Source, file_id: int, head: bytes, detected: Detected) -> None:
        self.con.execute(
            """INSERT INTO ingest_files (file_id, path, fingerprint, size, head_hash, format,
                compression, first_ingested) VALUES (?, ?, '', ?, ?, ?, ?, now())""",
            [
                file_id,
                source.path,
                source.size,
                head_hash(head),
                detected.format,
                source.compression,
            ],
        )

    # --- one window -------------------------------------------------------------------

    @contextlib.contextmanager
    def _window_view(self, lines: WindowLines) -> Iterator[None]:
        """``lines`` readable as the view ``WINDOW_VIEW`` while the block runs."""
        self.con.register(WINDOW_VIEW, lines)
        try:
            yield
        finally:
            self.con.unregister(WINDOW_VIEW)

    def _load_window(
        self,
        lines: WindowLines,
        detected: Detected,
        names: tuple[int, str, str],
        mtime_sql: str,
        *,
        continues: bool,
    ) -> tuple[int, int]:
        """Parse one window inside DuckDB: rows to their table, the rest to quarantine.

        ``lines`` is the registered view ``WINDOW_VIEW`` (see ``_window_view``). The
        common case costs one parsing pass (the insert) and no count of the window's
        records; the parser runs again only when lines were rejected. ``continues``:
        the window follows earlier lines of the file, so continuation lines at its
        start belong to the record those ended with.
        """
        file_id, source_name, stem = names
        ctes = [f"raw AS (SELECT line, line_json, line_no, byte_offset FROM {WINDOW_VIEW})"]
        if detected.multiline:
            grouped = _records_cte(detected)
            if continues and self._join_to_previous(ctes[0], grouped, detected, file_id):
                grouped = _records_cte(detected, without_leading=True)
            ctes.append(grouped)
        relation = f"({self._parser(detected, mtime_sql, stem)})"
        with_clause = "WITH " + ", ".join(ctes)
        header = " AND line_no > 1" if detected.format == "csv" else ""
        rows = self._insert_rows(
            f"{with_clause} SELECT * FROM {relation} AS parsed WHERE ok{header}",
            detected,
            source_name,
            file_id,
        )
        records = _plain_records(lines, detected)
        if records is None:
            if detected.multiline:
                count_sql = f"{with_clause} SELECT count(*) FROM records"
            else:  # no parsing needed to count records
                condition = _record_condition(detected)
                count_sql = f"{with_clause} SELECT count(*) FROM raw WHERE {condition}"
            records = _count(self.con.execute(count_sql))
        quarantined = records - rows
        if quarantined:
            raw = "raw"
            if self.kinds or self.fields:
                raw = "nodus_pseudonym(raw)" if self.fields else "nodus_redact(raw)"
            self.con.execute(
                f"""INSERT INTO quarantine (file_id, line_no, byte_offset, raw, reason)
                {with_clause} SELECT ?, line_no, byte_offset, {raw}, reason
                FROM {relation} AS parsed WHERE record AND NOT ok{header} ORDER BY line_no""",
                [file_id],
            ).fetchall()
        return rows, quarantined

    def _join_to_previous(self, raw: str, grouped: str, detected: Detected, file_id: int) -> bool:
        """Append the window's leading continuation lines to the file's last record.

        They continue a record an earlier window or run ended with (an append in the
        middle of a stack trace, or a record longer than a window). True when they
        were joined; False leaves them to quarantine: no earlier record, or a
        pseudonymised field that cannot be extended.
        """
        first = self.con.execute(
            f"WITH {raw} SELECT line FROM raw WHERE nodus_filled(line) ORDER BY line_no LIMIT 1"
        ).fetchall()
        start = detected.record_start()
        if self.fields or not first or start is None or start.match(first[0][0]):
            return False  # the usual case: the window starts with a record
        found = self.con.execute(
            f"WITH {raw}, {grouped} SELECT line FROM records WHERE NOT joined"
        ).fetchall()
        if not found:
            return False
        latest = self.con.execute(
            """SELECT 'logs', max(line_no) FROM logs WHERE file_id = $1
            UNION ALL SELECT 'quarantine', max(line_no) FROM quarantine WHERE file_id = $1""",
            [file_id],
        ).fetchall()
        table, line_no = max(latest, key=lambda row: row[1] if row[1] is not None else -1)
        if line_no is None:
            return False
        tail = "nodus_redact($1)" if self.kinds else "$1"
        # a new committed_at: to nodus export the grown record is a new row
        if table == "logs":
            joined = formats.continued_message(detected.format, tail)
            statement = (
                f"UPDATE logs SET message = {joined}, pattern_id = {shape_sql(joined)}, "
                "committed_at = now() WHERE file_id = $2 AND line_no = $3"
            )
        else:
            statement = (
                f"UPDATE quarantine SET raw = raw || chr(10) || {tail}, committed_at = now() "
                "WHERE file_id = $2 AND line_no = $3"
            )
        self.con.execute(statement, [found[0][0], file_id, line_no])
        return True

    def _insert_rows(self, good: str, detected: Detected, source_name: str, file_id: int) -> int:
        """Insert the window's good records (the query ``good``); return how many."""
        if detected.format == "csv":
            labels = self._json_column("labels", metrics=True)
            self.con.execute(
                f"""INSERT INTO metrics (time, series, labels, value, source)
                SELECT time, point.series, {labels}, point.value, ? FROM (
                  SELECT time, labels, unnest(points) AS point, line_no FROM ({good}) AS g)
                WHERE point.value IS NOT NULL ORDER BY line_no""",
                [source_name],
            )
            return _count(self.con.execute(f"SELECT count(*) FROM ({good}) AS g"))
        if detected.is_metrics:
            labels = self._json_column("labels", metrics=True)
            cursor = self.con.execute(
                f"""INSERT INTO metrics (time, series, labels, value, source)
                SELECT time, series, {labels}, value, ? FROM ({good}) AS g""",
                [source_name],
            )
            return _count(cursor)
        order = " ORDER BY line_no" if detected.multiline else ""
        columns = {name: name for name in ("host", "app", "message")}
        if self.kinds or self.fields:
            for name in columns:
                if name in self.fields:
                    columns[name] = f"nodus_pseudonym({name})"
                elif name != "app":
                    columns[name] = f"nodus_redact({name})"
        attrs = self._json_column("attrs", metrics=False)
        # The shape is taken of the message as stored (after redaction).
        cursor = self.con.execute(
            f"""INSERT INTO logs (time, level, host, app, pid, message, attrs, source,
                file_id, line_no, byte_offset, pattern_id)
            SELECT *, {shape_sql("message")} FROM (
              SELECT time, level, {columns["host"]} AS host, {columns["app"]} AS app, pid,
                {columns["message"]} AS message, {attrs} AS attrs, ? AS source,
                ? AS file_id, line_no, byte_offset
              FROM ({good}) AS g) AS r{order}""",
            [source_name, file_id],
        )
        return _count(cursor)

    def _json_column(self, column: str, *, metrics: bool) -> str:
        """``attrs``/``labels`` with the requested values pseudonymised."""
        expression = column
        if self.kinds:
            expression = f"CAST(nodus_redact(CAST({expression} AS VARCHAR)) AS JSON)"
        for name in self.fields:
            if metrics or name not in redact.LOG_COLUMNS:
                expression = redact.field_update(expression, name)
        return expression

    def _parser(self, detected: Detected, mtime_sql: str, stem: str) -> str:
        fmt = detected.format
        if fmt == "jsonl":
            return formats.jsonl_sql(detected.keys)
        if fmt == "logfmt":
            return formats.logfmt_sql(detected.keys)
        if fmt == "syslog":
            return formats.syslog_sql(mtime_sql)
        if fmt in ("clf", "combined"):
            return formats.access_sql()
        if fmt == "text":
            assert detected.layout is not None
            return formats.text_sql(detected.layout, mtime_sql)
        if fmt in ("prometheus", "openmetrics"):
            at = self.options.at
            scrape = f"TIMESTAMPTZ {sql_str(at.isoformat())}" if at else mtime_sql
            return formats.prometheus_sql(fmt == "openmetrics", scrape)
        if fmt == "csv":
            assert detected.csv is not None
            return formats.csv_sql(detected.csv, stem, self.options.series)
        raise UsageError(f"unknown format {fmt!r}")


def _records_cte(detected: Detected, *, without_leading: bool = False) -> str:
    """``records``: a multi-line format's lines grouped into numbered records.

    Lines before the window's first record start form group 0 (``joined`` false);
    ``without_leading`` leaves that group out once it was joined to an earlier record.
    """
    having = " HAVING grp > 0" if without_leading else ""
    return f"""records AS (SELECT min(line_no) AS line_no, min(byte_offset) AS byte_offset,
            string_agg(line, chr(10) ORDER BY line_no) AS line, grp > 0 AS joined
          FROM (SELECT *, sum(CASE WHEN {detected.start_sql()} THEN 1 ELSE 0 END)
                  OVER (ORDER BY line_no ROWS UNBOUNDED PRECEDING) AS grp
                FROM raw WHERE nodus_filled(line)) GROUP BY grp{having})"""


def _plain_records(lines: WindowLines, detected: Detected) -> int | None:
    """The record count of a single-line format when no line can be blank, else None.

    Then every line is a record, and no pass of SQL over the window is needed to count.
    """
    if detected.multiline or detected.format in formats.METRIC_FORMATS or lines.maybe_blank:
        return None
    return lines.count


def _count(cursor: Any) -> int:
    """The single number a statement returns, read to the end so the window can be released."""
    return int(cursor.fetchall()[0][0])


def _record_condition(detected: Detected) -> str:
    """Which lines of a window are records, as the single-line parsers count them."""
    condition = "nodus_filled(line)"
    if detected.format in ("prometheus", "openmetrics"):
        condition += " AND NOT starts_with(ltrim(line), '#')"
    elif detected.format == "csv":
        condition += " AND line_no > 1"
    return condition


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _still_there(path: str, digest: str, offset: int) -> bool:
    """Whether ``path`` still holds a file starting with the same first KiB."""
    if path == STDIN:
        return False
    try:
        return head_hash(Source.open_path(path).read_prefix(HEAD_BYTES), offset) == digest
    except NodusError:
        return False


def _default_source(path: str) -> str:
    return "stdin" if path == STDIN else os.path.basename(path)


def _stem(path: str) -> str:
    """``cpu.csv`` and ``cpu.csv.gz`` name the series ``cpu``."""
    if path == STDIN:
        return "stdin"
    name = os.path.basename(path)
    name = name.removesuffix(".gz")
    return Path(name).stem or name
