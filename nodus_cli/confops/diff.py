"""Semantic diff of two parsed configuration documents, by key path.

Key order, formatting and comments are not semantic; a value's type is (``1`` and
``1.0`` differ, so do ``"1"`` and ``1``). Tables are compared key by key, arrays that
hold tables (TOML arrays of tables) element by element, other arrays as one value.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from nodus_cli.masking import MASK, is_secret_name

Kind = Literal["added", "removed", "changed"]
PathPart = str | int
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_MISSING: Any = object()
# Types whose values are semantically equal exactly when they have this type and are ==.
_PLAIN = frozenset({str, int, bool, dt.date, dt.time, type(None)})


@dataclass(frozen=True)
class Masked:
    """A value whose key looks secret: printed as ``***``, its type still shown."""

    type: str


def type_name(value: Any) -> str:
    """The TOML/JSON type name of a parsed value."""
    if isinstance(value, Masked):
        return value.type
    if isinstance(value, dict):
        return "table"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, dt.datetime):
        return "datetime" if value.tzinfo is not None else "local-datetime"
    if isinstance(value, dt.date):
        return "local-date"
    if isinstance(value, dt.time):
        return "local-time"
    if value is None:
        return "null"
    return type(value).__name__


def same(a: Any, b: Any) -> bool:
    """Semantic equality: same type and value, recursively (NaN equals NaN)."""
    kind = type(a)
    if kind is not type(b):
        if type_name(a) != type_name(b):
            return False
        kind = dict if isinstance(a, dict) else list if isinstance(a, list) else kind
    if kind in _PLAIN:
        return bool(a == b)
    if kind is dict:
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if kind is list:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if kind is float:
        if a != b:
            return math.isnan(a) and math.isnan(b)
        return a != 0 or math.copysign(1, a) == math.copysign(1, b)
    if kind is dt.datetime:
        return bool(a == b and a.utcoffset() == b.utcoffset())
    return bool(a == b)


@dataclass(frozen=True)
class Change:
    """One semantic difference at a key path."""

    path: tuple[PathPart, ...]
    kind: Kind
    old: Any = _MISSING
    new: Any = _MISSING

    @property
    def key(self) -> str:
        return format_path(self.path)

    def reversed(self) -> Change:
        """The change that undoes this one."""
        undo: dict[Kind, Kind] = {"added": "removed", "removed": "added", "changed": "changed"}
        return Change(self.path, undo[self.kind], old=self.new, new=self.old)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"path": self.key, "keys": list(self.path), "kind": self.kind}
        if self.old is not _MISSING:
            doc["old"] = json_value(self.old)
            doc["old_type"] = type_name(self.old)
        if self.new is not _MISSING:
            doc["new"] = json_value(self.new)
            doc["new_type"] = type_name(self.new)
        return doc


def semantic_diff(old: Any, new: Any) -> list[Change]:
    """Every added, removed and changed key path from ``old`` to ``new``."""
    changes: list[Change] = []
    _walk((), old, new, changes)
    return changes


def _walk(path: tuple[PathPart, ...], old: Any, new: Any, out: list[Change]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key, value in old.items():
            if key not in new:
                out.append(Change((*path, key), "removed", old=value))
                continue
            other = new[key]
            kind = type(value)
            if kind is type(other) and value == other:  # the common cases, without a call
                if kind in _PLAIN or (kind is float and value):
                    continue
                if kind is dt.datetime and value.utcoffset() == other.utcoffset():
                    continue
            if isinstance(value, dict | list):
                _walk((*path, key), value, other, out)
            elif not same(value, other):
                out.append(Change((*path, key), "changed", old=value, new=other))
        for key, value in new.items():
            if key not in old:
                out.append(Change((*path, key), "added", new=value))
    elif (
        isinstance(old, list)
        and isinstance(new, list)
        and (_holds_tables(old) or _holds_tables(new))
    ):
        for index in range(max(len(old), len(new))):
            if index >= len(new):
                out.append(Change((*path, index), "removed", old=old[index]))
            elif index >= len(old):
                out.append(Change((*path, index), "added", new=new[index]))
            else:
                _walk((*path, index), old[index], new[index], out)
    elif not same(old, new):
        out.append(Change(path, "changed", old=old, new=new))


def _holds_tables(values: list[Any]) -> bool:
    return any(isinstance(value, dict) for value in values)


def format_path(path: tuple[PathPart, ...]) -> str:
    """``servers[0].host``; keys that are not bare TOML keys are quoted."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        key = part if _BARE_KEY.fullmatch(part) else quote(part)
        text += f".{key}" if text else key
    return text or "(document)"


