"""The one renderer every command uses: JSON encoding, tables and messages.

Data goes to stdout; messages, warnings and progress (``progressbar``) go to stderr. Colour only on
a terminal, never with ``NO_COLOR`` or ``--no-color``.

Nothing a user, a file or the store supplies is ever read as Rich markup, an emoji
code or a terminal escape: tables and messages are plain text written here, with
control characters shown escaped (``\\x1b[31m``); Rich draws only progress bars,
from ``Text`` objects on consoles without markup, emoji or highlighting. csv, json
and ndjson keep the stored characters exact.
"""

from __future__ import annotations

import contextlib
import decimal
import enum
import functools
import json
import os
import re
import shutil
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any

from nodus_cli.cli import flags
from nodus_cli.jsonvalues import jsonable

if TYPE_CHECKING:
    from rich.console import Console


class Format(enum.StrEnum):
    """What ``--format`` chooses for rows (see ``options.FormatOption``)."""

    table = "table"
    json = "json"
    ndjson = "ndjson"
    csv = "csv"


# --- Escaping -------------------------------------------------------------------------

# Characters a terminal acts on instead of showing: C0 and C1 controls (ESC starts
# every ANSI sequence), DEL, line and paragraph separators, the bidirectional
# overrides that reorder what is shown, and lone surrogates (undecodable bytes).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]"
)
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str, *, keep: str = "") -> str:
    """``text`` with every character a terminal would act on shown as an escape
    (``\\x1b``, ``\\n``, ``\\u202e``); characters in ``keep`` (say ``"\\n\\t"``) stay."""
    if keep:
        return _UNSAFE.sub(lambda m: m.group() if m.group() in keep else _escape(m), text)
    return _UNSAFE.sub(_escape, text)


def write_text(text: str) -> None:
    """Write a document (SQL, a diff, a key file) to stdout: exact in a pipe or file;
    on a terminal, control characters other than newline and tab are shown escaped."""
    sys.stdout.write(visible(text, keep="\n\t") if flags.stdout_is_terminal() else text)
    sys.stdout.flush()


def write_bytes(content: bytes) -> None:
    """Write stored bytes to stdout: exact in a pipe or file, escaped text on a terminal."""
    if flags.stdout_is_terminal():
        write_text(content.decode("utf-8", errors="replace"))
        return
    sys.stdout.flush()
    sys.stdout.buffer.write(content)
    sys.stdout.flush()


# --- JSON -----------------------------------------------------------------------------


# json.dumps escapes C0 controls but writes C1 controls, DEL, the line separators and
# the bidirectional overrides as they are: as \uXXXX they keep their value and cannot
# act on a terminal.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def dumps(document: Any, *, indent: int | None = 2) -> str:
    text = json.dumps(jsonable(document), indent=indent, ensure_ascii=False, allow_nan=False)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def emit_json(document: Any) -> None:
    """Print one JSON document on stdout."""
    sys.stdout.write(dumps(document) + "\n")
    sys.stdout.flush()


# --- Times Python cannot hold ---------------------------------------------------------

# DuckDB hands a DATE or TIMESTAMP outside Python's years 1..9999 over as its own
# text ("10000-01-01 00:00:00+00", "0001-01-01 (BC) 00:00:00"). Such a value is
# written in ISO 8601's expanded form instead: astronomical year numbering (1 BC is
# year 0000, 2 BC is -0001) and a sign before years beyond 9999 ("+10000-01-01T...").
_DUCKDB_TIME = re.compile(
    r"(?P<year>\d{4,})-(?P<month>\d\d)-(?P<day>\d\d)(?P<bc> \(BC\))?"
    r"(?: (?P<time>\d\d:\d\d:\d\d(?:\.\d+)?)"
    r"(?:(?P<offset_sign>[+-])(?P<offset_h>\d\d)(?::(?P<offset_m>\d\d))?(?::(?P<offset_s>\d\d))?)?"
    r")?"
)


def iso_time_text(text: str) -> str:
    """DuckDB's text of an out-of-range date or time as ISO 8601 expanded form; any
    other text unchanged."""
    match = _DUCKDB_TIME.fullmatch(text)
    if match is None:
        return text
    year = int(match["year"])
    if match["bc"]:
        year = 1 - year
    year_text = f"{year:04d}" if 0 <= year <= 9999 else f"{'+' if year > 0 else '-'}{abs(year):04d}"
    iso = f"{year_text}-{match['month']}-{match['day']}"
    if match["time"]:
        iso += f"T{match['time']}"
        if match["offset_sign"]:
            iso += f"{match['offset_sign']}{match['offset_h']}:{match['offset_m'] or '00'}"
            if match["offset_s"]:
                iso += f":{match['offset_s']}"
    return iso


