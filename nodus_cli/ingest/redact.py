"""Keyed pseudonyms: HMAC-SHA-256 with the workspace secret, computed inside DuckDB.

The same value gives the same pseudonym in every file and run of a workspace
(counts and joins still work) and the original cannot be recovered from the store.
"""

from __future__ import annotations

import hashlib
import hmac

from nodus_cli.errors import UsageError

PREFIX = "anon:"
DIGITS = 16  # hex digits of the HMAC kept in a pseudonym (64 bits)

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_HEX = r"[0-9A-Fa-f]{1,4}"
KINDS = {
    "email": r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}",
    "ipv4": rf"\b{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}\b",
    "ipv6": rf"\b(?:{_HEX}:){{7}}{_HEX}\b|\b(?:{_HEX}:){{1,6}}:(?:{_HEX}:){{0,5}}{_HEX}\b",
}
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
    """Temporary SQL macros: ``nodus_pseudonym(x)`` and ``nodus_redact(x)``."""
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
    for kind in kinds:
        pattern = KINDS[kind].replace("'", "''")
        name = f"nodus_redact_{kind}"
        statements.append(
            f"CREATE OR REPLACE TEMP MACRO {name}(x) AS (CASE WHEN x IS NULL THEN NULL ELSE "
            f"list_reduce(regexp_extract_all(x, '{pattern}'), "
            f"lambda acc, m: replace(acc, m, nodus_pseudonym(m)), x) END)"
        )
        body = f"{name}({body})"
    statements.append(f"CREATE OR REPLACE TEMP MACRO nodus_redact(x) AS ({body})")
    return statements


def field_update(column: str, field: str) -> str:
    """SQL that pseudonymises ``field`` inside the JSON ``column``."""
    path = "'$.\"" + field.replace("'", "''").replace('"', "") + "\"'"
    name = "'" + field.replace("'", "''") + "'"
    return (
        f"CASE WHEN json_extract_string({column}, {path}) IS NULL THEN {column} "
        f"ELSE CAST(json_merge_patch({column}, json_object({name}, "
        f"nodus_pseudonym(json_extract_string({column}, {path})))) AS JSON) END"
    )
