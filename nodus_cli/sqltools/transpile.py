"""Honest transpiling: a construct the target cannot express is an error, never a silent drop.

sqlglot raises for what its generator knows it cannot write (``unsupported_level=RAISE``).
Where it is silent, the output is parsed back and compared with the input: a column,
table or literal that disappeared means a construct was dropped, and that is an error
naming the construct. Type changes (FLOAT to REAL, VARCHAR(MAX) to VARCHAR) and functions
sqlglot does not know (passed through unchanged) are warnings.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nodus_cli.sqltools.deep import deep_recursion
from nodus_cli.sqltools.errors import UnsupportedConstruct
from nodus_cli.sqltools.parsing import check_dialect, parse_statements

if TYPE_CHECKING:
    from sqlglot import exp

STATEMENT_SEPARATOR = ";\n"


@dataclass
class TranspileResult:
    """The SQL in the target dialect (statements joined by ``;\\n``) and what to look at."""

    sql: str
    warnings: list[str] = field(default_factory=list)

    @property
    def statements(self) -> list[str]:
        return self.sql.split(STATEMENT_SEPARATOR) if self.sql else []


@deep_recursion
def transpile_sql(
    sql: str, source: str, target: str, *, allow_unverified: bool = False
) -> TranspileResult:
    """Rewrite ``sql`` from dialect ``source`` into dialect ``target``.

    Raises ``UnsupportedConstruct`` (exit 2) naming the first construct the target
    cannot express, or a function the target is not known to have (a warning instead
    with ``allow_unverified``); ``InputError`` when ``sql`` does not parse as ``source``.
    """
    source = check_dialect(source)
    target = check_dialect(target)
    if not writable(target):
        raise UnsupportedConstruct(
            f"sqlglot cannot write {target}: it reads {target} but writes plain SQL for it, "
            "so no construct would be translated"
        )
    warnings: list[str] = []
    written = [
        transpile_expression(statement, source, target, warnings, allow_unverified)
        for statement in parse_statements(sql, source)
    ]
    return TranspileResult(STATEMENT_SEPARATOR.join(written), _unique(warnings))


@functools.cache
def writable(dialect: str) -> bool:
    """Whether sqlglot can write ``dialect``: a simple query it writes reads back in it.

    PRQL and DAX fail this: sqlglot parses them but its generator writes SQL.
    """
    import sqlglot
    from sqlglot.errors import SqlglotError

    probe = "SELECT a, COUNT(*) AS n FROM t WHERE b > 1 GROUP BY a"
    try:
        text = sqlglot.transpile(probe, read="duckdb", write=dialect)[0]
        sqlglot.parse_one(text, read=dialect)
    except SqlglotError:
        return False
    return True


def transpile_expression(
    statement: exp.Expr,
    source: str,
    target: str,
    warnings: list[str],
    allow_unverified: bool = False,
) -> str:
    """One parsed statement in ``target``; appends warnings, raises on any loss."""
    from sqlglot.errors import ErrorLevel, UnsupportedError

    from nodus_cli.sqltools.known import check_target
    from nodus_cli.sqltools.targets import prepare

    _refuse_known_silent_drops(statement, source, target)
    if source != target:
        statement = _normalise_types(statement, source, target, warnings)
        statement = prepare(statement, source, target, warnings)
        check_target(statement, target, allow_unverified, warnings)
    try:
        text = statement.sql(dialect=target, unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as exc:
        raise UnsupportedConstruct(f"{target} cannot express: {_one_line(exc)}") from None
    if source == target:
        return text
    back = _parse_back(text, target, warnings)
    if back is not None:
        _refuse_lost_content(statement, back, target)
    _warn_unknown_functions(statement, target, warnings)
    return text


def _parse_back(text: str, target: str, warnings: list[str]) -> exp.Expr | None:
    import sqlglot
    from sqlglot.errors import ErrorLevel, ParseError, TokenError

    try:
        return sqlglot.parse_one(text, read=target, error_level=ErrorLevel.RAISE)
    except (ParseError, TokenError) as exc:
        warnings.append(
            f"the {target} output does not parse back with sqlglot ({_one_line(exc)}); "
            "it was not checked for dropped constructs"
        )
        return None


def _aliases(tree: exp.Expr) -> set[str]:
    from sqlglot import exp

    return {alias.alias.lower() for alias in tree.find_all(exp.Alias)}


def _content(tree: exp.Expr, aliases: frozenset[str] = frozenset()) -> Counter[str]:
    """Columns, tables and literals of a tree: what a faithful translation keeps.

    Unqualified columns named like an output alias are left out: a reference to an alias
    (ORDER BY total) may legitimately be written as the aliased expression.
    """
    from sqlglot import exp

    found: Counter[str] = Counter()
    for node in tree.walk():
        if isinstance(node, exp.Column):
            if node.table or node.name.lower() not in aliases:
                found[f"column {node.name.lower()}"] += 1
        elif isinstance(node, exp.Table) and node.name:
            found[f"table {node.name.lower()}"] += 1
        elif isinstance(node, exp.Literal) and node.is_string and node.this:
            found[f"literal '{node.this}'"] += 1
        elif isinstance(node, exp.Literal) and not node.find_ancestor(exp.DataType):
            found[f"number {node.this}"] += 1  # type parameters change with the type
    return found


def _refuse_lost_content(original: exp.Expr, back: exp.Expr, target: str) -> None:
    """A column, table or string literal missing after the round trip is a silent drop."""
    aliases = frozenset(_aliases(original) | _aliases(back))
    kept = _content(back, aliases)
    for item in _content(original, aliases):
        if item not in kept:
            construct = _construct_holding(original, item)
            raise UnsupportedConstruct(
                f"{target} cannot express {construct}: the translation drops {item}"
            )


def _construct_holding(tree: exp.Expr, item: str) -> str:
    """Name the function or clause around the lost item, for the error message."""
    from sqlglot import exp

    named = (
        exp.Func, exp.Where, exp.Having, exp.Qualify, exp.Group, exp.Order, exp.Limit,
        exp.Offset, exp.Join, exp.Window, exp.Lambda, exp.Subquery, exp.CTE, exp.Select,
    )  # fmt: skip
    for node in tree.walk():
        if item not in _content(node) or any(
            item in _content(child) for child in node.iter_expressions()
        ):
            continue
        holder = node.parent
        while holder is not None and not isinstance(holder, named):
            holder = holder.parent
        if holder is not None:
            return f"{holder.key.upper()} ({_short(holder.sql())})"
    return "a construct"


# Dialects whose SQL has lambda functions (``x -> x + 1``) and ASOF joins; sqlglot writes
# both for any target without a word.
LAMBDA_DIALECTS = frozenset(
    {
        "athena",
        "clickhouse",
        "databricks",
        "doris",
        "duckdb",
        "dune",
        "hive",
        "presto",
        "snowflake",
        "spark",
        "spark2",
        "starrocks",
        "trino",
    }
)
ASOF_DIALECTS = frozenset({"duckdb", "clickhouse"})
# Dialects whose bare FLOAT (and REAL) keyword means an 8-byte double.
FLOAT8_DIALECTS = frozenset(
    {
        "tsql",
        "fabric",
        "oracle",
        "snowflake",
        "postgres",
        "redshift",
        "materialize",
        "risingwave",
        "bigquery",
        "exasol",
    }
)
REAL8_DIALECTS = frozenset({"sqlite", "oracle", "snowflake"})
MAX_LENGTH_DIALECTS = frozenset({"tsql", "fabric"})


def _refuse_known_silent_drops(statement: exp.Expr, source: str, target: str) -> None:
    """Constructs sqlglot writes for targets that lack them (found by testing)."""
    from sqlglot import exp

    if target not in LAMBDA_DIALECTS:
        lam = statement.find(exp.Lambda)
        if lam is not None:
            holder = lam.parent if lam.parent is not None else lam
            raise UnsupportedConstruct(
                f"{target} cannot express a lambda function ({_short(holder.sql(source))})"
            )
    if target not in ASOF_DIALECTS:
        for join in statement.find_all(exp.Join):
            if (join.text("method") or "").upper() == "ASOF":
                raise UnsupportedConstruct(
                    f"{target} cannot express an ASOF JOIN ({_short(join.sql(source))})"
                )


def _normalise_types(
    statement: exp.Expr, source: str, target: str, warnings: list[str]
) -> exp.Expr:
    """Warn where a type changes width; drop a ``(MAX)`` length the target cannot write."""
    from sqlglot import exp

    statement = statement.copy()
    for node in list(statement.find_all(exp.DataType)):
        old = node.sql(dialect=source)
        params = node.expressions
        if (
            target not in MAX_LENGTH_DIALECTS
            and len(params) == 1
            and params[0].name.upper() == "MAX"
        ):
            node.set("expressions", [])
            warnings.append(
                f"type {old} becomes {node.sql(dialect=target)} (unbounded) in {target}"
            )
            continue
        before = _float_bytes(old, source)
        if before == 8 and node.this == exp.DataType.Type.FLOAT:
            # sqlglot reads a bare FLOAT as 4 bytes; in this source it is a double
            node.set("this", exp.DataType.Type.DOUBLE)
            node.set("expressions", [])
        new = node.sql(dialect=target)
        after = _float_bytes(new, target)
        if before and after and before != after:
            warnings.append(
                f"type {old} ({before}-byte float in {source}) becomes {new} "
                f"({after}-byte float in {target})"
            )
    return statement


def _float_bytes(type_text: str, dialect: str) -> int | None:
    """Storage width of a floating-point type keyword in a dialect, None for other types."""
    word = type_text.upper().split("(")[0].strip()
    if word in {"DOUBLE", "DOUBLE PRECISION", "FLOAT8", "FLOAT64", "BINARY_DOUBLE"}:
        return 8
    if word in {"FLOAT4", "FLOAT32", "BINARY_FLOAT"}:
        return 4
    if word == "FLOAT":
        precision = re.search(r"\((\d+)\)", type_text)
        if precision:
            return 4 if int(precision.group(1)) <= 24 else 8
        return 8 if dialect in FLOAT8_DIALECTS else 4
    if word == "REAL":
        return 8 if dialect in REAL8_DIALECTS else 4
    return None


def _warn_unknown_functions(statement: exp.Expr, target: str, warnings: list[str]) -> None:
    from sqlglot import exp

    for node in statement.find_all(exp.Anonymous):
        warnings.append(
            f"function {node.name}() is not known to sqlglot and is passed through "
            f"unchanged; check that {target} has it"
        )


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
