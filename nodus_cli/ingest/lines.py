"""A window's lines as an Arrow stream that DuckDB scans in parallel, numbered in place.

Each row carries the line (without its newline or a CR before it), its line
number and its byte offset (and, when asked, the line with its digits 0), all
computed with a few vectorised passes over the window's bytes. The parsers need
no window function to number lines, so every step of the parse and insert runs on
all cores. The lines are Arrow string views into the window's own buffer: nothing
is copied or written to disk for DuckDB to read (but that masked copy).
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Generator, Iterator
from typing import Any

from nodus_cli.errors import InputError
from nodus_cli.ingest.source import HEAD_BYTES, LongLine, record_boundary

# Rows per Arrow batch: each batch is one unit of parallel work for DuckDB's scan.
BATCH_ROWS = 16_384
INLINE_BYTES = 12  # an Arrow string view holds a string this short itself
MAX_WINDOW = (2 << 30) - 1  # string views address their buffer with 32-bit offsets


NUL_LINE = re.compile(rb"(?m)^\0+(?=\r?$)")
NUL_MARK = b"\x1a"  # ASCII SUB: a line of NUL bytes is a record, not a blank line
REPLACEMENT = "\ufffd".encode()  # what an undecodable byte sequence becomes in the text
# A row's shape is its message with every digit 0 (``schema.shape_sql``). For a million
# syslog lines, masking the window here and cutting each message from it cost about
# 0.25 s CPU where the nine replace() passes over each message cost 1.05 s.
DIGITS_MASKED = bytes.maketrans(b"123456789", b"000000000")


def _valid_text(window: bytes | bytearray) -> bytes | bytearray:
    """The window as valid UTF-8 without NUL bytes, line for line.

    Each undecodable byte sequence becomes U+FFFD (so the text may be longer than the
    bytes read: ``WindowLines`` takes byte offsets from the bytes). A NUL inside a line
    becomes a space; a line of nothing but NULs (a file's preallocated or crash-zeroed
    blocks) becomes SUB characters, so that it is still a record, quarantined like any
    line that does not parse. Newlines are never touched: line N of the text is line N
    of the bytes.
    """
    if not window.isascii():  # ASCII is valid UTF-8; the check is much cheaper than decoding
        try:
            window.decode("utf-8")
        except UnicodeDecodeError:
            window = window.decode("utf-8", "replace").encode("utf-8")
    if b"\0" in window:
        window = NUL_LINE.sub(lambda run: NUL_MARK * len(run[0]), window)
        window = window.replace(b"\0", b" ")
    return window


def _line_bounds(buffer: bytes | bytearray) -> tuple[Any, Any, Any]:
    """Every line's start, length with its line end, and length without a CR before it."""
    import numpy as np

    octets = np.frombuffer(buffer, np.uint8)
    ends = _newlines(octets)
    if buffer and not buffer.endswith(b"\n"):
        ends = np.append(ends, len(buffer))
    starts = np.empty(len(ends), np.int64)
    if len(ends):
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
    lengths = ends - starts
    text_lengths = lengths
    if b"\r" in buffer:  # a CR before the line's end is not part of the line
        text_lengths = lengths - ((octets[np.maximum(ends - 1, 0)] == 13) & (lengths > 0))
    return starts, lengths, text_lengths


def _per_line(positions: Any, starts: Any) -> Any:
    """How many of ``positions`` fall in each line (``starts``: the lines' first bytes)."""
    import numpy as np

    return np.bincount(np.searchsorted(starts, positions, "right") - 1, minlength=len(starts))


def _replacements(octets: Any) -> Any:
    """Positions where U+FFFD's three bytes start in ``octets``."""
    import numpy as np

    if len(octets) < 3:
        return np.empty(0, np.int64)
    lead = np.flatnonzero(octets[:-2] == REPLACEMENT[0])
    keep = (octets[lead + 1] == REPLACEMENT[1]) & (octets[lead + 2] == REPLACEMENT[2])
    return lead[keep]


def _newlines(buffer: Any) -> Any:
    """Positions of the newline bytes, scanned in cache-sized blocks (no big temporaries)."""
    import numpy as np

    block = 1 << 20
    found = [
        np.flatnonzero(buffer[start : start + block] == 10) + start
        for start in range(0, len(buffer), block)
    ]
    return np.concatenate(found) if found else np.empty(0, np.int64)


