"""``--set key.path=value`` and ``--unset key.path`` on a TOML file, keeping its formatting.

Edits go through tomlkit so that comments and formatting survive. A changed value is
replaced in place (its line keeps its comment); a new key is spliced in as one new line
after the last key of the deepest existing table (as a dotted key when tables are
missing), so every other line of the file stays byte-identical. Each result is parsed
again and compared with the expected document before it is accepted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nodus_cli.confops.diff import PathPart, format_path, same, type_name
from nodus_cli.confops.formats import parse_toml
from nodus_cli.errors import InputError, NotFoundError, UsageError

_SEGMENT = re.compile(
    r"""\s*(?:(?P<bare>[A-Za-z0-9_-]+)|"(?P<basic>(?:[^"\\]|\\.)*)"|'(?P<literal>[^']*)')\s*"""
)
_INDEX = re.compile(r"\[\s*(\d+)\s*\]\s*")


@dataclass(frozen=True)
class Edit:
    """One ``--set`` (value text given) or ``--unset`` (value is None)."""

    path: tuple[PathPart, ...]
    value: str | None = None

    @property
    def key(self) -> str:
        return format_path(self.path)


def _parse_key(text: str, *, stop_at_equals: bool) -> tuple[tuple[PathPart, ...], str]:
    """A dotted TOML key with optional ``[N]`` indices; returns it and the rest of ``text``."""
    parts: list[PathPart] = []
    pos = 0
    while True:
        match = _SEGMENT.match(text, pos)
        if not match or match.end() == pos:
            raise UsageError(f'invalid key path in {text!r} (expected e.g. pool.max or a."b c")')
        if match.group("bare") is not None:
            parts.append(match.group("bare"))
        elif match.group("literal") is not None:
            parts.append(match.group("literal"))
        else:
            parts.append(parse_toml(f'k = "{match.group("basic")}"', "key")["k"])
        pos = match.end()
        while index := _INDEX.match(text, pos):
            parts.append(int(index.group(1)))
            pos = index.end()
        if text.startswith(".", pos):
            pos += 1
            continue
        rest = text[pos:]
        if stop_at_equals and rest.startswith("="):
            return tuple(parts), rest[1:]
        if not stop_at_equals and not rest:
            return tuple(parts), ""
        expected = "'='" if stop_at_equals else "the end"
        raise UsageError(f"invalid key path in {text!r}: expected {expected} at {rest!r}")


def parse_set(text: str) -> Edit:
    """``pool.max=500`` -> Edit; the value must be a TOML value (quote strings)."""
    if "=" not in text:
        raise UsageError(f"--set wants KEY=VALUE, got {text!r}")
    path, value = _parse_key(text, stop_at_equals=True)
    parse_value(value, format_path(path))
    return Edit(path, value.strip())


def parse_unset(text: str) -> Edit:
    path, _ = _parse_key(text, stop_at_equals=False)
    return Edit(path)


def parse_value(text: str, key: str) -> Any:
    """The typed value of a ``--set`` (``500`` an integer, ``'"500"'`` a string)."""
    try:
        parsed = parse_toml(f"v = {text.strip()}", key)
    except InputError:
        parsed = {}
    if list(parsed) != ["v"]:
        raise UsageError(
            f"--set {key}={text}: not a TOML value (quote strings, e.g. {key}='\"{text}\"')"
        )
    return parsed["v"]


def apply_edits(text: str, edits: Sequence[Edit], name: str = "TARGET") -> str:
    """Apply ``edits`` in order to TOML ``text`` and return the new text."""
    for edit in edits:
        text = _apply_one(text, edit, name)
    return text


def _apply_one(text: str, edit: Edit, name: str) -> str:
    from tomlkit.exceptions import TOMLKitError

    data = parse_toml(text, name)
    expected = _expected(data, edit)
    accepted = [expected]
    if edit.value is None and len(edit.path) > 1:
        accepted.append(_pruned(expected, edit.path[:-1]))
    attempts = (_splice, _native) if edit.value is not None else (_native,)
    for attempt in attempts:
        try:
            result = attempt(text, edit)
        except (TOMLKitError, KeyError, IndexError, TypeError, ValueError):
            continue
        try:
            produced = parse_toml(result, name)
        except InputError:
            continue
        if any(same(produced, candidate) for candidate in accepted):
            return result
    raise InputError(f"{name}: cannot edit {edit.key} here without breaking the file")


def _expected(data: dict[str, Any], edit: Edit) -> dict[str, Any]:
    """The document the edit must produce, computed on plain values (validates the path)."""
    result = _copy(data)
    node: Any = result
    for depth, part in enumerate(edit.path[:-1]):
        node = _step(node, part, edit, depth)
    last = edit.path[-1]
    here = format_path(edit.path)
    if edit.value is None:
        if not _has(node, last):
            raise NotFoundError(f"--unset {here}: no such key")
        del node[last]
        return result
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise NotFoundError(f"--set {here}: no such array element")
    elif not isinstance(node, dict):
        raise UsageError(f"--set {here}: {format_path(edit.path[:-1])} is not a table")
    current = node[last] if _has(node, last) else None
    if isinstance(current, dict) or (isinstance(current, list) and _is_table_array(current)):
        raise UsageError(f"--set {here}: {here} is a table; set the keys inside it instead")
    node[last] = parse_value(edit.value, here)
    return result


def _pruned(document: dict[str, Any], path: tuple[PathPart, ...]) -> dict[str, Any]:
    """``document`` without the tables along ``path`` that an unset left empty.

    tomlkit drops a dotted-key table (``a.b = 1``) once its last key is gone.
    """
    result = _copy(document)
    for depth in range(len(path), 0, -1):
        parent: Any = result
        for part in path[: depth - 1]:
            parent = parent[part]
        last = path[depth - 1]
        if isinstance(last, str) and parent.get(last) == {}:
            del parent[last]
        else:
            break
    return result


