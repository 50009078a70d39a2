"""Keyed pseudonyms: HMAC-SHA-256 with the workspace secret, computed inside DuckDB.

The same value gives the same pseudonym in every file and run of a workspace
(counts and joins still work) and the original cannot be recovered from the store.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from collections.abc import Callable

from nodus_cli.errors import UsageError

PREFIX = "anon:"
DIGITS = 16  # hex digits of the HMAC kept in a pseudonym (64 bits)

# Each kind is a candidate pattern (group 1: the value) and the full pattern a candidate
# must match. Candidates are maximal runs, so one pattern cannot stop inside a value and
# leave its end in clear (RE2 takes the first alternative that matches, not the longest).
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]?[0-9])"  # leading zeros too: 010.001.002.003
_IPV4 = rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}"
_H = r"[0-9A-Fa-f]{1,4}"
_IPV6 = "|".join(
    (
        rf"(?:{_H}:){{7}}{_H}",
        rf"(?:{_H}:){{1,7}}:",
        rf"(?:{_H}:){{1,6}}:{_H}",
        *(rf"(?:{_H}:){{1,{n}}}(?::{_H}){{1,{7 - n}}}" for n in range(1, 6)),
        rf":(?:(?::{_H}){{1,7}}|:)",
        rf"(?:{_H}:){{6}}{_IPV4}",
        rf"(?:(?:{_H}:){{1,5}}|:):(?:{_H}:){{0,4}}{_IPV4}",
    )
)
_WORD = r"[\p{L}\p{N}]"  # letters and digits of any script (RE2 syntax)
KINDS = {
    "email": (
        rf"({_WORD.replace(']', '._%+-]')}+@{_WORD.replace(']', '-]')}+"
        rf"(?:\.{_WORD.replace(']', '-]')}+)*\.\p{{L}}{{2,}})",
        None,
    ),
    "ipv6": (
        r"(?:^|[^0-9A-Za-z:.])([0-9A-Fa-f]*(?::[0-9A-Fa-f]*){2,}(?:\.[0-9]{1,3}){0,3})",
        rf"(?:{_IPV6})",
    ),
    "ipv4": (r"(?:^|[^0-9.])([0-9]{1,3}(?:\.[0-9]{1,3}){3})", _IPV4),
}
KIND_ORDER = ("email", "ipv6", "ipv4")  # an IPv4 inside an IPv6 address goes with it
LOG_COLUMNS = ("host", "app", "message")


def pseudonym(secret: bytes, value: str) -> str:
    """The pseudonym nodus stores for ``value`` (the SQL macro computes the same)."""
    digest = hmac.new(secret, value.encode("utf-8"), hashlib.sha256).hexdigest()
    return PREFIX + digest[:DIGITS]


def parse_redactions(values: list[str]) -> tuple[list[str], list[str]]:
    """Split ``--redact email,ipv4 --redact user`` into kinds and field names."""
    kinds: list[str] = []
    fields: list[str] = []
    for value in values:
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            if item == "ip":
                kinds.extend(k for k in ("ipv4", "ipv6") if k not in kinds)
            elif item in KINDS:
                if item not in kinds:
                    kinds.append(item)
            elif item.replace("_", "").replace(".", "").replace("-", "").isalnum():
                if item not in fields:
                    fields.append(item)
            else:
                raise UsageError(f"--redact {item!r}: not a kind ({', '.join(KINDS)}) or field")
    return kinds, fields


def macros(secret: bytes, kinds: list[str]) -> list[str]:
    """Temporary SQL macros: ``nodus_pseudonym(x)`` and ``nodus_redact(x)``.

    ``nodus_redact`` replaces the longest values first, so that a value inside a
    longer one (``::1`` in ``fe80::1``) cannot split it and leave a part in clear.
    """
    key = hashlib.sha256(secret).digest() if len(secret) > 64 else secret
    key = key.ljust(64, b"\0")
    inner = bytes(b ^ 0x36 for b in key).hex()
    outer = bytes(b ^ 0x5C for b in key).hex()
    statements = [
        "CREATE OR REPLACE TEMP MACRO nodus_pseudonym(x) AS (CASE WHEN x IS NULL THEN NULL "
        f"ELSE '{PREFIX}' || left(sha256(unhex('{outer}') || unhex(sha256(unhex('{inner}') "
        f"|| encode(CAST(x AS VARCHAR))))), {DIGITS}) END)"
    ]
    body = "x"
    for kind in sorted(kinds, key=KIND_ORDER.index):
        candidate, full = KINDS[kind]
        found = f"regexp_extract_all(x, {_literal(candidate)}, 1)"
        if full is not None:
            found = f"list_filter({found}, lambda m: regexp_full_match(m, {_literal(full)}))"
        # longest first: sort (zero-padded length, value) pairs, keep the values
        longest = (
            f"list_transform(list_sort(list_transform({found}, "
            "lambda m: [lpad(CAST(strlen(m) AS VARCHAR), 12, '0'), m]), 'DESC'), "
            "lambda p: p[2])"
        )
        name = f"nodus_redact_{kind}"
        statements.append(
            f"CREATE OR REPLACE TEMP MACRO {name}(x) AS (CASE WHEN x IS NULL THEN NULL ELSE "
            f"list_reduce({longest}, lambda acc, m: replace(acc, m, nodus_pseudonym(m)), x) END)"
        )
        body = f"{name}({body})"
    statements.append(f"CREATE OR REPLACE TEMP MACRO nodus_redact(x) AS ({body})")
    return statements


def text_redactor(secret: bytes, kinds: list[str]) -> Callable[[str], str]:
    """``nodus_redact`` as a Python function, for texts stored without passing through SQL.

    The journal's record of a redacted ingest (its arguments, its summary) goes through
    it. It runs the very macros ingest uses, on a private in-memory connection, so that
    a path in the journal and the same path in ``ingest_files`` get the same pseudonyms.
    """
    import duckdb

    con = duckdb.connect(":memory:")
    for statement in macros(secret, kinds):
        con.execute(statement)

    def apply(text: str) -> str:
        return str(con.execute("SELECT nodus_redact(?)", [text]).fetchall()[0][0])

    return apply


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def field_redactor(secret: bytes, fields: list[str]) -> Callable[[str], str]:
    """A function that pseudonymises the named fields of a JSON text, at any depth.

    Names match whatever their case (``User`` is ``user``), escapes decoded. A field
    holding an object or array is replaced by the pseudonym of its JSON text. A
    number too large for a double keeps its text as a string (JSON has no infinity).
    A text nested too deep for Python's parser becomes a single pseudonym: nothing of
    it is kept in clear.
    """
    names = {name.lower() for name in fields}

    def finite(text: str) -> float | str:
        number = float(text)
        return number if math.isfinite(number) else text

    def value_text(value: object) -> str:
        if isinstance(value, str):
            return value
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def apply(text: str) -> str:
        try:
            document = json.loads(text, parse_float=finite)
        except RecursionError:
            return json.dumps({"redacted": pseudonym(secret, text)})
        except ValueError:
            return text
        pending = [document]
        while pending:
            node = pending.pop()
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, item in list(items):
                if isinstance(key, str) and key.lower() in names:
                    node[key] = pseudonym(secret, value_text(item))
                elif isinstance(item, dict | list):
                    pending.append(item)
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"))

    return apply


def may_hold_field(fields: list[str]) -> str:
    """An RE2 pattern a JSON text matches whenever it may hold one of ``fields`` as a key."""
    keys = "|".join(re.escape(name) for name in fields)
    return rf'(?i)"(?:{keys})"|\\u'
