"""A window's lines as an Arrow stream that DuckDB scans in parallel, numbered in place.

Each row carries the line (without its newline or a CR before it), its line
number and its byte offset, all computed with a few vectorised passes over the
window's bytes. The parsers need no window function to number lines, so every
step of the parse and insert runs on all cores, and nothing is written to disk
for DuckDB to read back: the lines are copied once, without their newlines, into
the buffer DuckDB scans.
"""

from __future__ import annotations

import codecs
import queue
import threading
from collections.abc import Generator, Iterator
from typing import Any

from nodus_cli.ingest.source import HEAD_BYTES

# Rows per Arrow batch: each batch is one unit of parallel work for DuckDB's scan.
BATCH_ROWS = 16_384


def _same_length_replace(error: UnicodeError) -> tuple[str, int]:
    """Replace each undecodable byte by one '?' so byte offsets stay exact."""
    assert isinstance(error, UnicodeDecodeError)
    return "?" * (error.end - error.start), error.end


codecs.register_error("nodus-same-length", _same_length_replace)


def _valid_text(window: bytes | bytearray) -> bytes | bytearray:
    """The window as valid UTF-8 without NUL bytes, every byte offset unchanged."""
    if not window.isascii():  # ASCII is valid UTF-8; the check is much cheaper than decoding
        try:
            window.decode("utf-8")
        except UnicodeDecodeError:
            window = window.decode("utf-8", "nodus-same-length").encode("utf-8")
    if b"\0" in window:
        window = window.replace(b"\0", b" ")
    return window


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
    """The lines of one window: ``line``, ``line_no`` (1-based) and ``byte_offset``.

    It keeps no reference to ``window``, whose buffer the reader fills again next;
    ``size`` and ``last_bytes`` (its final KiB) are what the checkpoint needs of it.

    ``offset`` and ``lines_before`` place the window in its file. Every export of
    the Arrow stream is a fresh stream, so one window can be scanned several times.
    """

    def __init__(self, window: bytes | bytearray, offset: int, lines_before: int) -> None:
        import numpy as np

        self.size = len(window)
        self.last_bytes = bytes(window[-HEAD_BYTES:])
        window = _valid_text(window)
        octets = np.frombuffer(window, np.uint8)  # a view, released when __init__ returns
        ends = _newlines(octets)
        unterminated = bool(window) and not window.endswith(b"\n")
        if unterminated:
            ends = np.append(ends, len(window))
        count = len(ends)
        starts = np.empty(count, np.int64)
        if count:
            starts[0] = 0
            starts[1:] = ends[:-1] + 1
        lengths = ends - starts
        first_bytes = octets[starts[lengths > 0]]
        # A line that is empty or starts with a blank may hold no record at all.
        self.maybe_blank = bool((lengths == 0).any() or np.isin(first_bytes, (9, 13, 32)).any())
        data = window
        if b"\r" in window:  # a CR before the line's end is not part of the line
            before_end = octets[np.maximum(ends - 1, 0)]
            lengths -= (before_end == 13) & (lengths > 0)
            data = data.replace(b"\r\n", b"\n")
            if unterminated and data.endswith(b"\r"):
                data = data[:-1]
        self.count = count
        offsets = np.zeros(count + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        self._arrow = _arrow_batches(
            data.replace(b"\n", b""),
            offsets,
            np.arange(lines_before + 1, lines_before + count + 1, dtype=np.int64),
            starts + offset,
        )

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        return self._arrow.__arrow_c_stream__()


def _arrow_batches(data: Any, offsets: Any, line_no: Any, byte_offset: Any) -> Any:
    """The columns as Arrow record batches over the same buffers (nothing is copied).

    Built once, on the reader thread: DuckDB asks for the stream more than once.
    """
    import nanoarrow as na

    schema = na.struct(
        {"line": na.large_string(), "line_no": na.int64(), "byte_offset": na.int64()}
    )
    count = len(line_no)
    batches = []
    for low in range(0, max(count, 1), BATCH_ROWS):
        high = min(low + BATCH_ROWS, count)
        line = na.c_array_from_buffers(
            na.large_string(), high - low, [None, offsets[low : high + 1], data]
        )
        columns = [
            line,
            na.c_array(line_no[low:high], na.int64()),
            na.c_array(byte_offset[low:high], na.int64()),
        ]
        batches.append(na.c_array_from_buffers(schema, high - low, [None], children=columns))
    return na.Array.from_chunks(batches, validate=False)


def numbered(
    windows: Iterator[bytes | bytearray], offset: int, lines_before: int
) -> Generator[WindowLines, None, None]:
    """The lines of each window, prepared one window ahead on another thread.

    Reading and splitting the next window (NumPy and file reads release the GIL)
    overlaps with DuckDB parsing the current one. Only one window is prepared
    ahead, so at most two windows' lines are held at a time.
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
            for window in windows:
                if not wait_for_room():
                    return
                lines = WindowLines(window, position, count)
                del window  # its buffer is read into again for the next window
                position, count = position + lines.size, count + lines.count
                ready.put(lines)
            ready.put(None)
        except BaseException as exc:  # raised again on the consumer's side
            ready.put(exc)

    worker = threading.Thread(target=produce, name="nodus-window-reader", daemon=True)
    worker.start()
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            room.release()
            yield item
    finally:
        stop.set()
        worker.join()