def _copy(value: Any) -> Any:
    """Copy tables and arrays; leave scalars shared (rtoml's tzinfo cannot be deep-copied)."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def _step(node: Any, part: PathPart, edit: Edit, depth: int) -> Any:
    """Descend one level of ``edit.path`` in plain data, creating tables for ``--set``."""
    option = f"--{'set' if edit.value is not None else 'unset'} {edit.key}"
    parent = format_path(edit.path[:depth])
    if isinstance(part, int):
        if not isinstance(node, list):
            raise UsageError(f"{option}: {parent} is not an array")
        if part >= len(node):
            raise NotFoundError(f"{option}: no such array element")
        return node[part]
    if not isinstance(node, dict):
        raise UsageError(f"{option}: {parent} is a {type_name(node)}, not a table")
    if part not in node:
        if edit.value is None:
            raise NotFoundError(f"{option}: no such key")
        node[part] = {}
    child = node[part]
    if not isinstance(child, dict | list):
        here = format_path(edit.path[: depth + 1])
        raise UsageError(f"{option}: {here} is a {type_name(child)}, not a table")
    return child


def _has(node: Any, part: PathPart) -> bool:
    if isinstance(part, int):
        return isinstance(node, list) and part < len(node)
    return isinstance(node, dict) and part in node


def _is_table_array(values: list[Any]) -> bool:
    return bool(values) and all(isinstance(value, dict) for value in values)


def _value_item(edit: Edit) -> Any:
    import tomlkit

    assert edit.value is not None
    return tomlkit.parse(f"v = {edit.value}").item("v")


def _native(text: str, edit: Edit) -> str:
    """tomlkit's own way: walk (creating tables), then assign or delete."""
    import tomlkit

    document = tomlkit.parse(text)
    node: Any = document
    for part in edit.path[:-1]:
        if isinstance(part, str) and part not in node:
            node[part] = tomlkit.table()
        node = node[part]
    if edit.value is None:
        del node[edit.path[-1]]
    else:
        node[edit.path[-1]] = _value_item(edit)
    return tomlkit.dumps(document)


def _splice(text: str, edit: Edit) -> str:
    """Replace an existing value in place, or add the key as one new line."""
    import tomlkit
    from tomlkit.items import AoT, Array, InlineTable, Table

    document = tomlkit.parse(text)
    node: Any = document
    chain: list[Any] = []  # the containers walked through, root first
    missing = 0
    for missing, part in enumerate(edit.path):
        if isinstance(part, int):
            exists = isinstance(node, AoT | Array) and part < len(node)
        else:
            exists = not isinstance(node, AoT | Array) and part in node
        if not exists:
            break
        if missing == len(edit.path) - 1:
            node[part] = _value_item(edit)  # an existing key: tomlkit keeps its line's trivia
            return tomlkit.dumps(document)
        chain.append(node)
        node = node[part]
    rest = list(edit.path[missing:])
    if any(isinstance(part, int) for part in rest) or isinstance(node, AoT | Array):
        raise NotFoundError(f"--set {edit.key}: no such array element")
    if isinstance(node, InlineTable):
        return _native(text, edit)
    while isinstance(node, Table) and not _has_header(chain[-1], node):
        rest.insert(0, _key_of(chain[-1], node))
        node = chain.pop()
    line = _render_line(rest, _value_item(edit))
    if _insert_line(node, line):
        return tomlkit.dumps(document)
    return _insert_at_top(text, line)


def _body(container: Any) -> list[tuple[Any, Any]]:
    from tomlkit.items import Table

    return container.value.body if isinstance(container, Table) else container.body


def _has_header(parent: Any, table: Any) -> bool:
    """Whether ``table`` has its own ``[header]`` line (not implicit, not a dotted key)."""
    from tomlkit.items import AoT

    if isinstance(parent, AoT):
        return True
    if table.is_super_table():
        return False
    return not any(item is table and key.is_dotted() for key, item in _body(parent) if key)


def _key_of(parent: Any, table: Any) -> str:
    for key, item in _body(parent):
        if item is table and key is not None:
            return str(key.key)
    raise InputError("cannot locate the table to edit")


def _render_line(keys: list[PathPart], item: Any) -> str:
    return f"{format_path(tuple(keys))} = {item.as_string()}\n"


def _insert_line(table: Any, line: str) -> bool:
    """Add ``line`` after the last plain key of ``table``; False for a document without one."""
    from tomlkit.items import AoT, Table

    body = _body(table)
    plain = [item for key, item in body if key is not None and not isinstance(item, Table | AoT)]
    if plain:
        _append_to_trail(plain[-1].trivia, line)
    elif isinstance(table, Table):
        _append_to_trail(table.trivia, line)
    else:
        return False
    return True


def _append_to_trail(trivia: Any, line: str) -> None:
    trail = trivia.trail
    trivia.trail = trail + line if trail.endswith("\n") else trail + "\n" + line.rstrip("\n")


def _insert_at_top(text: str, line: str) -> str:
    """Add a top-level key to a document that has none: before the first table.

    It goes after the last blank line of the leading comments, so that a comment
    written right above the first table header stays with it.
    """
    lines = text.split("\n")
    insert_at = 0
    for index, current in enumerate(lines):
        stripped = current.strip()
        if stripped and not stripped.startswith("#"):
            break
        if not stripped and index < len(lines) - 1:
            insert_at = index + 1
    else:  # only comments and blank lines: append
        return text + ("" if text.endswith("\n") or not text else "\n") + line
    return "\n".join([*lines[:insert_at], line.rstrip("\n"), *lines[insert_at:]])
