"""Sniffing: which format a sample of lines is, and what its parser needs to know.

The sample is read in Python with the same regular expressions the parsers in
``formats`` run in DuckDB, so the choice made here is the parse made there.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from nodus_cli.errors import InputError, UsageError
from nodus_cli.ingest.formats import (
    ACCESS,
    LAYOUTS,
    LOGFMT_PAIR,
    METRIC_FORMATS,
    PROM_SAMPLE,
    ROLES,
    SHAPED,
    SYSLOG_3164,
    SYSLOG_5424,
    CsvLayout,
    Layout,
    sql_str,
)


def choose_keys(objects: list[dict[str, object]]) -> dict[str, str]:
    """For each role, the first well-known key that the sample objects use."""
    seen = {key for obj in objects for key in obj}
    chosen: dict[str, str] = {}
    for role, candidates in ROLES.items():
        for key in candidates:
            if key in seen:
                chosen[role] = key
                break
    return chosen


@dataclass
class Detected:
    """The chosen format and what its parser needs to know."""

    format: str
    layout: Layout | None = None
    csv: CsvLayout | None = None
    keys: dict[str, str] = field(default_factory=dict)  # jsonl/logfmt: role -> key

    @property
    def is_metrics(self) -> bool:
        return self.format in METRIC_FORMATS

    @property
    def multiline(self) -> bool:
        return self.format in ("text", "syslog")

    @property
    def shaped(self) -> bool:
        """Its parser cuts each row's shape from ``line_shape`` (``formats.SHAPED``)."""
        return self.format in SHAPED

    def record_start(self) -> re.Pattern[str] | None:
        """Lines matching this start a record; others continue the one above."""
        if self.format == "text" and self.layout is not None:
            return re.compile(self.layout.start)
        if self.format == "syslog":
            return re.compile(r"^\S")
        return None

    def start_sql(self) -> str:
        if self.format == "text" and self.layout is not None:
            return f"regexp_matches(line, {sql_str(self.layout.start)})"
        return "regexp_matches(line, '^\\S')"


_JSON_START = re.compile(r"^\s*\{")
_LOGFMT_LINE = re.compile(r"^\s*(?:" + LOGFMT_PAIR + r"\s*){2,}$")
_TIME_NAMES = ("time", "timestamp", "ts", "date", "datetime", "@timestamp", "_time", "t")


def _json_object(line: str) -> dict[str, object] | None:
    """The JSON object a sample line holds, or None.

    An object nested deeper than Python's parser recurses counts as an object
    without keys: DuckDB, which parses the lines for real, has no such limit.
    """
    if not _JSON_START.match(line):
        return None
    try:
        value = json.loads(line)
    except RecursionError:
        return {} if line.rstrip().endswith("}") else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _is_json_object(line: str) -> bool:
    return _json_object(line) is not None


def _looks_like_time(value: str) -> bool:
    value = value.strip()
    if re.fullmatch(r"\d{9,10}(\.\d+)?|\d{12,13}", value):
        return True
    if not re.match(r"\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d|$)", value):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00").replace(",", "."))
    except ValueError:
        return False
    return True


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _mostly_numbers(cells: Iterable[str]) -> bool:
    """A value column: most of its non-empty sample cells are numbers."""
    filled = [cell for cell in cells if cell.strip()]
    return bool(filled) and sum(map(_is_number, filled)) * 2 > len(filled)


def _csv_tables(lines: list[str]) -> Iterator[tuple[str, list[str], list[list[str]]]]:
    """(delimiter, header, rows) for each delimiter that makes ``lines`` a table of names."""
    if len(lines) < 2:
        return
    for delimiter in (",", ";", "\t", "|"):
        try:
            rows = list(csv.reader(io.StringIO("\n".join(lines[:200])), delimiter=delimiter))
        except csv.Error:
            return
        rows = [row for row in rows if row]
        header = [name.strip() for name in rows[0]]
        if len(header) < 2 or any(len(row) != len(header) for row in rows[1:]):
            continue
        if all(re.fullmatch(r"[A-Za-z_@][\w .@/\-]*", name) for name in header):
            yield delimiter, header, rows[1:]


def sniff_csv(lines: list[str], time_column: str | None = None) -> CsvLayout | None:
    """A header of names, a time column and at least one numeric column, or None."""
    for delimiter, header, data in _csv_tables(lines):
        if time_column is not None:
            if time_column not in header:
                raise UsageError(f"--time-column {time_column!r} is not a column of the CSV")
            time_index = header.index(time_column)
        else:
            named = [i for i, name in enumerate(header) if name.lower() in _TIME_NAMES]
            timed = [i for i in range(len(header)) if all(_looks_like_time(r[i]) for r in data)]
            candidates = [i for i in named if i in timed] or timed
            if not candidates:
                continue
            time_index = candidates[0]
        values = tuple(
            i for i in range(len(header)) if i != time_index and _mostly_numbers(r[i] for r in data)
        )
        if not values:
            continue
        labels = tuple(i for i in range(len(header)) if i != time_index and i not in values)
        return CsvLayout(delimiter, tuple(header), time_index, values, labels)
    return None