class WindowLines:
    """The lines of one window: ``line``, ``line_json``, ``line_no`` (1-based), ``byte_offset``.

    ``line_json`` is the same text typed JSON and not validated (DuckDB takes Arrow's
    ``arrow.json`` extension type as its JSON type): a JSON function given it skips
    the cast from VARCHAR, which parses every line once more. It may hold any text,
    so only a function that fails softly on bad JSON may see it unguarded.

    With ``shapes``, ``line_shape`` is the line with every digit 0 (``DIGITS_MASKED``),
    for the parsers that cut each row's shape from it (``formats.SHAPED``).

    ``maybe_blank``: a line may be blank; ``maybe_continued``: a line may start
    with a blank, so continue a record whose lines start with a non-blank (syslog).

    ``offset`` and ``lines_before`` place the window in its file. ``size`` and
    ``last_bytes`` (its final KiB) are what the checkpoint needs of it. With
    ``hold_open``, a window that ends without a newline (a file's end, maybe still
    being written) says where its open record starts (``open_at``; ``size`` when
    there is none), how many lines that record has (``open_lines``) and the KiB
    before it (``closed_last_bytes``): see ``open_record``. The lines
    point into ``window``, which must not change while they are scanned. Every
    export of the Arrow stream is a fresh stream, so one window can be scanned
    several times.
    """

    def __init__(
        self,
        window: bytes | bytearray | LongLine,
        offset: int,
        lines_before: int,
        *,
        hold_open: bool = False,
        record_start: re.Pattern[str] | None = None,
        max_line: int | None = None,
        shapes: bool = False,
    ) -> None:
        import numpy as np

        # lines longer than max_line: (line_no, byte_offset, length, first KiB), and not
        # shown to DuckDB (an empty line in their place, which no parser takes as a record)
        self.too_long: list[tuple[int, int, int, bytes]] = []
        if isinstance(window, LongLine):
            self._long_line(window, offset, lines_before, hold_open=hold_open, shapes=shapes)
            return
        self.size = len(window)
        if self.size > MAX_WINDOW:
            start = offset + window.rfind(b"\n", 0, self.size - 1) + 1
            raise InputError(f"the line at byte {start} is longer than nodus can read (2 GiB)")
        self.last_bytes = bytes(window[-HEAD_BYTES:])
        self.open_at = open_record(window, record_start) if hold_open else self.size
        self.open_lines = window.count(b"\n", self.open_at) + 1 if self.open_at < self.size else 0
        self.closed_last_bytes = bytes(window[max(0, self.open_at - HEAD_BYTES) : self.open_at])
        self.offset = offset
        text = _valid_text(window)
        # the bytes as read, when the lines DuckDB sees differ from them (see exact_bytes)
        self.original = None if text is window else bytes(window)
        octets = np.frombuffer(text, np.uint8)
        starts, whole, lengths = _line_bounds(text)
        count = len(starts)
        # where each line starts and how long it is in the file, and where the lines start
        # whose text is not their bytes (an undecodable sequence or a NUL)
        byte_starts, byte_lengths = starts, lengths
        self.altered_offsets: list[int] = []
        if self.original is not None:
            as_read = np.frombuffer(self.original, np.uint8)
            byte_starts, _, byte_lengths = _line_bounds(self.original)
            altered = _per_line(_replacements(octets), starts) != _per_line(
                _replacements(as_read), byte_starts
            )
            altered |= _per_line(np.flatnonzero(as_read == 0), byte_starts) > 0
            self.altered_offsets = (byte_starts[altered] + offset).tolist()
        window = text
        first_bytes = octets[starts[whole > 0]]
        # A line that is empty or starts with a blank may hold no record at all.
        self.maybe_blank = bool((whole == 0).any() or np.isin(first_bytes, (9, 13, 32)).any())
        # A line that starts with what DuckDB's regular expressions take for a blank
        # (RE2's \s: tab, LF, FF, CR, space) may continue the record above it.
        self.maybe_continued = bool(np.isin(first_bytes, (9, 10, 12, 13, 32)).any())
        if max_line is not None and count and int(byte_lengths.max()) > max_line:
            read = window if self.original is None else self.original  # bytes as read
            for index in np.flatnonzero(byte_lengths > max_line).tolist():
                start = int(byte_starts[index])
                length = int(byte_lengths[index])
                head = bytes(read[start : start + min(length, HEAD_BYTES)])
                self.too_long.append((lines_before + index + 1, offset + start, length, head))
            lengths = np.where(byte_lengths > max_line, 0, lengths)
            self.maybe_blank = True
        self.longest = int(lengths.max()) if count else 0
        self.count = count
        masked = window.translate(DIGITS_MASKED) if shapes else None
        self._arrow: Any = _arrow_batches(
            (window, _string_views(window, starts, lengths)),
            None if masked is None else (masked, _string_views(masked, starts, lengths)),
            np.arange(lines_before + 1, lines_before + count + 1, dtype=np.int64),
            byte_starts + offset,
        )

    def _long_line(
        self, line: LongLine, offset: int, lines_before: int, *, hold_open: bool, shapes: bool
    ) -> None:
        """A window of one line too long to read whole: only its place and first KiB.

        Held open like any unterminated last line, so that it is one record once complete.
        """
        empty = WindowLines(b"", offset, lines_before, shapes=shapes)
        self.__dict__.update(empty.__dict__)
        self.size, self.count, self.maybe_blank = line.size, 1, True
        self.maybe_continued = True
        self.last_bytes = self.closed_last_bytes = line.last_bytes
        self.open_at, self.open_lines = line.size, 0
        if hold_open and not line.terminated:
            self.open_at, self.open_lines, self.closed_last_bytes = 0, 1, b""
        length = line.size - 1 if line.terminated else line.size
        if line.last_bytes.endswith(b"\r\n" if line.terminated else b"\r"):
            length -= 1  # the CR before the line's end (or the file's), as for any other line
        self.too_long = [(lines_before + 1, offset, length, line.head[:length])]

    def exact_bytes(self, byte_offset: int, text: str, end: int | None = None) -> bytes | None:
        """The bytes read for the record at ``byte_offset`` whose text is ``text``.

        None when ``text`` already is those bytes (see ``bytes_read``).
        """
        if self.original is None:
            return None
        exact = self.bytes_read(byte_offset, end)
        return None if exact == text.encode("utf-8") else exact

    def bytes_read(self, byte_offset: int, end: int | None = None) -> bytes:
        """The bytes read for the record at ``byte_offset``.

        The record is one line, or runs to ``end`` (the next record's offset) for a
        multi-line format. The final line end is left out as in the text; CRs, NULs and
        undecodable bytes are as read.
        """
        read = self.original if self.original is not None else b""
        start = byte_offset - self.offset
        if end is None:
            found = read.find(b"\n", start)
            stop = found if found >= 0 else len(read)
        else:
            stop = end - self.offset
        return read[start:stop].rstrip(b"\n").removesuffix(b"\r")

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        if self._arrow is None:
            raise RuntimeError("the window's lines were released")
        return self._arrow.__arrow_c_stream__()

    def release(self) -> None:
        """Drop the Arrow batches, the last views into the window's buffer."""
        self._arrow = None


