"""Ingest files into the store exactly once, parsing inside DuckDB window by window.

Each window's rows, its quarantined lines and the file's new checkpoint (byte
offset, line number, fingerprint) are written in one transaction, so a run
killed at any moment leaves the store as if it had stopped after the last
committed window; the next run resumes there.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from nodus_cli.errors import InputError, NodusError, UsageError
from nodus_cli.ingest import formats, redact, sniff
from nodus_cli.ingest.formats import sql_str
from nodus_cli.ingest.lines import WindowLines, numbered
from nodus_cli.ingest.schema import shape_of_masked, shape_sql
from nodus_cli.ingest.sniff import Detected
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
from nodus_cli.progress import Progress, ProgressLike, reporter
from nodus_cli.store import Store

WINDOW_BYTES = 64 << 20
MAX_LINE = 64 << 20  # a longer line is quarantined as too long, not read whole
MEMORY_LIMIT = "256MB"
MEMORY_BYTES = 256 << 20
# DuckDB's working memory for a window is about this many times its longest value (a
# line, or a multi-line record): copies for the parse, the columns and the insert
MEMORY_PER_BYTE = 4
WINDOW_VIEW = "nodus_window"  # the registered Arrow stream of the window being parsed
RAW_BYTES_KEY = "_raw_bytes"  # attrs: a row's bytes as read (base64) when its text differs
FIELDS_UDF = "nodus_redact_fields"  # JSON text -> the same with --redact fields pseudonymised


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
    max_line: int = MAX_LINE


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
    replaced: int = 0  # records an earlier run stored while their last line was unfinished
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
            "replaced": self.replaced,
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
    size: int | None = None  # the file's size and modification time at the last ingest
    mtime: datetime | None = None
    held: int = 0  # records stored past byte_offset (an open record: see open_record)


def ingest(
    store: Store,
    paths: list[str],
    options: IngestOptions | None = None,
    *,
    secret: bytes | None = None,
    stdin: BinaryIO | None = None,
    on_progress: ProgressLike | None = None,
) -> IngestReport:
    """Ingest every file named by ``paths``; a failing file never stops the others.

    ``on_progress`` hears the bytes on disk of all the files and the files done."""
    import duckdb

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
        contextlib.ExitStack() as stack,
    ):
        for statement in formats.MACROS:
            con.execute(statement)
        if secret is not None and (kinds or fields):
            for statement in redact.macros(secret, kinds):
                con.execute(statement)
        if secret is not None and kinds:
            store.redact_journal(redact.text_redactor(secret, kinds))
        if secret is not None and fields:
            stack.callback(con.remove_function, FIELDS_UDF)
            redactor = redact.field_redactor(secret, fields)
            con.create_function(FIELDS_UDF, redactor, ["VARCHAR"], "VARCHAR", side_effects=False)
        job = _Job(store, options, Path(tmp), kinds, fields, reporter(on_progress))
        expanded = expand_paths(paths)
        sizes = [_size_on_disk(found.path) for found in expanded]
        job.total_bytes = sum(sizes)
        job.progress.total(job.total_bytes, items=len(expanded))
        for found, size in zip(expanded, sizes, strict=True):
            path = found.path
            result = FileResult(path)
            started = time.monotonic()
            job.file_budget, job.file_counted = size, 0
            try:
                if found.error is not None:
                    raise InputError(f"{path}: {found.error}")
                source = job.stdin_source(stdin) if path == STDIN else Source.open_path(path)
                job.ingest_file(source, result)
            except NodusError as exc:
                result.status, result.error = "failed", exc.message
            except duckdb.Error as exc:  # the window was rolled back; the next file goes on
                result.status, result.error = "failed", f"{path}: {_store_error(exc)}"
            job.progress.advance(job.file_budget - job.file_counted, items=1)
            result.seconds = time.monotonic() - started
            report.files.append(result)
        if job.unfolded:
            # now, under this session's settings: the close's checkpoint would run
            # DuckDB's vacuum, which rewrites every partial row group a window left
            store.checkpoint()
    return report


def _size_on_disk(path: str) -> int:
    """The file's size for the progress total (0 for stdin or what cannot be read)."""
    try:
        return 0 if path == STDIN else os.stat(path).st_size
    except OSError:
        return 0


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
        progress: Progress,
    ) -> None:
        self.store = store
        self.con = store.con
        self.options = options
        self.tmp = tmp
        self.kinds = kinds
        self.fields = fields
        self.progress = progress
        self.unfolded = 0  # bytes committed since the last checkpoint
        self.total_bytes = 0  # of every file on disk, for the progress total
        # the current file: its bytes on disk, those reported done, where it is read
        self.file_budget = 0
        self.file_counted = 0
        self.file_handle: Any = None

    def stdin_source(self, stdin: BinaryIO | None) -> Source:
        spool = self.tmp / "stdin"
        stream = stdin if stdin is not None else sys.stdin.buffer
        with spool.open("wb") as handle:
            shutil.copyfileobj(stream, handle, 1 << 20)
        source = Source.open_path(STDIN, spool)
        self.total_bytes += source.size  # known only now
        self.file_budget = source.size
        self.progress.total(self.total_bytes)
        return source

    # --- one file ---------------------------------------------------------------------

    def ingest_file(self, source: Source, result: FileResult) -> None:
        head = source.read_prefix(SNIFF_BYTES)
        if not head:
            result.status = "unchanged"
            return
        stored = self._redacted(source.path)
        checkpoint, stream = self._resume(source, stored, head)
        # bytes on disk: a gzip stream reads its compressed file through .fileobj
        self.file_handle = getattr(stream, "fileobj", stream)
        with stream:
            requested = checkpoint.format if checkpoint.format else self.options.format
            try:
                detected = sniff.detect(
                    _decode(head),
                    requested,
                    time_column=self.options.time_column,
                    cut=len(head) == SNIFF_BYTES,
                )
            except NodusError as exc:
                raise InputError(f"{source.path}: {exc.message}") from None
            result.format = detected.format
            result.file_id = checkpoint.file_id
            result.skipped = checkpoint.line_no
            if detected.layout is not None:
                result.layout = detected.layout.name
            if not checkpoint.new:
                checkpoint.held = self._held(checkpoint.file_id, checkpoint.line_no)
            unchanged = (source.size, source.mtime) == (checkpoint.size, checkpoint.mtime)
            if checkpoint.held and unchanged:
                result.status = "unchanged"  # the held record's file has not changed since
                return
            max_line = self.options.max_line
            cut = windows(stream, self.options.window_bytes, detected.record_start(), max_line)
            prepared = numbered(
                cut,
                checkpoint.byte_offset,
                checkpoint.line_no,
                hold_open=_may_grow(source, detected),
                record_start=detected.record_start(),
                max_line=max_line,
                shapes=detected.shaped,
            )
            # Closed before the file, even on an error: the reader thread stops first.
            with contextlib.closing(prepared):
                self._windows(source, stored, head, detected, checkpoint, prepared, result)
            if checkpoint.held and not result.replaced:  # the file now ends at the checkpoint
                with self.store.change({"path": stored, "file_id": checkpoint.file_id}) as details:
                    result.replaced = details["replaced"] = self._drop_held(checkpoint)
        if result.records == 0 and not result.replaced and not checkpoint.new:
            result.status = "unchanged"

    def _held(self, file_id: int, line_no: int) -> int:
        """How many records of the file lie past its checkpoint (held: see ``open_record``)."""
        return _count(
            self.con.execute(
                """SELECT (SELECT count(*) FROM logs WHERE file_id = $1 AND line_no > $2)
                + (SELECT count(*) FROM quarantine WHERE file_id = $1 AND line_no > $2)""",
                [file_id, line_no],
            )
        )

    def _drop_held(self, checkpoint: _Checkpoint) -> int:
        """Delete the records held past the checkpoint, which is about to read them again."""
        params = [checkpoint.file_id, checkpoint.line_no]
        rows = len(
            self.con.execute(
                "DELETE FROM logs WHERE file_id = ? AND line_no > ? RETURNING 1", params
            ).fetchall()
        )
        quarantined = len(
            self.con.execute(
                "DELETE FROM quarantine WHERE file_id = ? AND line_no > ? RETURNING 1", params
            ).fetchall()
        )
        self.con.execute(
            """UPDATE ingest_files SET rows = rows - ?, quarantined = quarantined - ?,
                records = records - ? WHERE file_id = ?""",
            [rows, quarantined, rows + quarantined, checkpoint.file_id],
        )
        return rows + quarantined

    def _redacted(self, text: str) -> str:
        """``text`` (a path, a name) as the store keeps it: the ``--redact`` kinds pseudonymised."""
        if not self.kinds:
            return text
        return str(self.con.execute("SELECT nodus_redact(?)", [text]).fetchall()[0][0])

    def _resume(self, source: Source, stored: str, head: bytes) -> tuple[_Checkpoint, BinaryIO]:
        """Find the checkpoint this file continues (same first KiB and fingerprint).

        Candidates are earlier files at the same path (``stored``, the path as the store
        keeps it), and files elsewhere with the same first KiB whose old path no longer
        holds them (a rotation by rename).
        """
        rows = self.con.execute(
            "SELECT file_id, path, byte_offset, line_no, fingerprint, format, head_hash, size, "
            "mtime FROM ingest_files WHERE path = ? OR head_hash = ? "
            "ORDER BY (path = ?) DESC, file_id DESC",
            [stored, head_hash(head), stored],
        ).fetchall()
        for file_id, path, offset, line_no, stored_fp, fmt, stored_head, size, mtime in rows:
            if head_hash(head, offset) != stored_head:
                continue
            if (
                path != stored
                and _still_there(path, stored_head, offset)
                and not _same_file(path, source)
            ):
                continue  # another file with the same start, still in place: not a rename
            stream = source.open()
            tail = skip_to(stream, offset)
            if tail is not None and fingerprint(head, tail, offset) == stored_fp:
                found = _Checkpoint(file_id, offset, line_no, fmt, False, tail, size, mtime)
                return found, stream
            stream.close()
        next_id = self.con.execute(
            "SELECT coalesce(max(file_id), 0) + 1 FROM ingest_files"
        ).fetchone()[0]
        return _Checkpoint(next_id, 0, 0, None, True), source.open()

    def _windows(
        self,
        source: Source,
        stored: str,
        head: bytes,
        detected: Detected,
        checkpoint: _Checkpoint,
        prepared: Iterator[WindowLines],
        result: FileResult,
    ) -> None:
        """One transaction per window: its rows, its quarantine and the new checkpoint.

        A window that runs out of memory is rolled back and tried once more with a
        budget for a record as long as the window.
        """
        import duckdb

        offset, line_no, tail = checkpoint.byte_offset, checkpoint.line_no, checkpoint.tail
        source_name = self._redacted(self.options.source or _default_source(source.path))
        mtime_sql = f"TIMESTAMPTZ {sql_str(source.mtime.isoformat())}"
        first = checkpoint.new
        held = checkpoint.held > 0
        for lines in prepared:
            tail = (tail + lines.closed_last_bytes)[-HEAD_BYTES:]
            summary = {
                "path": stored,
                "file_id": checkpoint.file_id,
                "format": detected.format,
                "lines": [line_no + 1, line_no + lines.count],
            }
            # an open record (see open_record) is stored, the checkpoint stays before it
            after = (offset + lines.open_at, line_no + lines.count - lines.open_lines)
            budget = MEMORY_BYTES + MEMORY_PER_BYTE * lines.longest
            while True:
                try:
                    with self._memory(budget), self.store.change(summary) as details:
                        if first:
                            self._register(source, stored, checkpoint.file_id, head, detected)
                        if held:
                            details["replaced"] = self._drop_held(checkpoint)
                        with self._window_view(lines):
                            rows, quarantined = self._load_window(
                                lines,
                                detected,
                                (
                                    checkpoint.file_id,
                                    source_name,
                                    self._redacted(_stem(source.path)),
                                ),
                                mtime_sql,
                                continues=line_no > 0,
                            )
                        self._advance(
                            checkpoint.file_id,
                            stored,
                            source,
                            source_name,
                            (head, tail),
                            after,
                            (rows, quarantined, lines.size),
                        )
                        details.update(rows=rows, quarantined=quarantined, byte_offset=after[0])
                    break
                except duckdb.OutOfMemoryException:
                    # a multi-line record may be far longer than any of its lines: once,
                    # with room for a record as long as the window
                    retry = MEMORY_BYTES + MEMORY_PER_BYTE * lines.size
                    if budget >= retry:
                        raise
                    budget = retry
            first = False
            if held:
                result.replaced, held = details["replaced"], False
            offset, line_no = after
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
            self._count_read()

    def _count_read(self) -> None:
        """Report the bytes of the file on disk read so far (ahead by a window at most)."""
        position = min(self.file_handle.tell(), self.file_budget)
        self.progress.advance(position - self.file_counted)
        self.file_counted = position

    def _advance(
        self,
        file_id: int,
        stored: str,
        source: Source,
        source_name: str,
        ends: tuple[bytes, bytes],
        after: tuple[int, int],
        counts: tuple[int, int, int],
    ) -> None:
        """Move the file's checkpoint to ``after`` (byte offset, line) and add ``counts``.

        ``ends``: the file's first KiB and the KiB before the new offset; ``counts``:
        the window's rows, quarantined records and bytes.
        """
        (head, tail), (offset, line_no), (rows, quarantined, size) = ends, after, counts
        self.con.execute(
            """UPDATE ingest_files SET path = ?, fingerprint = ?, head_hash = ?, size = ?,
                byte_offset = ?, line_no = ?, rows = rows + ?,
                quarantined = quarantined + ?, records = records + ?,
                bytes_read = bytes_read + ?, source = ?, mtime = ?,
                last_ingested = now() WHERE file_id = ?""",
            [
                stored,
                fingerprint(head, tail, offset),
                head_hash(head, offset),
                source.size,
                offset,
                line_no,
                rows,
                quarantined,
                rows + quarantined,
                size,
                source_name,
                source.mtime,
                file_id,
            ],
        )

    @contextlib.contextmanager
    def _memory(self, budget: int) -> Iterator[None]:
        """DuckDB's memory limit raised to ``budget`` bytes for the block, when above the usual."""
        if budget <= MEMORY_BYTES:
            yield
            return
        self.con.execute(f"SET memory_limit = '{budget // (1 << 20)}MB'")
        try:
            yield
        finally:
            self.con.execute(f"SET memory_limit = {sql_str(MEMORY_LIMIT)}")

    def _register(
        self, source: Source, stored: str, file_id: int, head: bytes, detected: Detected
    ) -> None:
        self.con.execute(
            """INSERT INTO ingest_files (file_id, path, fingerprint, size, head_hash, format,
                compression, first_ingested) VALUES (?, ?, '', ?, ?, ?, ?, now())""",
            [
                file_id,
                stored,
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
        import duckdb

        self.con.register(WINDOW_VIEW, lines)
        try:
            yield
        except BaseException:
            # an aborted transaction refuses even this; the next window's view replaces it
            with contextlib.suppress(duckdb.Error):
                self.con.unregister(WINDOW_VIEW)
            raise
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
        shape = ", line_shape" if detected.shaped else ""
        ctes = [f"raw AS (SELECT line, line_json, line_no, byte_offset{shape} FROM {WINDOW_VIEW})"]
        if detected.multiline and _one_line_records(lines, detected):
            ctes.append(ONE_LINE_RECORDS)  # nothing to join, here or to an earlier record
        elif detected.multiline:
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
        if lines.altered_offsets and not (self.kinds or self.fields or detected.is_metrics):
            self._keep_row_bytes(lines, file_id, multiline=detected.multiline)
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
            if lines.original is not None and not (self.kinds or self.fields):
                self._keep_exact_bytes(lines, file_id, multiline=detected.multiline)
        if lines.too_long:
            self._quarantine_too_long(lines, file_id)
        return rows, quarantined + len(lines.too_long)

    def _quarantine_too_long(self, lines: WindowLines, file_id: int) -> None:
        """Quarantine the lines longer than ``--max-line``: place, length and first KiB."""
        raw = "?"
        if self.kinds or self.fields:
            raw = "nodus_pseudonym(?)" if self.fields else "nodus_redact(?)"
        exact = "NULL" if self.kinds or self.fields else "?"
        self.con.executemany(
            f"INSERT INTO quarantine (file_id, line_no, byte_offset, raw, reason, raw_bytes) "
            f"VALUES (?, ?, ?, {raw}, ?, {exact})",
            [
                [
                    file_id,
                    line_no,
                    byte_offset,
                    _decode(head),
                    f"line too long ({length:,} bytes, over --max-line {self.options.max_line:,});"
                    " its first KiB is kept",
                    *([] if self.kinds or self.fields else [head]),
                ]
                for line_no, byte_offset, length, head in lines.too_long
            ],
        )

    def _keep_row_bytes(self, lines: WindowLines, file_id: int, *, multiline: bool) -> None:
        """Keep in ``attrs`` (key ``RAW_BYTES_KEY``, base64) the bytes of the window's rows
        whose text is not as read: an undecodable sequence (U+FFFD in the text) or a NUL.
        """
        import base64

        ends: dict[int, int] = {}
        if multiline:  # the record holding an altered line is the last to start before it
            offsets = self._record_starts(lines, file_id)
            starts = {
                offsets[found - 1]
                for altered in lines.altered_offsets
                if (found := bisect.bisect_right(offsets, altered)) > 0
            }
            ends = dict(itertools.pairwise(offsets))
        else:
            starts = set(lines.altered_offsets)
        rows = self.con.execute(
            "SELECT byte_offset FROM logs WHERE file_id = ? AND byte_offset >= ? "
            "AND byte_offset < ?",
            [file_id, lines.offset, lines.offset + lines.size],
        ).fetchall()
        kept = [
            (
                base64.b64encode(lines.bytes_read(offset, ends.get(offset))).decode("ascii"),
                file_id,
                offset,
            )
            for (offset,) in rows
            if offset in starts
        ]
        if kept:
            self.con.executemany(
                "UPDATE logs SET attrs = CAST(json_merge_patch(coalesce(attrs, JSON '{}'), "
                f"json_object('{RAW_BYTES_KEY}', ?)) AS JSON) "
                "WHERE file_id = ? AND byte_offset = ?",
                kept,
            )

    def _record_starts(self, lines: WindowLines, file_id: int) -> list[int]:
        """Where the window's records (rows and quarantined) start, and the window's end."""
        starts = self.con.execute(
            "SELECT byte_offset FROM quarantine WHERE file_id = $1 AND byte_offset >= $2 "
            "AND byte_offset < $3 UNION SELECT byte_offset FROM logs WHERE file_id = $1 "
            "AND byte_offset >= $2 AND byte_offset < $3 ORDER BY 1",
            [file_id, lines.offset, lines.offset + lines.size],
        ).fetchall()
        return [row[0] for row in starts] + [lines.offset + lines.size]

    def _keep_exact_bytes(self, lines: WindowLines, file_id: int, *, multiline: bool) -> None:
        """Fill ``raw_bytes`` of the window's quarantined lines whose text is not as read.

        A multi-line record runs to the next record of the window (either table).
        """
        window = [file_id, lines.offset, lines.offset + lines.size]
        found = self.con.execute(
            "SELECT line_no, byte_offset, raw FROM quarantine "
            "WHERE file_id = ? AND byte_offset >= ? AND byte_offset < ? ORDER BY byte_offset",
            window,
        ).fetchall()
        ends: dict[int, int] = {}
        if multiline:
            ends = dict(itertools.pairwise(self._record_starts(lines, file_id)))
        exact = [
            (data, file_id, line_no)
            for line_no, byte_offset, raw in found
            if (data := lines.exact_bytes(byte_offset, raw, ends.get(byte_offset))) is not None
        ]
        if exact:
            self.con.executemany(
                "UPDATE quarantine SET raw_bytes = ? WHERE file_id = ? AND line_no = ?", exact
            )

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
            labels = self._json_column("labels")
            self.con.execute(
                f"""INSERT INTO metrics (time, series, labels, value, source)
                SELECT time, point.series, {labels}, point.value, ? FROM (
                  SELECT time, labels, unnest(points) AS point, line_no FROM ({good}) AS g)
                WHERE point.value IS NOT NULL ORDER BY line_no""",
                [source_name],
            )
            return _count(self.con.execute(f"SELECT count(*) FROM ({good}) AS g"))
        if detected.is_metrics:
            labels = self._json_column("labels")
            cursor = self.con.execute(
                f"""INSERT INTO metrics (time, series, labels, value, source)
                SELECT time, series, {labels}, value, ? FROM ({good}) AS g""",
                [source_name],
            )
            return _count(cursor)
        order = " ORDER BY line_no" if detected.multiline else ""
        columns = {name: name for name in redact.LOG_COLUMNS}
        if self.kinds or self.fields:
            named = {field.lower() for field in self.fields}
            for name in columns:
                written = {name, detected.keys.get(name, name).lower()}
                if written & named:
                    columns[name] = f"nodus_pseudonym({name})"
                elif self.kinds:
                    columns[name] = f"nodus_redact({name})"
        attrs = self._json_column("attrs")
        # The shape is taken of the message as stored (after redaction); a parser's
        # shape_text (formats.SHAPED) is the message as parsed, masked.
        star, shape, masked = "*", shape_sql("message"), ""
        if detected.shaped and not (self.kinds or self.fields):
            star, shape = "* EXCLUDE (shape_text)", shape_of_masked("shape_text")
            masked = ", shape_text"
        cursor = self.con.execute(
            f"""INSERT INTO logs (time, level, host, app, pid, message, attrs, source,
                file_id, line_no, byte_offset, pattern_id)
            SELECT {star}, {shape} FROM (
              SELECT time, level, {columns["host"]} AS host, {columns["app"]} AS app, pid,
                {columns["message"]} AS message, {attrs} AS attrs, ? AS source,
                ? AS file_id, line_no, byte_offset{masked}
              FROM ({good}) AS g) AS r{order}""",
            [source_name, file_id],
        )
        return _count(cursor)

    def _json_column(self, column: str) -> str:
        """``attrs``/``labels`` with the requested values pseudonymised.

        Named fields first (their pseudonyms are those of the clear values, as in the
        columns), then the kinds over the whole text.
        """
        if not (self.kinds or self.fields):
            return column
        expression = f"CAST({column} AS VARCHAR)"
        if self.fields:
            hint = sql_str(redact.may_hold_field(self.fields))
            expression = (
                f"CASE WHEN regexp_matches({expression}, {hint}) "
                f"THEN {FIELDS_UDF}({expression}) ELSE {expression} END"
            )
        if self.kinds:
            expression = f"nodus_redact({expression})"
        return f"CAST({expression} AS JSON)"

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


# ``records`` of a syslog window whose every line that is not blank starts a record:
# the grouping below would number them with a window function over the whole window,
# which runs on one core and cost as much as parsing the lines.
ONE_LINE_RECORDS = """records AS (SELECT *, TRUE AS joined FROM raw WHERE nodus_filled(line))"""


def _one_line_records(lines: WindowLines, detected: Detected) -> bool:
    """Whether each line of the window that is not blank starts a record of its own.

    Known from the lines' first bytes for syslog, whose records start with a non-blank
    (``^\\S``); a plain-text layout would need its regular expression run.
    """
    return detected.format == "syslog" and not lines.maybe_continued


def _records_cte(detected: Detected, *, without_leading: bool = False) -> str:
    """``records``: a multi-line format's lines grouped into numbered records.

    Lines before the window's first record start form group 0 (``joined`` false);
    ``without_leading`` leaves that group out once it was joined to an earlier record.
    """
    having = " HAVING grp > 0" if without_leading else ""
    shape = ""
    if detected.shaped:
        shape = ", string_agg(line_shape, chr(10) ORDER BY line_no) AS line_shape"
    return f"""records AS (SELECT min(line_no) AS line_no, min(byte_offset) AS byte_offset,
            string_agg(line, chr(10) ORDER BY line_no) AS line, grp > 0 AS joined{shape}
          FROM (SELECT *, sum(CASE WHEN {detected.start_sql()} THEN 1 ELSE 0 END)
                  OVER (ORDER BY line_no ROWS UNBOUNDED PRECEDING) AS grp
                FROM raw WHERE nodus_filled(line)) GROUP BY grp{having})"""


def _store_error(exc: Exception) -> str:
    """A DuckDB error in the user's terms."""
    import duckdb

    if isinstance(exc, duckdb.OutOfMemoryException):
        return (
            "a record needs more memory than ingest gives a window; split the file, "
            "or lower --max-line to quarantine its longest lines"
        )
    return f"the store refused the data: {str(exc).splitlines()[0]}"


def _may_grow(source: Source, detected: Detected) -> bool:
    """Whether an unterminated last line may still be being written, so is held open.

    Not for stdin or gzip (read once, whole), nor for metrics, whose rows name no file
    or line by which a later run could replace them: their last line is final.
    """
    return source.path != STDIN and source.compression is None and not detected.is_metrics


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


def _same_file(path: str, source: Source) -> bool:
    """Whether ``path`` reaches the very file being read (by another spelling, a link)."""
    if path == STDIN or source.path == STDIN:
        return False
    try:
        return os.path.samefile(path, source.local)
    except OSError:
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