# What of a DuckDB type holds dates or times: "time", a ("list", item), a ("struct",
# {field: type}), a ("map", key, value), or None where nothing does.
TimeShape = Any


@functools.lru_cache(maxsize=256)
def _time_shape(type_name: str) -> TimeShape:
    """Where dates and times sit in a value of DuckDB type ``type_name``."""
    type_name = type_name.strip()
    if type_name.endswith("]"):
        inner = _time_shape(type_name[: type_name.rindex("[")])
        return ("list", inner) if inner is not None else None
    if type_name.startswith(("DATE", "TIMESTAMP")):
        return "time"
    if type_name.startswith(("STRUCT(", "MAP(")) and type_name.endswith(")"):
        parts = _top_level_split(type_name[type_name.index("(") + 1 : -1])
        if type_name.startswith("MAP(") and len(parts) == 2:
            key, value = (_time_shape(part) for part in parts)
            return ("map", key, value) if key is not None or value is not None else None
        fields = {}
        for part in parts:
            name, field_type = _field(part.strip())
            fields[name] = _time_shape(field_type)
        return ("struct", fields) if any(v is not None for v in fields.values()) else None
    return None


def _field(text: str) -> tuple[str, str]:
    """A STRUCT field's name (unquoted) and type: ``"a b" DATE`` -> ("a b", "DATE")."""
    if not text.startswith('"'):
        name, _, field_type = text.partition(" ")
        return name, field_type
    end = 1
    while (end := text.index('"', end)) + 1 < len(text) and text[end + 1] == '"':
        end += 2  # a doubled quote inside the name
    return text[1:end].replace('""', '"'), text[end + 1 :]