def open_record(window: bytes | bytearray, record_start: re.Pattern[str] | None) -> int:
    """Where the record an unterminated last line belongs to starts (``len(window)``: none).

    A writer may be in the middle of that line: its record is stored, but the
    checkpoint stays before it, so a later run reads it again whole and replaces it.
    For a multi-line format (``record_start``) the record may span several lines; one
    that started before this window (a record longer than a window, continuation
    lines appended later) is not held: it was already joined to an earlier record.
    """
    size = len(window)
    if not size or window.endswith(b"\n"):
        return size
    last = window.rfind(b"\n") + 1
    if record_start is None:
        return last
    if _starts_record(window, last, record_start):
        return last
    start = record_boundary(window, last, record_start)
    if start > 0 or _starts_record(window, 0, record_start):
        return start
    return size


def _starts_record(window: bytes | bytearray, start: int, record_start: re.Pattern[str]) -> bool:
    end = window.find(b"\n", start)
    line = window[start : end if end >= 0 else len(window)].decode("utf-8", "replace")
    return record_start.match(line.rstrip("\r")) is not None


def _string_views(window: bytes | bytearray, starts: Any, lengths: Any) -> Any:
    """Arrow string views (16 bytes each) of the lines at ``starts`` in ``window``.

    A view holds the length, then either the whole string (up to 12 bytes, zero
    padded) or its first 4 bytes, the data buffer's index (0) and the offset.
    """
    import numpy as np

    views = np.zeros((len(starts), 4), np.int32)
    views[:, 0] = lengths
    long = lengths > INLINE_BYTES
    if long.any():
        long_starts = starts[long]
        # every 4-byte word of the window, whatever its alignment (a view, no copy)
        words = np.ndarray((len(window) - 3,), "<i4", window, strides=(1,))
        views[long, 1] = words[long_starts]
        views[long, 3] = long_starts
    short = ~long
    if short.any():
        positions = starts[short, None] + np.arange(INLINE_BYTES)
        inline = np.frombuffer(window, np.uint8)[np.minimum(positions, len(window) - 1)]
        inline[np.arange(INLINE_BYTES) >= lengths[short, None]] = 0
        views.view(np.uint8).reshape(-1, 16)[short, 4:] = inline
    return views.reshape(-1).view(np.uint8)


def _arrow_batches(
    lines: tuple[Any, Any], shapes: tuple[Any, Any] | None, line_no: Any, byte_offset: Any
) -> Any:
    """The columns as Arrow record batches over the same buffers (nothing is copied).

    ``lines`` and ``shapes`` (or None): a buffer and the string views into it. Built
    once, on the reader thread: DuckDB asks for the stream more than once.
    """
    import nanoarrow as na

    json = na.extension_type(na.string_view(), "arrow.json")
    fields = {
        "line": na.string_view(),
        "line_json": json,
        "line_no": na.int64(),
        "byte_offset": na.int64(),
    }
    if shapes is not None:
        fields["line_shape"] = na.string_view()
    schema = na.struct(fields)
    count = len(line_no)
    batches = []
    for low in range(0, max(count, 1), BATCH_ROWS):
        high = min(low + BATCH_ROWS, count)
        columns = [
            _strings(na.string_view(), lines, low, high),
            _strings(json, lines, low, high),  # the same buffers
            na.c_array(line_no[low:high], na.int64()),
            na.c_array(byte_offset[low:high], na.int64()),
        ]
        if shapes is not None:
            columns.append(_strings(na.string_view(), shapes, low, high))
        batches.append(na.c_array_from_buffers(schema, high - low, [None], children=columns))
    return na.Array.from_chunks(batches, validate=False)


def _strings(kind: Any, strings: tuple[Any, Any], low: int, high: int) -> Any:
    """Rows ``low`` to ``high`` of ``strings`` (a buffer, its views) as an Arrow array."""
    import nanoarrow as na

    buffer, views = strings
    return na.c_array_from_buffers(kind, high - low, [None, views[low * 16 : high * 16], buffer])


def _import_splitters() -> None:
    """Import what splitting a window needs (NumPy alone takes about 0.06 s)."""
    import nanoarrow  # noqa: F401
    import numpy  # noqa: F401


def numbered(
    windows: Iterator[bytes | bytearray | LongLine],
    offset: int,
    lines_before: int,
    *,
    hold_open: bool = False,
    record_start: re.Pattern[str] | None = None,
    max_line: int | None = None,
    shapes: bool = False,
) -> Generator[WindowLines, None, None]:
    """The lines of each window, prepared one window ahead on another thread.

    ``hold_open``, ``record_start``, ``max_line`` and ``shapes``: see ``WindowLines``.

    Reading and splitting the next window (NumPy and file reads release the GIL)
    overlaps with DuckDB parsing the current one. Only one window is read ahead,
    so at most two windows are held at a time.
    """
    ready: queue.Queue[WindowLines | BaseException | None] = queue.Queue()
    room = threading.Semaphore(1)  # released when the consumer takes a window
    stop = threading.Event()

    def wait_for_room() -> bool:
        """False once the consumer has gone."""
        while not stop.is_set():
            if room.acquire(timeout=0.1):
                return True
        return False

    def produce() -> None:
        position, count = offset, lines_before
        try:
            while wait_for_room():
                window = next(windows, None)
                if window is None:
                    ready.put(None)
                    return
                lines = WindowLines(
                    window,
                    position,
                    count,
                    hold_open=hold_open,
                    record_start=record_start,
                    max_line=max_line,
                    shapes=shapes,
                )
                position, count = position + lines.size, count + lines.count
                ready.put(lines)
        except BaseException as exc:  # raised again on the consumer's side
            ready.put(exc)

    worker = threading.Thread(target=produce, name="nodus-window-reader", daemon=True)
    worker.start()
    try:
        _import_splitters()  # while the first window is read, which releases the GIL
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            room.release()
            yield item
            item.release()  # the consumer asked for the next window: its buffer can be reused
    finally:
        stop.set()
        worker.join()