def _best_layout(lines: list[str]) -> tuple[Layout | None, int]:
    best: tuple[Layout | None, int] = (None, 0)
    for layout in LAYOUTS:
        pattern = re.compile(layout.start)
        hits = sum(1 for line in lines if pattern.match(line))
        if hits > best[1]:
            best = (layout, hits)
    return best


def detect(
    sample: str, requested: str = "auto", *, time_column: str | None = None, cut: bool = False
) -> Detected:
    """Choose the format from the first lines (``requested`` forces it).

    ``cut``: the sample stops inside the file, so its last line may be cut short;
    it is left out unless it is the only line (one line longer than the sample),
    which is then judged by how it starts.
    """
    lines = [line.rstrip("\r") for line in sample.split("\n")]
    partial = lines.pop() if cut and len(lines) > 1 else None
    lines = [line for line in lines if line.strip()][:200]
    if cut and partial is None and lines and requested == "auto" and _JSON_START.match(lines[0]):
        return Detected("jsonl")  # one line longer than the sample, starting like JSON
    detected = _choose(lines, requested, time_column)
    if detected.format == "jsonl":
        objects = [_json_object(line) for line in lines]
        detected.keys = choose_keys([obj for obj in objects if obj is not None])
    elif detected.format == "logfmt":
        pairs = re.compile(LOGFMT_PAIR)
        detected.keys = choose_keys([dict(pairs.findall(line)) for line in lines])
    return detected


def _choose(lines: list[str], requested: str, time_column: str | None) -> Detected:
    if requested not in ("auto", "text", "csv"):
        return Detected(requested)
    if requested == "text":
        layout, _ = _best_layout(lines)
        if layout is None:
            raise InputError("no line starts with a timestamp layout nodus knows")
        return Detected("text", layout=layout)
    if requested == "csv":
        layout_csv = sniff_csv(lines, time_column)
        if layout_csv is None:
            raise InputError("not a CSV with a header, a time column and a numeric column")
        return Detected("csv", csv=layout_csv)
    return _auto(lines, time_column)


def _auto(lines: list[str], time_column: str | None) -> Detected:
    if not lines:
        raise InputError("empty input: nothing to detect the format from")
    total = len(lines)
    scores: list[tuple[int, Detected]] = []

    def consider(hits: int, detected: Detected) -> Detected | None:
        if hits * 10 >= total * 6:
            return detected
        scores.append((hits, detected))
        return None

    checks = [
        (sum(map(_is_json_object, lines)), lambda: Detected("jsonl")),
    ]
    for hits, make in checks:
        chosen = consider(hits, make())
        if chosen:
            return chosen
    samples = [line for line in lines if not line.lstrip().startswith("#")]
    prom = re.compile(PROM_SAMPLE)
    matches = [_prometheus_sample(line, prom) for line in samples]
    # "name 12" alone could be any text; a # HELP/TYPE line or a label set says exposition
    labelled = any(match and match.group(2) for match in matches)
    if samples and all(matches) and (labelled or any(line.startswith("#") for line in lines)):
        openmetrics = any(line.strip() == "# EOF" for line in lines)
        return Detected("openmetrics" if openmetrics else "prometheus")
    layout_csv = sniff_csv(lines, time_column)
    if layout_csv is not None:
        return Detected("csv", csv=layout_csv)
    s5, s3 = re.compile(SYSLOG_5424), re.compile(SYSLOG_3164)
    pri = re.compile(r"^<[\d\s]{1,5}>")  # malformed syslog is still syslog, quarantined
    syslog_hits = sum(1 for line in lines if s5.match(line) or s3.match(line) or pri.match(line))
    chosen = consider(syslog_hits, Detected("syslog"))
    if chosen:
        return chosen
    access = re.compile(ACCESS)
    access_matches = [access.match(line) for line in lines]
    access_hits = sum(1 for m in access_matches if m)
    combined = any(m and m.group(8) is not None for m in access_matches)
    chosen = consider(access_hits, Detected("combined" if combined else "clf"))
    if chosen:
        return chosen
    chosen = consider(sum(1 for line in lines if _LOGFMT_LINE.match(line)), Detected("logfmt"))
    if chosen:
        return chosen
    layout, hits = _best_layout(lines)
    if layout is not None:
        scores.append((hits, Detected("text", layout=layout)))
    scores = [score for score in scores if score[0] > 0]
    if not scores and any(_csv_tables(lines)):
        raise InputError(
            "a CSV table, but nodus reads CSV as metrics: it needs a time column and a "
            "numeric column (--time-column NAME names the time)"
        )
    if not scores:
        raise InputError("cannot detect the format (use --format)")
    return max(scores, key=lambda score: score[0])[1]


def _prometheus_sample(line: str, prom: re.Pattern[str]) -> re.Match[str] | None:
    """The line's match as an exposition sample with a numeric value, else None."""
    match = prom.match(line)
    if match is None:
        return None
    value = match.group(3)
    return match if _is_number(value) or value in ("NaN", "+Inf", "-Inf", "Inf") else None