def quote(text: str) -> str:
    """A TOML basic string (JSON's escapes, plus DEL, which TOML does not allow raw)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def json_value(value: Any) -> Any:
    """A parsed value as JSON: dates and times as ISO 8601, NaN and infinities as text."""
    if isinstance(value, Masked):
        return MASK
    if isinstance(value, dict):
        return {key: json_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_value(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return value


def literal(value: Any) -> str:
    """A compact TOML-like rendering of a value for the text diff."""
    if isinstance(value, Masked):
        return MASK
    if isinstance(value, dict):
        pairs = (f"{format_path((key,))} = {literal(item)}" for key, item in value.items())
        return "{" + ", ".join(pairs) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(literal(item) for item in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def render_text(changes: list[Change]) -> str:
    """One line per change: ``+ key = value``, ``- key = value``, ``~ key: old -> new``."""
    lines = []
    for change in changes:
        if change.kind == "added":
            lines.append(f"+ {change.key} = {literal(change.new)}")
        elif change.kind == "removed":
            lines.append(f"- {change.key} = {literal(change.old)}")
        else:
            old, new = literal(change.old), literal(change.new)
            old_type, new_type = type_name(change.old), type_name(change.new)
            if old_type != new_type:
                old, new = f"{old} ({old_type})", f"{new} ({new_type})"
            lines.append(f"~ {change.key}: {old} -> {new}")
    return "".join(line + "\n" for line in lines)


def is_secret_path(path: Sequence[PathPart]) -> bool:
    """Whether any key on the path looks secret (``db.password``, ``credentials.user``)."""
    return any(isinstance(part, str) and is_secret_name(part) for part in path)


def mask_value(value: Any) -> Any:
    """``value`` with every entry under a secret-looking key masked, at any depth."""
    if isinstance(value, dict):
        return {
            key: Masked(type_name(item)) if is_secret_name(key) else mask_value(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [mask_value(item) for item in value]
    return value


def mask_secrets(changes: list[Change]) -> list[Change]:
    """The changes as they may be printed: secret-looking values replaced by ``***``."""
    masked = []
    for change in changes:
        secret = is_secret_path(change.path)
        old, new = (_masked(value, secret) for value in (change.old, change.new))
        masked.append(Change(change.path, change.kind, old=old, new=new))
    return masked


def _masked(value: Any, secret: bool) -> Any:
    if value is _MISSING:
        return value
    return Masked(type_name(value)) if secret else mask_value(value)


def mask_change_json(document: dict[str, Any]) -> dict[str, Any]:
    """A change as ``Change.to_json`` wrote it (kept in history), masked alike."""
    secret = is_secret_path(document.get("keys", ()))
    masked = dict(document)
    for field in ("old", "new"):
        if field in masked:
            masked[field] = MASK if secret else json_value(mask_value(masked[field]))
    return masked


_ASSIGNED_KEY = re.compile(r'^[-+ ]\s*(?:"((?:[^"\\]|\\.)*)"|([A-Za-z0-9_.-]+))\s*[=:]')


def mask_unified(text: str) -> str:
    """A unified diff with the value of each ``key = value`` / ``"key": value`` line
    whose key looks secret replaced by ``***`` (the textual diff knows no tables)."""
    lines = []
    for line in text.splitlines(keepends=True):
        match = _ASSIGNED_KEY.match(line)
        if match and not line.startswith(("---", "+++")):
            key = match.group(1) if match.group(1) is not None else match.group(2)
            if is_secret_name(key):
                line = line[: match.end()] + f" {MASK}\n"
        lines.append(line)
    return "".join(lines)


def summarize(changes: list[Change]) -> dict[str, int]:
    counts = {"added": 0, "removed": 0, "changed": 0}
    for change in changes:
        counts[change.kind] += 1
    return counts


def unified(old_text: str, new_text: str, old_name: str, new_name: str) -> str:
    """The textual unified diff (formatting changes included)."""
    import difflib

    lines = difflib.unified_diff(
        old_text.splitlines(keepends=True),
        new_text.splitlines(keepends=True),
        fromfile=old_name,
        tofile=new_name,
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )
