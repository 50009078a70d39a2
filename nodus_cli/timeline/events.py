"""One time-ordered list of what nodus knows: log lines, anomalies, changes, its journal.

Every event carries a reference a person can follow (a command to run, or a file and
line). Repeated log lines are one event per pattern and source (or, before patterns
were learned, per message and minute) with a count and the first and last time.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nodus_cli.errors import UsageError

KINDS = ("logs", "anomalies", "config", "keys", "audit", "journal", "patterns")
LEVELS = ("trace", "debug", "info", "warn", "error", "fatal")
# Kinds whose events are changes to the system: ranked first before an incident.
VERBS = {"rollback": "rolled back", "restore": "restored", "external": "changed outside nodus"}


@dataclass(frozen=True)
class Event:
    time: dt.datetime
    kind: str
    source: str
    summary: str
    ref: str
    count: int = 1
    last: dt.datetime | None = None  # the last occurrence, for grouped log lines
    level: str | None = None
    change: bool = False  # a change to the system (config, keys, a new pattern or source)

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "kind": self.kind,
            "source": self.source,
            "summary": self.summary,
            "ref": self.ref,
            "count": self.count,
            "last": self.last,
            "level": self.level,
            "change": self.change,
        }


@dataclass(frozen=True)
class Window:
    since: dt.datetime
    until: dt.datetime
    kinds: tuple[str, ...] = KINDS
    source: str | None = None
    min_level: str = "warn"
    as_of: dt.datetime | None = None

    def levels(self) -> list[str]:
        return list(LEVELS[LEVELS.index(self.min_level) :])


def parse_kinds(text: str | None) -> tuple[str, ...]:
    if not text:
        return KINDS
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise UsageError(f"--kinds: unknown {', '.join(unknown)} (one of {', '.join(KINDS)})")
    return kinds


def parse_level(text: str) -> str:
    level = text.strip().lower()
    aliases = {"warning": "warn", "err": "error", "critical": "fatal"}
    level = aliases.get(level, level)
    if level not in LEVELS:
        raise UsageError(f"--min-level {text!r}: one of {', '.join(LEVELS)}")
    return level


def collect(con: Any, window: Window, key_log: Path | None = None) -> list[Event]:
    """Every event of the window's kinds, in time order (ties: kind, then summary)."""
    events: list[Event] = []
    tables = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if "logs" in window.kinds:
        events += _logs(con, window, grouped_by_pattern="patterns" in tables)
        events += _new_sources(con, window)
    if "patterns" in window.kinds and "patterns" in tables:
        events += _new_patterns(con, window)
    if "anomalies" in window.kinds:
        events += _anomalies(con, window)
    if "config" in window.kinds:
        events += _config(con, window)
    if "audit" in window.kinds:
        events += _audit(con, window)
    if "journal" in window.kinds:
        events += _journal(con, window)
    if "keys" in window.kinds and key_log is not None:
        events += _keys(key_log, window)
    events.sort(key=lambda e: (e.time, e.kind, e.summary, e.source))
    return events


def _bounds(column: str, window: Window) -> tuple[str, list[Any]]:
    return f"{column} >= ? AND {column} <= ?", [window.since, window.until]


def _logs(con: Any, window: Window, *, grouped_by_pattern: bool) -> list[Event]:
    where, params = _bounds("l.time", window)
    where += f" AND l.level IN ({', '.join('?' for _ in window.levels())})"
    params += window.levels()
    if window.source is not None:
        where += " AND l.source = ?"
        params.append(window.source)
    if grouped_by_pattern:
        group_id = "coalesce(s.absorbed_by, s.id)"
        group = group_id
        join = (
            "LEFT JOIN patterns AS s ON s.id = l.pattern_id AND s.kind = 'shape' "
            f"LEFT JOIN patterns AS t ON t.id = {group_id} AND t.kind = 'template'"
        )
        label = "coalesce(any_value(t.template), min(l.message))"
    else:
        group_id = "NULL"
        group = "l.message, time_bucket(INTERVAL 1 minute, l.time)"
        join = ""
        label = "min(l.message)"
    rows = con.execute(
        f"""SELECT min(l.time), max(l.time), count(*), l.source, {label},
                   max(list_position(?, l.level)), arg_min(f.path, (l.time, l.line_no)),
                   arg_min(l.line_no, (l.time, l.line_no)), any_value({group_id})
            FROM logs AS l {join}
            LEFT JOIN ingest_files AS f ON f.file_id = l.file_id
            WHERE {where} GROUP BY {group}, l.source""",
        [list(LEVELS), *params],
    ).fetchall()
    events = []
    for first, last, count, source, text, level_index, path, line_no, group_id in rows:
        level = LEVELS[level_index - 1] if level_index else None
        ref = f"{path}:{line_no}" if path else f"nodus query (source {source})"
        if grouped_by_pattern and isinstance(group_id, int):
            ref += f"  (nodus patterns show {group_id:016x})"
        summary = (f"×{count} " if count > 1 else "") + _one_line(text)  # noqa: RUF001
        events.append(
            Event(
                first, "logs", source or "", summary, ref, count, last if count > 1 else None, level
            )
        )
    return events


