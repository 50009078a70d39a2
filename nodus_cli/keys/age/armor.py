"""ASCII armor (``-----BEGIN AGE ENCRYPTED FILE-----``), read and written streaming."""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

from nodus_cli.keys.age.header import ENCRYPTED_CHUNK_SIZE, VERSION_LINE, WHITESPACE, not_age
from nodus_cli.keys.errors import (
    AgeArmorError,
)

if TYPE_CHECKING:
    pass

ARMOR_BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
ARMOR_END = b"-----END AGE ENCRYPTED FILE-----"
ARMOR_COLUMNS = 64
ARMOR_LINE_BYTES = 48  # what one full line encodes
ARMOR_READ_SIZE = 16384 * (ARMOR_COLUMNS + 1)  # whole LF lines per read
ARMOR_WRITE_SIZE = 16384 * ARMOR_LINE_BYTES


# --- armor --------------------------------------------------------------------------


class ArmorReader(io.RawIOBase):
    """Decodes the ASCII armor strictly and fast.

    Runs of full 64-column lines are checked and decoded a block at a time (the line
    ends sit at fixed strides, so a few C-level operations check a whole block); the
    last, short line, the END line and anything irregular go line by line.
    """

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        self._pending = memoryview(b"")
        self._carry = b""
        self._done = False
        self._last_short = False
        self._begin()

    def readable(self) -> bool:
        return True

    def _begin(self) -> None:
        first = self._source.readline(4096)
        while first and not first.strip(WHITESPACE):
            first = self._source.readline(4096)
        first = first.lstrip(WHITESPACE)
        if _strip_eol(first) != ARMOR_BEGIN:
            if first.startswith(b"-----BEGIN ") and first[11:14].upper() != b"AGE":
                raise not_age(first)  # PGP, PEM: another format, not a damaged age armor
            raise AgeArmorError("invalid armor: missing or wrong BEGIN line")

    def _refill(self) -> None:
        chunk = self._source.read(ARMOR_READ_SIZE)
        data = self._carry + chunk if self._carry else chunk
        if not data:
            raise AgeArmorError("invalid armor: the END line is missing (truncated file?)")
        decoded = None if self._last_short else _decode_full_lines(data)
        if decoded is not None:
            self._pending, self._carry = memoryview(decoded[0]), data[decoded[1] :]
            return
        lines = data.split(b"\n")
        self._carry = lines.pop() if chunk else b""
        if not chunk and lines[-1] == b"":
            lines.pop()  # the file's final newline
        output = bytearray()
        for number, line in enumerate(lines):
            if self._line(line, output):
                self._finish(b"\n".join(lines[number + 1 :]) + self._carry)
                break
        self._pending = memoryview(bytes(output))

    def _line(self, line: bytes, output: bytearray) -> bool:
        """Decode one line (without its LF) into ``output``; True at the END line."""
        stripped = line[:-1] if line.endswith(b"\r") else line
        if stripped == ARMOR_END:
            return True
        if self._last_short:
            raise AgeArmorError("invalid armor: data after the last line")
        if not stripped or len(stripped) > ARMOR_COLUMNS:
            raise AgeArmorError("invalid armor: bad line length")
        if len(stripped) < ARMOR_COLUMNS or b"=" in stripped:
            self._last_short = True
        try:
            data = binascii.a2b_base64(stripped, strict_mode=True)
        except binascii.Error:
            raise AgeArmorError("invalid armor: bad base64") from None
        if base64.b64encode(data) != stripped:
            raise AgeArmorError("invalid armor: non-canonical base64")
        output += data
        return False

    def _finish(self, rest: bytes) -> None:
        self._done = True
        while True:
            if rest.strip(WHITESPACE):
                raise AgeArmorError("invalid armor: data after the END line")
            rest = self._source.read(ARMOR_READ_SIZE)
            if not rest:
                break

    def blocks(self) -> Iterator[memoryview]:
        """The rest of the decoded data, a block at a time, without a copy."""
        while True:
            if self._pending:
                block, self._pending = self._pending, memoryview(b"")
                yield block
            if self._done:
                return
            self._refill()

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending and not self._done:
            self._refill()
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _decode_full_lines(data: bytes) -> tuple[bytes, int] | None:
    """The decoded bytes of ``data``'s leading run of full 64-column lines (LF or CRLF,
    no padding) and how many bytes they span; None when ``data`` does not start so."""
    end = data.find(b"\n", 0, ARMOR_COLUMNS + 2)
    if end not in (ARMOR_COLUMNS, ARMOR_COLUMNS + 1):
        return None
    width = end + 1
    count = len(data) // width
    decoded = _decode_lines(data, width, count)  # every line full: all blocks but the last
    if decoded is not None:
        return decoded
    for mark in (b"=", b"-"):  # padding ends the last line; "-" starts the END line
        found = data.find(mark, 0, count * width)
        if found >= 0:
            count = min(count, found // width - (mark == b"-"))
    return _decode_lines(data, width, count)  # None: the careful path says what is wrong


def _decode_lines(data: bytes, width: int, count: int) -> tuple[bytes, int] | None:
    """``count`` full lines of ``width`` bytes decoded, or None when a line has another
    length, a character is not base64, or the run ends in padding (the careful path
    checks that the last line is canonical)."""
    import numpy as np
    import pybase64

    if count <= 0:
        return None
    for offset, end_byte in enumerate(b"\r\n"[-(width - ARMOR_COLUMNS) :]):
        if data[ARMOR_COLUMNS + offset : count * width : width] != bytes([end_byte]) * count:
            return None
    # Each line a record: the copy of the 64-byte text fields runs at memcpy speed.
    line = np.dtype([("text", f"V{ARMOR_COLUMNS}"), ("end", f"V{width - ARMOR_COLUMNS}")])
    text = np.frombuffer(data, line, count)["text"].tobytes()
    if text.endswith(b"="):
        return None
    try:
        return pybase64.b64decode(text, validate=True), count * width
    except binascii.Error:
        return None


class ArmorWriter(io.RawIOBase):
    """Writes the ASCII armor: BEGIN, 64-column base64 lines, and END on ``finish``."""

    def __init__(self, target: IO[bytes]) -> None:
        self._target = target
        self._buffer = bytearray()
        self._target.write(ARMOR_BEGIN + b"\n")

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._buffer += data
        if len(self._buffer) >= ARMOR_WRITE_SIZE:
            whole = len(self._buffer) - len(self._buffer) % ARMOR_LINE_BYTES
            self._target.write(_armor_lines(bytes(self._buffer[:whole])))
            del self._buffer[:whole]
        return len(data)

    def finish(self) -> None:
        self._target.write(_armor_lines(bytes(self._buffer)) + ARMOR_END + b"\n")
        self._buffer.clear()


def _armor_lines(data: bytes) -> bytes:
    """``data`` as base64 in 64-column lines, each ending in LF."""
    import numpy as np
    import pybase64

    text = pybase64.b64encode(data)
    full = len(text) // ARMOR_COLUMNS
    lines = np.empty((full, ARMOR_COLUMNS + 1), np.uint8)
    lines[:, :ARMOR_COLUMNS] = np.frombuffer(text, np.uint8, full * ARMOR_COLUMNS).reshape(
        full, ARMOR_COLUMNS
    )
    lines[:, ARMOR_COLUMNS] = ord("\n")
    rest = text[full * ARMOR_COLUMNS :]
    return lines.tobytes() + (rest + b"\n" if rest else b"")


def _strip_eol(line: bytes) -> bytes:
    if line.endswith(b"\r\n"):
        return line[:-2]
    return line[:-1] if line.endswith(b"\n") else line


def buffered(source: IO[bytes]) -> io.BufferedReader:
    if isinstance(source, io.BufferedReader):
        return source
    return io.BufferedReader(source)  # type: ignore[arg-type]


def looks_armored(reader: io.BufferedReader) -> bool:
    """Not a binary age file, and an armor (or an attempt at one) in its first bytes."""
    start = reader.peek(4096)[:4096]
    if start.startswith(VERSION_LINE[:19]):
        return False
    return start.lstrip(WHITESPACE).startswith(b"-----") or b"-----BEGIN" in start


def unarmored(source: IO[bytes]) -> io.BufferedReader:
    """``source``, or its decoded contents when it is ASCII-armored."""
    reader = buffered(source)
    if looks_armored(reader):
        return io.BufferedReader(ArmorReader(reader), buffer_size=ENCRYPTED_CHUNK_SIZE)
    return reader
