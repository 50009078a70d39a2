"""What a target dialect has: every function and construct of a transpiled query is checked.

sqlglot writes a function it has no spelling for under its own name (``UNIX_TO_TIME``,
``APPROX_QUANTILE`` for T-SQL) and the output then fails on the engine. The functions a
target has come from ``functions/<dialect>.txt``: for PostgreSQL and SQLite recorded
from the real engines (a test compares them with the engines in CI), for the others
maintained by hand from their references. The functions sqlglot's parser for the
dialect defines itself count as known too. A name found nowhere is an error naming it,
or with ``allow_unverified`` a warning.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from typing import TYPE_CHECKING

from nodus_cli.sqltools.errors import UnsupportedConstruct

if TYPE_CHECKING:
    from sqlglot import exp

# Written like calls but part of the SQL grammar (so absent from the engines' catalogues).
SYNTAX = frozenset(
    {
        "CAST",
        "TRY_CAST",
        "SAFE_CAST",
        "COALESCE",
        "NULLIF",
        "GREATEST",
        "LEAST",
        "EXISTS",
        "EXTRACT",
        "ROW",
        "ARRAY",
        "VALUES",
        "ANY",
        "ALL",
        "SOME",
        "GROUPING",
        "ROLLUP",
        "CUBE",
        "TRIM",
        "POSITION",
        "SUBSTRING",
        "OVERLAY",
        "CONVERT",
        "INTERVAL",
        "STRUCT",
        "IIF",
        "CASE",
        "FILTER",
        "OVER",
        "WITHIN",
    }
)
# Constructs written as calls that a target's grammar lacks although SYNTAX lists them.
LACKING_SYNTAX: dict[str, frozenset[str]] = {
    "sqlite": frozenset(
        {
            "GROUPING",
            "ROLLUP",
            "CUBE",
            "GREATEST",
            "LEAST",
            "TRY_CAST",
            "SAFE_CAST",
            "EXTRACT",
            "ARRAY",
            "STRUCT",
            "CONVERT",
            "POSITION",
            "OVERLAY",
        }
    ),
    "postgres": frozenset({"TRY_CAST", "SAFE_CAST", "IIF", "STRUCT", "CONVERT"}),
    "tsql": frozenset({"SAFE_CAST", "ARRAY", "STRUCT", "EXTRACT", "POSITION", "OVERLAY"}),
    "oracle": frozenset({"TRY_CAST", "SAFE_CAST", "IIF", "ARRAY", "STRUCT", "POSITION"}),
    "mysql": frozenset({"TRY_CAST", "SAFE_CAST", "IIF", "ARRAY", "STRUCT", "GROUPING SETS"}),
    "bigquery": frozenset({"TRY_CAST", "IIF", "CONVERT", "POSITION", "OVERLAY"}),
    "snowflake": frozenset({"SAFE_CAST", "IIF", "STRUCT", "CONVERT", "OVERLAY"}),
}
# Operators and clauses (by the keyword sqlglot writes) that a target does not have.
LACKING_OPERATORS: dict[str, tuple[tuple[str, str], ...]] = {
    "tsql": (("ILike", " ILIKE "), ("Qualify", "QUALIFY "), ("SimilarTo", " SIMILAR TO ")),
    "oracle": (("ILike", " ILIKE "), ("Qualify", "QUALIFY ")),
    "mysql": (("ILike", " ILIKE "), ("Qualify", "QUALIFY ")),
    "postgres": (("Qualify", "QUALIFY "),),
    "sqlite": (("Qualify", "QUALIFY "), ("GroupingSets", "GROUPING SETS")),
    "bigquery": (("SimilarTo", " SIMILAR TO "),),
}
_CALL = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_$]*)\s*\(")


@functools.cache
def known_functions(dialect: str) -> frozenset[str] | None:
    """Upper-cased function names of ``dialect``; None when nodus keeps no list for it."""
    path = resources.files("nodus_cli.sqltools") / "functions" / f"{dialect}.txt"
    if not path.is_file():
        return None
    names = {
        line.strip().upper()
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    return frozenset(names | _sqlglot_own_functions(dialect))


def checked_dialects() -> list[str]:
    folder = resources.files("nodus_cli.sqltools") / "functions"
    return sorted(p.name.removesuffix(".txt") for p in folder.iterdir() if p.name.endswith(".txt"))


def _sqlglot_own_functions(dialect: str) -> set[str]:
    """Functions sqlglot's parser for ``dialect`` defines itself (not inherited)."""
    from sqlglot.dialects.dialect import Dialect
    from sqlglot.parser import Parser

    parser = Dialect.get_or_raise(dialect).parser_class
    return {
        name
        for name, builder in parser.FUNCTIONS.items()
        if Parser.FUNCTIONS.get(name) is not builder
    }


def check_target(tree: exp.Expr, target: str, allow_unverified: bool, warnings: list[str]) -> None:
    """Refuse (or warn about) every call and operator of ``tree`` that ``target`` lacks."""
    known = known_functions(target)
    if known is None:
        return
    lacking_syntax = LACKING_SYNTAX.get(target, frozenset())
    unknown: dict[str, str] = {}
    for name, text in _calls(tree, target):
        if name in lacking_syntax or (name not in SYNTAX and name not in known):
            unknown.setdefault(name, text)
    from sqlglot import exp

    for class_name, keyword in LACKING_OPERATORS.get(target, ()):
        for node in tree.find_all(getattr(exp, class_name)):
            written = _written(node, target)
            if written is not None and keyword in f" {written.upper()} ":
                unknown.setdefault(keyword.strip(), written)
    for name, text in unknown.items():
        message = f"{target} has no {name} ({_short(text)})"
        if not allow_unverified:
            raise UnsupportedConstruct(
                f"{message}; rewrite it, or pass --allow-unverified to write it anyway"
            )
        warnings.append(f"{message}: written unverified")


def _calls(tree: exp.Expr, target: str) -> list[tuple[str, str]]:
    """(upper-cased name, text) of every function call as ``target`` writes it."""
    from sqlglot import exp

    found = []
    for node in tree.walk():
        if not isinstance(node, exp.Func | exp.Rollup | exp.Cube | exp.GroupingSets):
            continue
        if isinstance(node, exp.Connector):  # AND/OR/XOR: written as operators, never calls,
            continue  # and writing each of a long chain rewrote the chain: quadratic
        text = _written(node, target)
        match = _CALL.match(text or "")
        if match:
            found.append((match.group(1).upper(), text or ""))
    return found


def _written(node: exp.Expr, target: str) -> str | None:
    from sqlglot.errors import SqlglotError

    try:
        return node.sql(dialect=target)
    except SqlglotError:
        return None


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