def _top_level_split(text: str) -> list[str]:
    """``text`` split at the commas outside parentheses and double quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif not quoted and char in "([":
            depth += 1
        elif not quoted and char in ")]":
            depth -= 1
        elif not quoted and char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _with_iso_times(value: Any, shape: TimeShape) -> Any:
    """``value`` with DuckDB's text of out-of-range dates and times where ``shape``
    puts them replaced by ISO 8601 expanded form."""
    if shape is None or value is None:
        return value
    if shape == "time":
        return iso_time_text(value) if isinstance(value, str) else value
    if shape[0] == "list" and isinstance(value, list):
        return [_with_iso_times(item, shape[1]) for item in value]
    if shape[0] == "struct" and isinstance(value, dict):
        return {k: _with_iso_times(v, shape[1].get(k)) for k, v in value.items()}
    if shape[0] == "map" and isinstance(value, dict):
        return {
            _with_iso_times(k, shape[1]): _with_iso_times(v, shape[2]) for k, v in value.items()
        }
    return value


# --- Tables ---------------------------------------------------------------------------


# A JSON value nested deeper is shown as its text: decoding, converting and encoding
# it again each recurse once per level, and Python's recursion is limited.
MAX_JSON_DEPTH = 200


def _cell(value: Any, type_name: str) -> Any:
    if type_name == "JSON" and isinstance(value, str):
        try:
            decoded = json.loads(value)
        except (ValueError, RecursionError):
            return value
        # every level takes at least two characters: a short text cannot be too deep
        if len(value) > 2 * MAX_JSON_DEPTH and _deeper_than(decoded, MAX_JSON_DEPTH):
            return value
        return decoded
    if isinstance(value, str | list | dict) and type_name:
        return _with_iso_times(value, _time_shape(type_name))
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels in ``value`` (no recursion)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return False


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return dumps(value, indent=None)
    converted = jsonable(value)
    if isinstance(converted, str):
        return converted
    # what json.dumps writes for these, without its encoder's cost per cell
    if type(converted) is float:
        return float.__repr__(converted)
    if converted is True or converted is False:
        return "true" if converted else "false"
    return json.dumps(converted)


def _float_text(value: float) -> str:
    return float.__repr__(value) if value - value == 0 else "null"  # inf - inf, nan: not 0


# _text of the exact types most cells have, one dictionary lookup instead of the checks
_TEXT_OF_TYPE: dict[type, Any] = {
    str: str.__str__,
    float: _float_text,
    int: int.__repr__,
    bool: lambda value: "true" if value else "false",
    type(None): lambda _value: "",
}


def render_rows(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    fmt: Format,
    *,
    types: Sequence[str] | None = None,
    title: str | None = None,
) -> int:
    """Write rows to stdout in ``fmt``, streaming where the format allows. Returns the count."""
    decoded: Iterable[Sequence[Any]] = rows
    if types:
        type_names = list(types)
        decoded = ([_cell(value, type_names[i]) for i, value in enumerate(row)] for row in rows)
    if fmt is Format.table:
        return _render_table(columns, decoded, title)
    out = sys.stdout
    count = 0
    if fmt is Format.csv:
        # exact in a pipe or file; on a terminal, what would act on it is shown escaped
        terminal = flags.stdout_is_terminal()
        out.write(_csv_line([visible(c, keep="\n") if terminal else c for c in columns]))
        text_of = _TEXT_OF_TYPE.get
        batch: list[str] = []
        for row in decoded:
            fields = [text_of(type(value), _text)(value) for value in row]
            if terminal:
                fields = [visible(field, keep="\n") for field in fields]
            batch.append(_csv_line(fields))
            if len(batch) == CSV_BATCH:
                out.write("".join(batch))
                batch.clear()
            count += 1
        out.write("".join(batch))
    elif fmt is Format.ndjson:
        for row in decoded:
            out.write(dumps(dict(zip(columns, row, strict=True)), indent=None) + "\n")
            count += 1
    else:
        out.write("[")
        for row in decoded:
            if count:
                out.write(",\n ")
            out.write(dumps(dict(zip(columns, row, strict=True)), indent=None))
            count += 1
        out.write("]\n")
    out.flush()
    return count


_CSV_SPECIAL = re.compile('[,"\r\n]')
_CSV_QUOTE_OR_BREAK = re.compile('["\r\n]')


# CSV lines written to stdout at once: one write per line costs more than the line
CSV_BATCH = 256


def _csv_line(fields: Sequence[str]) -> str:
    """One RFC 4180 record ending in LF. Python's csv module leaves a lone CR unquoted
    when the line ends in LF, and a reader then splits the field in two."""
    line = ",".join(fields)
    if line and line.count(",") == len(fields) - 1 and not _CSV_QUOTE_OR_BREAK.search(line):
        return line + "\n"  # the common case: no field needs quotes
    quoted = [
        f'"{field.replace(chr(34), chr(34) * 2)}"' if _CSV_SPECIAL.search(field) else field
        for field in fields
    ]
    if quoted == [""]:
        quoted = ['""']  # a lone empty field, not an empty line
    return ",".join(quoted) + "\n"


GAPS = ("  ", " ")  # between columns: two spaces, one when a terminal is narrow
ELLIPSIS = "…"


def _render_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None) -> int:
    """Aligned columns, one line per row.

    On a terminal the table fits its width: long cells are cut with an ellipsis,
    headers never are (when even the headers do not fit side by side, each row is
    shown as a record of ``header value`` lines); ``--wide`` cuts nothing. In a pipe
    or file nothing is cut or folded. Every cell is shown through :func:`visible`,
    so data cannot act on the terminal.
    """
    from rich.cells import cell_len

    terminal = flags.stdout_is_terminal()
    headers = [visible(str(name)) for name in columns]
    body = [[(visible(_text(value)), _is_number(value)) for value in row] for row in rows]
    header_widths = [cell_len(h) for h in headers]
    natural = list(header_widths)
    for row in body:
        for i, (text, _) in enumerate(row):
            natural[i] = max(natural[i], cell_len(text))
    out = sys.stdout
    if title:
        out.write(visible(title) + "\n")
    rule = "─" if terminal and _can_encode("─") else "-"
    gap, widths = GAPS[0], natural
    if terminal and not flags.STATE.wide:
        width = shutil.get_terminal_size().columns
        layout = _layout(natural, header_widths, width)
        if layout is None:
            _render_records(headers, body, width, rule)
            return len(body)
        gap, widths = layout
    header_line = _line([(h, False) for h in headers], widths, gap)
    bold = terminal and colour_allowed()
    out.write(f"\x1b[1m{header_line}\x1b[0m\n" if bold else header_line + "\n")
    out.write(gap.join(rule * w for w in widths) + "\n")
    for row in body:
        out.write(_line(row, widths, gap) + "\n")
    out.flush()
    return len(body)


def _render_records(
    headers: Sequence[str], body: Sequence[Sequence[tuple[str, bool]]], width: int, rule: str
) -> None:
    """Each row as a block of ``header value`` lines, for tables too wide for the terminal."""
    from rich.cells import cell_len

    label = max((cell_len(h) for h in headers), default=0)
    value_width = max(width - label - 1, 2)
    out = sys.stdout
    for number, row in enumerate(body, 1):
        banner = f"{rule}[ {number} ]"
        out.write(banner + rule * max(width - cell_len(banner), 0) + "\n")
        for header, (text, _) in zip(headers, row, strict=True):
            out.write(f"{header}{' ' * (label - cell_len(header))} {_cut(text, value_width)}\n")
    out.flush()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | decimal.Decimal) and not isinstance(value, bool)


def _cut(text: str, width: int) -> str:
    from rich.cells import cell_len, set_cell_size

    if cell_len(text) <= width:
        return text
    return set_cell_size(text, max(width - 1, 0)) + ELLIPSIS


def _line(cells: Sequence[tuple[str, bool]], widths: Sequence[int], gap: str) -> str:
    """One row: each cell cut to its width and padded, numbers to the right; the last
    cell is not padded on the right, so no line ends in spaces it does not hold."""
    from rich.cells import cell_len

    parts = []
    last = len(cells) - 1
    for i, ((text, number), width) in enumerate(zip(cells, widths, strict=True)):
        text = _cut(text, width)
        padding = " " * (width - cell_len(text))
        if number:
            parts.append(padding + text)
        else:
            parts.append(text if i == last else text + padding)
    return gap.join(parts)


def _layout(
    natural: Sequence[int], headers: Sequence[int], width: int
) -> tuple[str, list[int]] | None:
    """The gap and column widths that fit ``width``, or None when the headers cannot."""
    for gap in GAPS:
        available = width - len(gap) * (len(natural) - 1)
        widths = _fit(natural, headers, available)
        if widths is not None:
            return gap, widths
    return None


# A column cut to fit keeps at least this many cells (or its header's width).
MIN_CUT_WIDTH = 16


def _fit(natural: Sequence[int], headers: Sequence[int], available: int) -> list[int] | None:
    """Column widths that fit ``available`` cells, or None when the headers alone do
    not. The narrowest columns stay whole while the others can still get
    ``MIN_CUT_WIDTH`` each; those share the rest equally, none narrower than its header."""
    floor = [min(n, max(h, 2)) for n, h in zip(natural, headers, strict=True)]
    if sum(natural) <= available:
        return list(natural)
    if sum(floor) > available:
        return None
    order = sorted(range(len(natural)), key=lambda i: natural[i])
    whole: list[int] = []
    for position, i in enumerate(order):
        rest = order[position + 1 :]
        needed = sum(max(floor[j], min(natural[j], MIN_CUT_WIDTH)) for j in rest)
        if sum(natural[j] for j in whole) + natural[i] + needed > available:
            break
        whole.append(i)
    widths = list(natural)
    cut = [i for i in order if i not in whole]
    shares = _share(
        [natural[i] for i in cut],
        [floor[i] for i in cut],
        available - sum(natural[i] for i in whole),
    )
    for i, width in zip(cut, shares, strict=True):
        widths[i] = width
    return widths


def _share(natural: Sequence[int], floor: Sequence[int], available: int) -> list[int]:
    """Water-filling: the largest cap with every column min(natural, max(cap, floor))
    fitting ``available``; what is left over goes one cell at a time."""

    def total(cap: int) -> int:
        return sum(min(n, max(cap, f)) for n, f in zip(natural, floor, strict=True))

    low, high = 0, max(natural, default=0)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if total(middle) <= available else (low, middle)
    widths = [min(n, max(low, f)) for n, f in zip(natural, floor, strict=True)]
    spare = available - sum(widths)
    for i, (width, size) in enumerate(zip(widths, natural, strict=True)):
        if spare > 0 and width < size:
            widths[i] += 1
            spare -= 1
    return widths


def _can_encode(text: str) -> bool:
    try:
        text.encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


# --- Consoles and messages ------------------------------------------------------------


def colour_allowed() -> bool:
    return not (flags.STATE.no_color or os.environ.get("NO_COLOR"))


def stderr_console(stream: IO[str] | None = None) -> Console:
    """A console for progress bars: no markup, emoji codes or highlighting, ever."""
    from rich.console import Console

    return Console(
        file=stream or sys.stderr,
        no_color=not colour_allowed(),
        markup=False,
        emoji=False,
        highlight=False,
        force_terminal=flags.stderr_is_terminal(),
    )


def _message(text: str) -> None:
    sys.stderr.write(visible(text) + "\n")


def say(message: str) -> None:
    """A message for people on stderr, silenced by ``-q``. One line: a newline or a
    control character in it (from a file name, say) is shown escaped."""
    if not flags.STATE.quiet:
        _message(message)


def detail(message: str) -> None:
    """A message shown only with ``-v``."""
    if flags.STATE.verbose and not flags.STATE.quiet:
        _message(message)


def warn(message: str) -> None:
    """A warning, shown even with ``-q``."""
    _message(f"nodus: warning: {message}")


def error_line(message: str) -> None:
    _message(f"nodus: error: {message}")
    sys.stderr.flush()


@contextlib.contextmanager
def child_stderr_quiet() -> Iterator[None]:
    """Processes started in the block (the JVM behind Spark) keep /dev/null as their
    stderr, unless ``-v``: "Using incubator modules" and log4j lines are noise to a
    nodus user. nodus's own stderr is back once the block ends."""
    if flags.STATE.verbose:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
