"""The formats nodus ingests and the SQL that parses each (``sniff`` tells which it is).

Every parser is a DuckDB ``SELECT`` over the relation ``raw(line, line_json,
line_no, byte_offset)`` (one row per line of a window; ``line_json`` is the line
typed JSON but not validated) and yields ``ok`` (a good record),
``record`` (not blank), ``line_no``, ``byte_offset`` and the table's columns.
Multi-line formats (text, syslog) parse ``records(line_no, byte_offset, line,
joined)`` instead, whose rows are already numbered groups of lines. For the
formats in ``SHAPED`` both also hold ``line_shape`` (the line with its digits 0).
The regular expressions are written in the subset shared by RE2 (DuckDB) and
Python's ``re`` (used on a small sample to sniff the format and to cut windows at
record boundaries), so both sides agree on what a record is.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

LOG_FORMATS = ("jsonl", "logfmt", "syslog", "clf", "combined", "text")
METRIC_FORMATS = ("csv", "prometheus", "openmetrics")
# Formats whose parsers read ``line_shape`` (the line with every digit 0, see
# ``lines.WindowLines``) and give ``shape_text``, each row's message masked, cut from it.
# Worth the copy of the window only where messages are long: for an access log's short
# request the bench measured no CPU gained, and 125 MB more peak memory.
SHAPED = ("syslog",)
FORMATS = ("auto", *LOG_FORMATS, *METRIC_FORMATS)


def sql_str(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


# --- shared SQL macros ---------------------------------------------------------------

# Every spelling of a level nodus understands, by level (each spelling once).
LEVEL_SPELLINGS = {
    "info": (
        "info",
        "information",
        "informational",
        "inf",
        "i",
        "notice",
        "config",
        "30",
        "6",
        "5",
    ),
    "error": ("error", "err", "e", "severe", "failure", "50", "3"),
    "warn": ("warn", "warning", "w", "40", "4"),
    "debug": ("debug", "dbg", "d", "fine", "20", "7"),
    "trace": ("trace", "trc", "v", "verbose", "finest", "finer", "10"),
    "fatal": (
        "fatal",
        "critical",
        "crit",
        "alert",
        "emerg",
        "emergency",
        "panic",
        "f",
        "a",
        "60",
        "2",
        "1",
        "0",
    ),
}
# A value already spelled the normal way skips the lookup (four times cheaper). The
# lookup is a MAP, not a CASE with a branch per spelling: such a CASE repeated its
# lower(trim(x)) per branch, cost about 5 ms to plan each time a statement used it and
# ran ten times slower.
LEVEL_MACRO = (
    "CREATE OR REPLACE TEMP MACRO nodus_level(x) AS (CASE "
    f"WHEN CAST(x AS VARCHAR) IN ({', '.join(sql_str(level) for level in LEVEL_SPELLINGS)}) "
    "THEN CAST(x AS VARCHAR) ELSE MAP {"
    + ", ".join(
        f"{sql_str(spelling)}: {sql_str(level)}"
        for level, spellings in LEVEL_SPELLINGS.items()
        for spelling in spellings
    )
    + "}[lower(trim(CAST(x AS VARCHAR)))] END)"
)
# A line holding more than blanks. CASE evaluates the slow trim only for lines that
# start or end with a blank (an OR in a projection would evaluate it for all).
FILLED_MACRO = """CREATE OR REPLACE TEMP MACRO nodus_filled(line) AS (CASE
  WHEN line = '' THEN false
  WHEN NOT (starts_with(line, ' ') OR starts_with(line, chr(9)) OR ends_with(line, ' ')
            OR ends_with(line, chr(9))) THEN true
  ELSE trim(line, ' ' || chr(9)) <> '' END)"""

# A time with an offset is read by DuckDB's cast, which takes any two-digit hour
# (+25:00): an offset beyond the real ones (-12:00 .. +14:00, minutes below 60) makes
# the time unreadable instead. Times ending in Z skip the check.
BAD_OFFSET = r":\d\d(?:[.,]\d+)?\s*[+-](?:1[5-9]|[2-9]\d|\d\d:?[6-9]\d)(?::?\d\d)?$"
TSTZ_MACRO = f"""CREATE OR REPLACE TEMP MACRO nodus_tstz(x) AS (CASE
  WHEN ends_with(x, 'Z') OR NOT regexp_matches(x, {sql_str(BAD_OFFSET)})
  THEN try_cast(x AS TIMESTAMPTZ) END)"""

# A time written as text: ISO 8601 (naive means the session time zone, i.e. --tz),
# or epoch seconds / milliseconds / microseconds / nanoseconds.
TIME_MACRO = r"""CREATE OR REPLACE TEMP MACRO nodus_time(x) AS (
  CASE
    WHEN x IS NULL OR x = '' THEN NULL
    WHEN regexp_full_match(x, '\d{9,10}(\.\d+)?') THEN to_timestamp(CAST(x AS DOUBLE))
    WHEN regexp_full_match(x, '\d{12,13}') THEN make_timestamptz(CAST(x AS BIGINT) * 1000)
    WHEN regexp_full_match(x, '\d{15,16}') THEN make_timestamptz(CAST(x AS BIGINT))
    WHEN regexp_full_match(x, '\d{18,19}') THEN make_timestamptz(CAST(x AS BIGINT) // 1000)
    ELSE nodus_tstz(replace(x, ',', '.')) END)"""

MACROS = (LEVEL_MACRO, TSTZ_MACRO, TIME_MACRO, FILLED_MACRO)


def year_fix(expr: str, mtime_sql: str) -> str:
    """A year-less time got the file's year: step back a year when it lands in the future."""
    return (
        f"(CASE WHEN {expr} > {mtime_sql} + INTERVAL 1 DAY "
        f"THEN {expr} - INTERVAL 1 YEAR ELSE {expr} END)"
    )


# --- JSON lines and logfmt -----------------------------------------------------------

TIME_KEYS = ("ts", "time", "timestamp", "@timestamp", "datetime", "date", "t", "eventTime")
LEVEL_KEYS = ("level", "severity", "lvl", "loglevel", "levelname", "log.level", "severity_text")
MESSAGE_KEYS = ("msg", "message", "@message", "text", "log", "event")
HOST_KEYS = ("host", "hostname", "host.name")
APP_KEYS = ("service", "app", "application", "service.name", "logger", "component")
PID_KEYS = ("pid", "process_id", "process.pid")
ROLES = {
    "time": TIME_KEYS,
    "level": LEVEL_KEYS,
    "message": MESSAGE_KEYS,
    "host": HOST_KEYS,
    "app": APP_KEYS,
    "pid": PID_KEYS,
}


def _json_parse(obj: str, keys: dict[str, str], reason: str) -> str:
    """Columns from a JSON object text ``obj``: one parse extracts every chosen key.

    ``obj`` may be typed JSON without having been validated (``line_json``), and
    DuckDB may evaluate a CASE branch on rows the condition rejects: the key
    removal only ever sees an object that parsed (``ok``) or ``{}``. A key moves
    from ``attrs`` to its column only when its value could be read: a time, level
    or pid nodus cannot read (``2026-02-30``, ``1e40``) stays in ``attrs`` as written.
    """
    roles = list(keys)
    paths = ", ".join(sql_str(f'$."{keys[role]}"') for role in roles) or sql_str("$.__none")

    def pick(role: str) -> str:
        return f"v[{roles.index(role) + 1}]" if role in keys else "NULL"

    typed = ("time", "level", "pid")  # columns that must read their value; the same names
    checked = [role for role in typed if role in keys]
    drop = json.dumps(dict.fromkeys(keys.values()), separators=(",", ":"))
    parsed = "CASE WHEN ok THEN obj ELSE JSON '{}' END"
    patch = sql_str(drop)
    if checked:
        read = " AND ".join(f"({pick(role)} IS NULL OR {role} IS NOT NULL)" for role in checked)
        removals = [
            sql_str(json.dumps(key) + ":null") for role, key in keys.items() if role not in typed
        ]
        removals += [
            f"CASE WHEN {role} IS NOT NULL THEN {sql_str(json.dumps(keys[role]) + ':null')} END"
            for role in checked
        ]
        some = f"'{{' || concat_ws(',', {', '.join(removals)}) || '}}'"
        patch = f"CASE WHEN {read} THEN {patch} ELSE {some} END"
    attrs = f"json_merge_patch({parsed}, {patch})" if keys else "obj"
    return f"""SELECT ok, CASE WHEN ok THEN NULL ELSE {sql_str(reason)} END AS reason,
        time, level, {pick("host")} AS host, {pick("app")} AS app, pid,
        {pick("message")} AS message,
        CASE WHEN ok THEN CAST({attrs} AS JSON) END AS attrs,
        line_no, byte_offset, record, CASE WHEN ok THEN NULL ELSE line END AS raw
      FROM (SELECT *,
              CASE WHEN ok THEN coalesce(nodus_tstz(tv), nodus_time(tv)) END AS time,
              nodus_level({pick("level")}) AS level, try_cast({pick("pid")} AS BIGINT) AS pid
      FROM (SELECT *, {pick("time")} AS tv,
                   CASE WHEN NOT record OR v IS NULL THEN false
                        WHEN starts_with(obj, '{{') THEN true
                        ELSE starts_with(ltrim(obj), '{{') END AS ok
            FROM (SELECT *, try(json_extract_string(obj, [{paths}])) AS v
                  FROM ({obj}) AS src) AS extracted) AS picked) AS typed"""


def jsonl_sql(keys: dict[str, str]) -> str:
    return _json_parse(
        "SELECT *, line_json AS obj, nodus_filled(line) AS record FROM raw",
        keys,
        "not a JSON object",
    )


LOGFMT_PAIR = r'([A-Za-z_@][A-Za-z0-9_.@/\-]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)'
# A line of nothing but pairs one space apart, without a backslash, whose bare values
# hold no '=' and nothing JSON escapes (a control character). Its JSON text is made by
# plain replacements outside the quotes (= to ":", a space to ","): the text the pairs
# give, without capture groups, a list of pairs and a JSON value per pair.
_PLAIN_PAIR = r'[A-Za-z_@][A-Za-z0-9_.@/\-]*=(?:"[^"\\]*"|[^\s"\\=\x00-\x1f]*)'
PLAIN_LOGFMT = f"{_PLAIN_PAIR}(?: {_PLAIN_PAIR})*"


def logfmt_sql(keys: dict[str, str]) -> str:
    """The JSON lines parser over each line's pairs as a JSON object text.

    A plain line (``PLAIN_LOGFMT``) is turned into that text by replacements; any
    other takes each pair's key and value from one pass of the pattern. A quoted
    value is taken as written, as JSON text: one JSON cannot read leaves the line to
    quarantine.
    """
    pair = sql_str(LOGFMT_PAIR)
    # text either way: a quoted value typed JSON would be cast, and fail the whole window
    value = (
        "CASE WHEN starts_with(p.value, '\"') THEN p.value "
        "ELSE CAST(to_json(p.value) AS VARCHAR) END"
    )
    build = (
        f"'{{' || array_to_string(list_transform(pairs, lambda p: to_json(p.key) || ':' || "
        f"{value}), ',') || '}}'"
    )
    # split at the quotes: outside them at odd places, a quoted value at even ones. Made
    # for every line below the CASE that picks it: made in the CASE, for the plain lines
    # only, it cost a fifth more CPU for the whole parse.
    replaced = """'{"' || array_to_string(list_transform(string_split(line, '"'),
          lambda piece, i: CASE WHEN i % 2 = 1 THEN replace(replace(piece, '=', '":"'),
          ' ', '","') ELSE piece END), '') || '"}'"""
    inner = f"""SELECT line_no, byte_offset, record, line,
          CASE WHEN plain THEN replaced WHEN len(pairs) > 0 THEN {build} ELSE line END AS obj
        FROM (SELECT *, CASE WHEN NOT plain THEN
                regexp_extract_all(line, {pair}, ['key', 'value']) END AS pairs
              FROM (SELECT *, nodus_filled(line) AS record,
                      regexp_full_match(line, {sql_str(PLAIN_LOGFMT)}) AS plain,
                      {replaced} AS replaced FROM raw))"""
    return _json_parse(inner, keys, "no key=value pairs")


# --- syslog --------------------------------------------------------------------------

SYSLOG_5424 = (
    r"(?s)^(?:<(\d{1,3})>)?(\d{1,2}) (\S+) (\S+) (\S+) (\S+) (\S+) "
    r'(-|(?:\[(?:[^\]"]|"(?:[^"\\]|\\.)*")*\])+)(?: (.*))?$'
)
SYSLOG_3164 = (
    r"(?s)^(?:<(\d{1,3})>)?(\d{4}-\d\d-\d\dT\S+|[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d) "
    r"(\S+) (?:([^\s\[\]:]+)(?:\[(\d+)\])?: ?)?(.*)$"
)


# Most BSD syslog lines start ``Mmm dd hh:mm:ss host app[pid]: `` (no priority, the
# time 15 characters wide): they match this too, and their fields are cut at fixed
# places and at the first space, bracket and colon, several times cheaper than the
# capture groups of SYSLOG_3164 (which give the same fields). Such a line is tested
# first and against nothing else: it matches SYSLOG_3164 and, starting with a letter,
# never SYSLOG_5424.
PLAIN_3164 = (
    r"^[A-Z][a-z]{2} [ 0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9] [^\s]+ [^\s\[\]:]+\[[0-9]+\]: "
)


def syslog_sql(mtime_sql: str) -> str:
    f5 = "['pri','version','ts','host','app','procid','msgid','sd','msg']"
    f3 = "['pri','ts','host','app','pid','msg']"
    year = f"CAST(year({mtime_sql}) AS VARCHAR)"
    # the day may be padded with spaces (Nov  8): one space, as %d reads it
    day = (
        "CASE WHEN contains(s3.ts, '  ') THEN regexp_replace(s3.ts, ' +', ' ', 'g') ELSE s3.ts END"
    )
    bsd = f"try_strptime({year} || ' ' || {day}, '%Y %b %d %H:%M:%S')"
    # a plain line: 'Mmm dd hh:mm:ss ' (16 characters), then host, ' ', app[pid]: msg.
    # substr, not a slice (x[a:b]): it points into the line where a slice copies, and
    # cost a fifth as much.
    plain = """{'pri': '', 'ts': substr(line, 1, 15),
        'host': substr(rest, 1, strpos(rest, ' ') - 1),
        'app': substr(tail, 1, strpos(tail, '[') - 1),
        'pid': substr(tail, strpos(tail, '[') + 1, strpos(tail, ']') - strpos(tail, '[') - 1),
        'msg': substr(tail, strpos(tail, ']') + 3)}"""
    tail = "substr(rest, strpos(rest, ' ') + 1)"
    # bsd_time is read a level below: year_fix inside this CASE would read it twice
    t3 = f"""CASE WHEN s3.ts LIKE '____-__-__T%' THEN nodus_tstz(s3.ts)
            ELSE {year_fix("bsd_time", mtime_sql)} END"""
    severity = "CAST(try_cast({0} AS INTEGER) % 8 AS VARCHAR)"
    # the message ends its line: its shape is the masked line from where the message starts
    message = "CASE WHEN is5 THEN ltrim(s5.msg, chr(65279)) WHEN is3 THEN s3.msg END"
    return _keep_unread_time(f"""SELECT ok, CASE WHEN ok THEN NULL
            WHEN joined THEN 'not a syslog line'
            ELSE 'continuation lines without a record to join' END AS reason,
        CASE WHEN is5 THEN (CASE WHEN s5.ts = '-' THEN NULL ELSE nodus_tstz(s5.ts) END)
             WHEN is3 THEN {t3} END AS time,
        CASE WHEN is5 AND s5.pri <> '' THEN nodus_level({severity.format("s5.pri")})
             WHEN is3 AND s3.pri <> '' THEN nodus_level({severity.format("s3.pri")}) END AS level,
        CASE WHEN is5 THEN nullif(s5.host, '-') WHEN is3 THEN s3.host END AS host,
        CASE WHEN is5 THEN nullif(s5.app, '-') WHEN is3 THEN nullif(s3.app, '') END AS app,
        CASE WHEN is5 THEN try_cast(s5.procid AS BIGINT) WHEN is3 THEN try_cast(s3.pid AS BIGINT)
             END AS pid,
        {message} AS message,
        substr(line_shape, length(line) + 1 - length({message})) AS shape_text,
        CASE WHEN is5 THEN CAST(json_object(
                 'facility', CASE WHEN s5.pri <> '' THEN CAST(s5.pri AS INTEGER) // 8 END,
                 'version', CAST(s5.version AS INTEGER),
                 'procid', CASE WHEN try_cast(s5.procid AS BIGINT) IS NULL
                                 THEN nullif(s5.procid, '-') END,
                 'msgid', nullif(s5.msgid, '-'),
                 'structured_data', nullif(s5.sd, '-')) AS JSON)
             WHEN is3 AND s3.pri <> '' THEN CAST(json_object(
                 'facility', CAST(s3.pri AS INTEGER) // 8) AS JSON)
             END AS attrs,
        line_no, byte_offset, TRUE AS record, CASE WHEN ok THEN NULL ELSE line END AS raw,
        CASE WHEN is5 THEN nullif(s5.ts, '-') WHEN is3 THEN s3.ts END AS written_time
      FROM (SELECT *, CAST({bsd} AS TIMESTAMPTZ) AS bsd_time
      FROM (SELECT *, joined AND (is5 OR is3) AS ok,
                   CASE WHEN is5 THEN regexp_extract(line, {sql_str(SYSLOG_5424)}, {f5}) END AS s5,
                   CASE WHEN is3 AND plain THEN {plain}
                        WHEN is3 THEN regexp_extract(line, {sql_str(SYSLOG_3164)}, {f3}) END AS s3
            FROM (SELECT *, {tail} AS tail FROM (SELECT *, substr(line, 17) AS rest,
                    CASE WHEN plain THEN true WHEN is5 THEN false
                         ELSE regexp_matches(line, {sql_str(SYSLOG_3164)}) END AS is3
                  FROM (SELECT *, CASE WHEN plain THEN false
                          ELSE regexp_matches(line, {sql_str(SYSLOG_5424)}) END AS is5
                        FROM (SELECT *, regexp_matches(line, {sql_str(PLAIN_3164)}) AS plain
                              FROM records) AS cheap) AS five) AS cut) AS matched) AS extracted)
      AS timed""")


# --- access logs ---------------------------------------------------------------------

_QUOTED = r'"((?:[^"\\]|\\.)*)"'
ACCESS = (
    r"^(\S+) (\S+) (\S+) \[([^\]]+)\] " + _QUOTED + r" (\d{3}|-) (\d+|-)"
    r"(?: " + _QUOTED + " " + _QUOTED + r")?\s*$"
)
ACCESS_FIELDS = ("client", "ident", "user", "ts", "request", "status", "bytes", "referer", "agent")


# Most access log lines hold no backslash escape and no bracket or quote inside their
# first fields: they match this too, and are cut at their quotes and spaces by string
# functions, several times cheaper than the capture groups of ACCESS (which give the
# same fields). The others are parsed by ACCESS.
PLAIN_ACCESS = (
    r'^[^\s"\\\[\]]+ [^\s"\\\[\]]+ [^\s"\\\[\]]+ \[[^\]"\\]+\] "[^"\\]*" (?:\d{3}|-) (?:\d+|-)'
    r'(?: "[^"\\]*" "[^"\\]*")? *$'
)
# A request of method, path and protocol (or no protocol): split at its spaces.
PLAIN_REQUEST = r"\S+ \S+(?: \S+)?"


def access_sql() -> str:
    names = "[" + ", ".join(sql_str(f) for f in ACCESS_FIELDS) + "]"
    # quoted: [first fields and time, request, status and bytes, referer, ' ', agent, rest]
    plain = """{'client': head[1], 'ident': head[2], 'user': head[3],
          'ts': substr(quoted[1], strpos(quoted[1], '[') + 1,
                       strpos(quoted[1], ']') - strpos(quoted[1], '[') - 1),
          'request': quoted[2], 'status': codes[1], 'bytes': codes[2],
          'referer': coalesce(quoted[4], ''), 'agent': coalesce(quoted[6], '')}"""
    groups = f"regexp_extract(line, {sql_str(ACCESS)}, {names})"
    fields = f"CASE WHEN plain THEN {plain} ELSE {groups} END"
    request = f"""CASE WHEN regexp_full_match(a.request, {sql_str(PLAIN_REQUEST)})
          THEN string_split(a.request, ' ') ELSE [] END"""
    return f"""SELECT ok, CASE WHEN ok THEN NULL ELSE 'not an access log line' END AS reason,
        try_strptime(a.ts, '%d/%b/%Y:%H:%M:%S %z') AS time,
        CASE WHEN NOT ok THEN NULL WHEN a.status LIKE '5%' THEN 'error'
             WHEN a.status LIKE '4%' THEN 'warn' ELSE 'info' END AS level,
        NULL AS host, NULL AS app, NULL::BIGINT AS pid, a.request AS message,
        CASE WHEN ok THEN CAST(json_object(
            'client', a.client, 'ident', nullif(a.ident, '-'), 'user', nullif(a.user, '-'),
            'method', r[1], 'path', r[2], 'protocol', r[3],
            'status', try_cast(a.status AS INTEGER),
            'bytes', try_cast(a.bytes AS BIGINT), 'referer', nullif(nullif(a.referer, ''), '-'),
            'user_agent', nullif(nullif(a.agent, ''), '-')) AS JSON) END AS attrs,
        line_no, byte_offset, record, CASE WHEN ok THEN NULL ELSE line END AS raw
      FROM (SELECT *, {request} AS r FROM (
              SELECT *, record AND a.client <> '' AS ok FROM (
                SELECT *, {fields} AS a
                FROM (SELECT *, string_split(quoted[1], ' ') AS head,
                        string_split(trim(quoted[3]), ' ') AS codes
                      FROM (SELECT *, regexp_matches(line, {sql_str(PLAIN_ACCESS)}) AS plain,
                              string_split(line, '"') AS quoted
                            FROM (SELECT *, nodus_filled(line) AS record FROM raw) AS r) AS q)
                      AS p) AS m) AS k) AS extracted"""


# --- plain text with a leading timestamp ----------------------------------------------

_UPPER_LEVELS = (
    "TRACE|DEBUG|INFO|NOTICE|WARNING|WARN|ERROR|FATAL|CRITICAL|SEVERE|FAILURE|"
    "Trace|Debug|Info|Notice|Warning|Warn|Error|Fatal|Critical"
)
_BRACKET_LEVELS = "trace|debug|info|notice|warning|warn|error|crit|fatal|emerg|alert"


def _level_regex(tokens: int) -> str:
    return (
        rf"^[^A-Za-z\[]*(?:\S+\s+){{0,{tokens}}}?(?:\[({_BRACKET_LEVELS})\]|({_UPPER_LEVELS}))"
        r"(?:[^A-Za-z0-9_]|$)"
    )


@dataclass(frozen=True)
class Layout:
    """A leading-timestamp layout: regex (group 1 = the time text) and how to parse it."""

    name: str
    start: str
    time_sql: str  # SQL over ``t`` (the captured text); ``{year}`` = the file's year
    yearless: bool = False
    level: str | None = None  # regex over the rest of the line, group 1 (or 2) = level

    def level_sql(self) -> str:
        if self.level is None:
            return "NULL"
        pattern = sql_str(self.level)
        return (
            f"nodus_level(coalesce(nullif(regexp_extract(rest, {pattern}, 1), ''), "
            f"nullif(regexp_extract(rest, {pattern}, 2), '')))"
        )


_ISO = r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"
LAYOUTS = (
    Layout("iso", rf"^({_ISO})", "nodus_time(t)", level=_level_regex(3)),
    Layout("bracket-iso", rf"^\[({_ISO})\]", "nodus_time(t)", level=_level_regex(3)),
    Layout(
        "bsd",
        r"^([A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d)",
        "try_strptime({year} || ' ' || regexp_replace(t, ' +', ' ', 'g'), '%Y %b %d %H:%M:%S')",
        yearless=True,
        level=_level_regex(3),
    ),
    Layout(
        "apache-error",
        r"^\[((?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d(?:\.\d+)? \d{4})\]",
        "try_strptime(t, ['%a %b %d %H:%M:%S %Y', '%a %b %d %H:%M:%S.%f %Y'])",
        level=_level_regex(2),
    ),
    Layout(
        "yymmdd",
        r"^(\d{6} \d{6})",
        "try_strptime(t, '%y%m%d %H%M%S')",
        level=_level_regex(3),
    ),
    Layout(
        "yy/mm/dd",
        r"^(\d\d/\d\d/\d\d \d\d:\d\d:\d\d)",
        "try_strptime(t, '%y/%m/%d %H:%M:%S')",
        level=_level_regex(3),
    ),
    Layout(
        "android",
        r"^(\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})",
        "try_strptime({year} || '-' || t, '%Y-%m-%d %H:%M:%S.%g')",
        yearless=True,
        level=r"^\s+\d+\s+\d+\s+([VDIWEFA])\s",
    ),
    Layout(
        "compact",
        r"^(\d{8}-\d{1,2}:\d{1,2}:\d{1,2}:\d{1,3})\|",
        "try_strptime(regexp_extract(t, '^(.*):', 1), '%Y%m%d-%H:%M:%S') "
        "+ to_milliseconds(CAST(regexp_extract(t, ':(\\d+)$', 1) AS INTEGER))",
        level=_level_regex(2),
    ),
    Layout(
        "mm.dd",
        r"^\[(\d\d\.\d\d \d\d:\d\d:\d\d)\]",
        "try_strptime({year} || '.' || t, '%Y.%m.%d %H:%M:%S')",
        yearless=True,
        level=_level_regex(2),
    ),
    Layout(
        "prefixed-iso",
        rf"^\S+ ({_ISO})",
        "nodus_time(t)",
        level=_level_regex(3),
    ),
    Layout(
        "epoch",
        r"^(?:\S+ ){0,4}?(\d{10}(?:\.\d+)?) ",
        "to_timestamp(CAST(t AS DOUBLE))",
        level=_level_regex(8),
    ),
)
LAYOUTS_BY_NAME = {layout.name: layout for layout in LAYOUTS}


def text_sql(layout: Layout, mtime_sql: str) -> str:
    time_sql = layout.time_sql.format(year=f"CAST(year({mtime_sql}) AS VARCHAR)")
    time_sql = f"CAST({time_sql} AS TIMESTAMPTZ)"
    if layout.yearless:
        time_sql = year_fix(time_sql, mtime_sql)
    start = sql_str("(?s)" + layout.start)
    return _keep_unread_time(f"""SELECT joined AS ok, CASE WHEN joined THEN NULL ELSE
            'continuation lines without a record to join' END AS reason,
        {time_sql} AS time, {layout.level_sql()} AS level,
        NULL AS host, NULL AS app, NULL::BIGINT AS pid,
        CASE WHEN joined THEN trim(rest, ' ') END AS message,
        NULL::JSON AS attrs, line_no, byte_offset, TRUE AS record,
        CASE WHEN joined THEN NULL ELSE line END AS raw, t AS written_time
      FROM (SELECT *, regexp_extract(line, {start}, 1) AS t,
                   substr(line, strlen(regexp_extract(line, {start}, 0)) + 1) AS rest
            FROM records) AS extracted""")


def _keep_unread_time(parser: str) -> str:
    """``parser`` with a time it could not read kept in ``attrs`` (key ``time``) as written.

    ``parser`` yields the time's text as ``written_time``; a time that is there but
    unreadable (Feb 30, an offset of +25:00) would otherwise vanish from the row.
    """
    keep = "json_object('time', written_time)"
    return f"""SELECT * EXCLUDE (written_time) REPLACE (
        CASE WHEN ok AND time IS NULL AND written_time <> ''
             THEN CAST(json_merge_patch(coalesce(attrs, JSON '{{}}'), {keep}) AS JSON)
             ELSE attrs END AS attrs)
      FROM ({parser}) AS unread"""


def continued_message(fmt: str, tail: str) -> str:
    """``logs.message`` with the continuation lines ``tail`` joined as the parser would.

    For a record whose continuation lines arrived in a later window or run. One
    difference from a single run remains for plain text: spaces that ended the
    record's last line before the split were trimmed with it and stay trimmed.
    """
    joined = f"CASE WHEN message IS NULL THEN {tail} ELSE message || chr(10) || {tail} END"
    return f"rtrim({joined}, ' ')" if fmt == "text" else joined


# --- metrics -------------------------------------------------------------------------

PROM_SAMPLE = (
    r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[^}\"]|\"(?:[^\"\\]|\\.)*\")*\})?[ \t]+(\S+)"
    r"(?:[ \t]+([-+]?[0-9][0-9.eE+\-]*))?[ \t]*(?:#.*)?$"
)
PROM_LABEL = r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"'


def prometheus_sql(openmetrics: bool, scrape_sql: str) -> str:
    names = "['name','labels','value','ts']"
    stamp = (
        "to_timestamp(CAST(p.ts AS DOUBLE))"
        if openmetrics
        else "to_timestamp(CAST(p.ts AS DOUBLE) / 1000)"
    )
    label = sql_str(PROM_LABEL)
    labels = (
        f"'{{' || array_to_string(list_transform(regexp_extract_all(p.labels, {label}, 1), "
        f"lambda k, i: to_json(k) || ':\"' || regexp_extract_all(p.labels, {label}, 2)[i] "
        "|| '\"'), ',') || '}'"
    )
    return f"""SELECT ok, CASE WHEN ok THEN NULL ELSE 'not a metric sample' END AS reason,
        CASE WHEN ok THEN coalesce(CASE WHEN p.ts <> '' THEN {stamp} END, {scrape_sql}) END
            AS time,
        p.name AS series, CASE WHEN ok THEN try_cast({labels} AS JSON) END AS labels,
        value, line_no, byte_offset, record, CASE WHEN ok THEN NULL ELSE line END AS raw
      FROM (SELECT *, record AND p.name <> '' AND value IS NOT NULL AS ok,
            FROM (SELECT *, try_cast(p.value AS DOUBLE) AS value FROM (
              SELECT *, regexp_extract(line, {sql_str(PROM_SAMPLE)}, {names}) AS p
              FROM (SELECT *, nodus_filled(line) AND NOT starts_with(ltrim(line), '#') AS record
                    FROM raw) AS r) AS m)
            AS v) AS extracted"""


@dataclass(frozen=True)
class CsvLayout:
    """Which CSV columns hold the time, the values and the labels."""

    delimiter: str
    columns: tuple[str, ...]
    time_index: int
    value_indexes: tuple[int, ...]
    label_indexes: tuple[int, ...]


def csv_field_regex(delimiter: str) -> str:
    d = re.escape(delimiter)
    return f'(?:^|{d})("(?:[^"]|"")*"|[^{d}]*)'


def csv_sql(layout: CsvLayout, stem: str, series: str | None) -> str:
    fields = sql_str(csv_field_regex(layout.delimiter))

    def cell(index: int) -> str:
        raw = f"f[{index + 1}]"
        return (
            f"trim(CASE WHEN starts_with({raw}, '\"') THEN replace({raw}[2:-2], '\"\"', '\"') "
            f"ELSE {raw} END)"
        )

    value_columns = [layout.columns[i] for i in layout.value_indexes]

    def series_name(column: str) -> str:
        if series:
            return series if len(value_columns) == 1 else f"{series}.{column}"
        if value_columns == ["value"]:
            return stem
        return f"{stem}.{column}"

    labels = (
        "json_object("
        + ", ".join(f"{sql_str(layout.columns[i])}, {cell(i)}" for i in layout.label_indexes)
        + ")"
        if layout.label_indexes
        else "'{}'"
    )
    checks = " AND ".join(
        f"({cell(i)} = '' OR try_cast({cell(i)} AS DOUBLE) IS NOT NULL)"
        for i in layout.value_indexes
    )
    values = ", ".join(
        f"{{'series': {sql_str(series_name(layout.columns[i]))}, "
        f"'value': try_cast(nullif({cell(i)}, '') AS DOUBLE)}}"
        for i in layout.value_indexes
    )
    n = len(layout.columns)
    return f"""SELECT ok, CASE WHEN ok THEN NULL WHEN len(f) <> {n}
              THEN 'expected {n} fields' WHEN time IS NULL THEN 'unreadable time'
              ELSE 'not a number' END AS reason,
        time, CAST({labels} AS JSON) AS labels, [{values}] AS points,
        line_no, byte_offset, record, CASE WHEN ok THEN NULL ELSE line END AS raw
      FROM (SELECT *, record AND len(f) = {n} AND time IS NOT NULL AND {checks} AS ok
            FROM (SELECT *, nodus_time({cell(layout.time_index)}) AS time
                  FROM (SELECT *, regexp_extract_all(line, {fields}, 1) AS f
                        FROM (SELECT *, nodus_filled(line) AS record FROM raw) AS r) AS s)
                  AS t) AS c"""