def _new_sources(con: Any, window: Window) -> list[Event]:
    """A source whose first line falls in the window is a change."""
    where, params = _bounds("first", window)
    rows = con.execute(
        f"""SELECT source, first FROM (SELECT source, min(time) AS first FROM logs
            WHERE source IS NOT NULL GROUP BY source) WHERE {where}""",
        params,
    ).fetchall()
    return [
        Event(first, "source", source, f"new source {source}", "nodus sources", change=True)
        for source, first in rows
        if window.source in (None, source)
    ]


def _new_patterns(con: Any, window: Window) -> list[Event]:
    where, params = _bounds("first_seen", window)
    rows = con.execute(
        f"""SELECT id, first_seen, template, count, sources FROM patterns
            WHERE kind = 'template' AND absorbed_by IS NULL AND {where}""",
        params,
    ).fetchall()
    return [
        Event(
            first,
            "patterns",
            ", ".join(sources),
            f"new pattern: {_one_line(template)}",
            f"nodus patterns show {pid:016x}",
            count,
            change=True,
        )
        for pid, first, template, count, sources in rows
        if window.source in (None, *sources)
    ]


def _anomalies(con: Any, window: Window) -> list[Event]:
    where, params = _bounds("time", window)
    rows = con.execute(
        f"SELECT time, series, value, score, method, reason FROM anomalies WHERE {where}",
        params,
    ).fetchall()
    events = []
    for time, series, value, score, method, reason in rows:
        text = reason or f"value {value:g}"
        ref = f"nodus detect '{series}' --method {method} --since {time.isoformat()}"
        events.append(
            Event(
                time,
                "anomalies",
                series,
                f"{series}: {_one_line(text)}",
                ref,
                level="warn" if score < 0.99 else "error",
            )
        )
    return events


def _config(con: Any, window: Window) -> list[Event]:
    where, params = _bounds("time", window)
    rows = con.execute(
        f"""SELECT time, target, generation, source, status, diff FROM config_generations
            WHERE {where} AND source <> 'baseline'""",
        params,
    ).fetchall()
    events = []
    for time, target, generation, source, status, diff in rows:
        changes = len(json.loads(diff)) if isinstance(diff, str) else len(diff or [])
        verb = {
            "rollback": "rolled back",
            "restore": "restored",
            "external": "changed outside nodus",
        }.get(source, "applied")
        summary = f"{target}: generation {generation} {verb} ({changes} change(s), {status})"
        ref = f"nodus config show {target} --generation {generation}"
        events.append(Event(time, "config", target, summary, ref, change=True))
    return events


def _audit(con: Any, window: Window) -> list[Event]:
    where, params = _bounds("sealed_at", window)
    rows = con.execute(
        f"SELECT sealed_at, origin, size, bundle FROM audit_checkpoints WHERE {where}", params
    ).fetchall()
    return [
        Event(
            time,
            "audit",
            origin,
            f"audit checkpoint {origin}: {size} entries",
            f"nodus audit verify {bundle}" if bundle else "nodus audit chain",
        )
        for time, origin, size, bundle in rows
    ]


def _journal(con: Any, window: Window) -> list[Event]:
    where, params = _bounds("time", window)
    rows = con.execute(
        f"SELECT id, time, command, outcome FROM journal WHERE {where} ORDER BY id", params
    ).fetchall()
    return [
        Event(
            time,
            "journal",
            "nodus",
            f"nodus {command}: {outcome}",
            f"nodus journal --since {time.isoformat()}",
            level="error" if outcome == "error" else None,
        )
        for _, time, command, outcome in rows
    ]


def _keys(key_log: Path, window: Window) -> list[Event]:
    """Key events from the signed key log (generate, rotate, revoke, destroy, ...)."""
    from nodus_cli.keys.keylog import read_entries

    if not key_log.is_file():
        return []
    events = []
    for line in read_entries(key_log):
        try:
            entry = json.loads(line)
            time = dt.datetime.fromisoformat(entry["time"])
        except (ValueError, KeyError, TypeError):
            continue  # `nodus keys log --verify` reports a damaged log; a timeline skips it
        if not window.since <= time <= window.until:
            continue
        if window.as_of is not None and time > window.as_of:
            continue  # logged after the moment the store is read as of
        event, key = entry.get("event", "?"), entry.get("key", "?")
        events.append(
            Event(
                time,
                "keys",
                str(key),
                f"key {key} ({entry.get('purpose', '?')}): {event}",
                f"nodus keys show {key}",
                change=event in {"generate", "rotate", "revoke", "destroy", "import"},
            )
        )
    return events


def _one_line(text: str | None, width: int = 160) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
