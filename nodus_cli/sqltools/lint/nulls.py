"""Rules about NULL: NOT IN over a nullable subquery or a list with NULL (NX001,
NX008) and = NULL comparisons (NX002)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from nodus_cli.sqltools.catalog import Catalog
from nodus_cli.sqltools.lint.rules import Hit

if TYPE_CHECKING:
    from sqlglot import exp


def not_in_nullable(statement: exp.Expr, catalog: Catalog | None) -> Iterator[Hit]:
    from sqlglot import exp

    for negation in statement.find_all(exp.Not):
        membership = negation.this
        if not isinstance(membership, exp.In):
            continue
        query = membership.args.get("query")
        subquery = query.this if isinstance(query, exp.Subquery) else query
        if not isinstance(subquery, exp.Select) or len(subquery.selects) != 1:
            continue
        selected = subquery.selects[0].unalias()
        if not isinstance(selected, exp.Column) or _excludes_nulls(subquery, selected):
            continue
        if catalog is not None and _declared_not_null(subquery, selected, catalog):
            continue
        yield Hit(
            "NX001",
            f"NOT IN (SELECT {selected.sql()} ...) is never true if {selected.sql()} is NULL "
            "in any row; use NOT EXISTS or filter the NULLs out",
            negation,
        )


def not_in_list_with_null(statement: exp.Expr) -> Iterator[Hit]:
    from sqlglot import exp

    for negation in statement.find_all(exp.Not):
        membership = negation.this
        if not isinstance(membership, exp.In) or membership.args.get("query") is not None:
            continue
        if any(isinstance(item, exp.Null) for item in membership.expressions):
            yield Hit(
                "NX008",
                f"{negation.sql()} is never true: x NOT IN (…, NULL) is NULL or false for "
                "every x; drop the NULL from the list",
                negation,
            )


def _excludes_nulls(select: exp.Select, column: exp.Column) -> bool:
    from sqlglot import exp

    where = select.args.get("where")
    if where is None:
        return False
    for check in where.find_all(exp.Not):
        inner = check.this
        if (
            isinstance(inner, exp.Is)
            and isinstance(inner.expression, exp.Null)
            and isinstance(inner.this, exp.Column)
            and inner.this.name.lower() == column.name.lower()
        ):
            return True
    return False


def _declared_not_null(select: exp.Select, column: exp.Column, catalog: Catalog) -> bool:
    from sqlglot import exp

    tables = [t.name.lower() for t in select.find_all(exp.Table)]
    return any((table, column.name.lower()) in catalog.not_null for table in tables)


def null_comparison(statement: exp.Expr) -> Iterator[Hit]:
    from sqlglot import exp

    for comparison in list(statement.find_all(exp.EQ, exp.NEQ)):
        left, right = comparison.this, comparison.expression
        if isinstance(left, exp.Null):
            left, right = right, left
        if not isinstance(right, exp.Null):
            continue
        negated = isinstance(comparison, exp.NEQ)
        wanted = "IS NOT NULL" if negated else "IS NULL"

        def fix(node: exp.Expr = comparison, value: exp.Expr = left, neg: bool = negated) -> None:
            replacement: exp.Expr = exp.Is(this=value.copy(), expression=exp.Null())
            if neg:
                replacement = exp.Not(this=replacement)
            node.replace(replacement)

        yield Hit(
            "NX002",
            f"{comparison.sql()} is never true (it is NULL); write {left.sql()} {wanted}",
            comparison,
            fix,
        )
