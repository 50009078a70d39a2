"""Read TOML and JSON configuration files into plain Python values.

TOML is parsed with rtoml (a compiled parser; tomllib needs ~1.5 s for a 5 MB file,
rtoml ~0.4 s), JSON with the standard library. Formatting never matters here: edits
that must keep formatting go through ``edit.py`` (tomlkit).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from nodus_cli.errors import InputError
from nodus_cli.fsutil import read_input

CONFIG_LIMIT = 16 << 20  # bytes: a configuration file larger than this is refused, not read

ConfigFormat = Literal["toml", "json"]
SUFFIXES: dict[str, ConfigFormat] = {".toml": "toml", ".json": "json"}


def detect_format(path: Path | str, data: bytes) -> ConfigFormat:
    """The format by file suffix, else by content (JSON when it parses as JSON)."""
    by_suffix = SUFFIXES.get(Path(path).suffix.lower())
    if by_suffix:
        return by_suffix
    head = data.lstrip()[:1]
    if head in (b"{", b"["):
        try:
            json.loads(data)
            return "json"
        except ValueError:
            pass
    return "toml"


def decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{name}: not UTF-8 text (byte {exc.start})") from None


def parse(data: bytes, fmt: ConfigFormat, name: str) -> Any:
    """Parse ``data`` in ``fmt``; an invalid document raises InputError (exit 2)."""
    text = decode(data, name)
    if fmt == "json":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise InputError(f"{name}: invalid JSON: {exc}") from None
    return parse_toml(text, name)


def parse_toml(text: str, name: str) -> dict[str, Any]:
    import rtoml

    try:
        return rtoml.loads(text)
    except rtoml.TomlParsingError as exc:
        message = " ".join(str(exc).split())
        raise InputError(f"{name}: invalid TOML: {message}") from None


def read_config(path: Path | str) -> tuple[bytes, ConfigFormat, Any]:
    """Read a file and return its bytes, format and parsed value."""
    path = Path(path)
    data = read_input(path, "a configuration file", CONFIG_LIMIT)
    fmt = detect_format(path, data)
    return data, fmt, parse(data, fmt, str(path))
