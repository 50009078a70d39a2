"""The implicit cross join (NX003): tables listed with commas and no condition
linking them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from nodus_cli.sqltools.catalog import Catalog
from nodus_cli.sqltools.lint.rules import Hit

if TYPE_CHECKING:
    from sqlglot import exp


def implicit_cross_join(statement: exp.Expr, catalog: Catalog | None) -> Iterator[Hit]:
    from sqlglot import exp

    for select in statement.find_all(exp.Select):
        source = select.args.get("from_") or select.args.get("from")
        if source is None:
            continue
        comma_joins = [
            join
            for join in select.args.get("joins") or []
            if not join.args.get("on")
            and not join.args.get("using")
            and not join.kind
            and not join.side
            and not (join.text("method"))
            and isinstance(join.this, exp.Table | exp.Subquery)
        ]
        if not comma_joins:
            continue
        links = _linked_names(select, catalog)
        if {WILDCARD} in links:
            continue
        first = source.this.alias_or_name.lower()
        every = [first] + [
            join.this.alias_or_name.lower() for join in select.args.get("joins") or []
        ]
        reached = _reachable(first, every, links)
        for join in comma_joins:
            name = join.this.alias_or_name.lower()
            if name in reached:
                continue
            reached |= _reachable(name, every, links)

            def fix(node: exp.Join = join) -> None:
                node.set("kind", "CROSS")

            yield Hit(
                "NX003",
                f"{name} is joined with a comma and no condition links it to "
                f"{first}: every row pairs with every row; write "
                "CROSS JOIN if that is meant, else add the join condition",
                join,
                fix,
            )


def _reachable(start: str, names: list[str], links: list[set[str]]) -> set[str]:
    """Tables connected to ``start`` through join predicates (explicit joins link too)."""
    reached = {start}
    grew = True
    while grew:
        grew = False
        for pair in links:
            if pair & reached and not pair <= reached:
                reached |= pair
                grew = True
    return reached & set(names) | {start}


WILDCARD = "*"


def _linked_names(select: exp.Select, catalog: Catalog | None) -> list[set[str]]:
    """Sets of table names that one WHERE or ON predicate connects.

    An unqualified column is resolved through the catalog; when that is impossible a
    column-to-column predicate may link anything (``*``), so no finding is made.
    """
    from sqlglot import exp

    sources = {
        table.alias_or_name.lower(): table.name.lower()
        for table in select.find_all(exp.Table)
        if table.parent_select is select
    }
    pairs: list[set[str]] = []
    conditions = [select.args.get("where")] + [
        join.args.get("on") for join in select.args.get("joins") or []
    ]
    for condition in conditions:
        if condition is None:
            continue
        for predicate in condition.find_all(exp.Predicate):
            columns = list(predicate.find_all(exp.Column))
            if len(columns) < 2:
                continue
            tables = {_column_source(column, sources, catalog) for column in columns}
            if WILDCARD in tables:
                pairs.append({WILDCARD})
            elif len(tables) >= 2:
                pairs.append(tables)
    return pairs


def _column_source(column: exp.Column, sources: dict[str, str], catalog: Catalog | None) -> str:
    if column.table:
        return column.table.lower()
    if catalog is None:
        return WILDCARD
    owners = [
        alias
        for alias, table in sources.items()
        if column.name.lower() in catalog.tables.get(table, {})
    ]
    return owners[0] if len(owners) == 1 else WILDCARD
