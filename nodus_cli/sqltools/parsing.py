"""Dialect names and parsing shared by every SQL tool."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from nodus_cli.errors import InputError, UsageError, first_line

if TYPE_CHECKING:
    from sqlglot import exp

_TOKEN_REPR = re.compile(r"<Token token_type: [^,]+, text: (.*?), line: .*?>")


def dialect_names() -> list[str]:
    """Every dialect sqlglot knows, by the name users pass to ``--dialect``/``--from``/``--to``."""
    import sqlglot

    return sorted(d.value for d in sqlglot.Dialects if d.value)


def check_dialect(name: str) -> str:
    """The lower-cased dialect name, or a usage error listing the known ones."""
    wanted = name.strip().lower()
    known = dialect_names()
    if wanted not in known:
        raise UsageError(f"unknown SQL dialect {name!r} (known: {', '.join(known)})")
    return wanted


def parse_statements(sql: str, dialect: str) -> list[exp.Expr]:
    """Parse ``sql`` into its statements; a syntax error is an input error naming the spot."""
    import sqlglot
    from sqlglot.errors import ErrorLevel, ParseError, TokenError

    dialect = check_dialect(dialect)
    try:
        parsed = sqlglot.parse(sql, read=dialect, error_level=ErrorLevel.RAISE)
    except (ParseError, TokenError) as exc:
        raise InputError(f"cannot parse SQL as {dialect}: {_parse_message(exc)}") from None
    statements = [statement for statement in parsed if statement is not None]
    if not statements:
        raise UsageError("no SQL statement given")
    return statements


def parse_one(sql: str, dialect: str) -> exp.Expr:
    """Parse exactly one statement."""
    statements = parse_statements(sql, dialect)
    if len(statements) != 1:
        raise UsageError(f"expected one SQL statement, got {len(statements)}")
    return statements[0]


def _parse_message(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if errors:
        first = errors[0]
        where = (
            f" at line {first.get('line')}, column {first.get('col')}" if first.get("line") else ""
        )
        description = _TOKEN_REPR.sub(r"'\1'", str(first.get("description", "syntax error")))
        return f"{description}{where}"
    return first_line(exc)
