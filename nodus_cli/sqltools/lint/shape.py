"""Rules about a statement's columns and parts: SELECT * in a view (NX006), an unused
CTE (NX007), set operations whose sides differ in width (NX009)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from nodus_cli.sqltools.catalog import Catalog
from nodus_cli.sqltools.lint.rules import Fixer, Hit

if TYPE_CHECKING:
    from sqlglot import exp


def set_operation_column_count(statement: exp.Expr) -> Iterator[Hit]:
    from sqlglot import exp

    for operation in statement.find_all(exp.SetOperation):
        widths = [_width(operation.left), _width(operation.right)]
        if None in widths or widths[0] == widths[1]:
            continue
        yield Hit(
            "NX009",
            f"{operation.key.upper()} of {widths[0]} and {widths[1]} columns: the query fails "
            "(or, where an engine pads, misaligns them); select the same columns on each side",
            operation.right,
        )


def _width(query: exp.Expr) -> int | None:
    """Columns a query selects; None when a star or a nested set operation hides it."""
    from sqlglot import exp

    while isinstance(query, exp.Subquery):
        query = query.this
    if not isinstance(query, exp.Select):
        return None
    if any(
        isinstance(p, exp.Star) or (isinstance(p, exp.Column) and p.is_star) for p in query.selects
    ):
        return None
    return len(query.selects)


def star_in_view(statement: exp.Expr, catalog: Catalog | None, dialect: str) -> Iterator[Hit]:
    from sqlglot import exp

    if not isinstance(statement, exp.Create) or (statement.kind or "").upper() != "VIEW":
        return
    query = statement.expression
    if not isinstance(query, exp.Select):
        return
    for projection in query.selects:
        if not isinstance(projection, exp.Star) and not (
            isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)
        ):
            continue
        fix, replacement = _star_fix(query, projection, catalog, dialect)
        yield Hit(
            "NX006",
            "SELECT * in a view: the view's columns change when the table changes; "
            "list the columns",
            projection,
            fix,
            replacement,
        )


def _star_fix(
    query: exp.Select, star: exp.Expr, catalog: Catalog | None, dialect: str
) -> tuple[Fixer | None, str | None]:
    """Expand the star from the database's columns, in table then column order; the fix
    and the text that replaces the star."""
    from sqlglot import exp

    if catalog is None:
        return None, None
    qualifier = star.table.lower() if isinstance(star, exp.Column) else ""
    sources = [t for t in query.find_all(exp.Table) if t.parent_select is query]
    if qualifier:
        sources = [t for t in sources if t.alias_or_name.lower() == qualifier]
    if not sources or any(t.name.lower() not in catalog.tables for t in sources):
        return None, None
    names = [
        (t.alias_or_name if qualifier or len(sources) > 1 else None, column)
        for t in sources
        for column in catalog.tables[t.name.lower()]
    ]
    plain = [column for _table, column in names]
    if len(set(plain)) != len(plain):
        return None, None  # duplicate names: expanding would need aliases

    def fix() -> None:
        columns = [exp.column(column, table=table) for table, column in names]
        index = query.selects.index(star)
        query.set("expressions", query.selects[:index] + columns + query.selects[index + 1 :])

    text = ", ".join(exp.column(c, table=t).sql(dialect=dialect) for t, c in names)
    return fix, text


def unused_cte(statement: exp.Expr) -> Iterator[Hit]:
    from sqlglot import exp

    for with_ in statement.find_all(exp.With):
        if with_.args.get("recursive"):
            continue
        query = with_.parent
        if query is None:
            continue
        ctes = list(with_.expressions)
        for cte in ctes:
            name = cte.alias_or_name.lower()
            readers = [
                table
                for table in query.find_all(exp.Table)
                if table.name.lower() == name and not _inside(table, cte)
            ]
            if readers:
                continue

            def fix(node: exp.Expr = cte, owner: exp.Expr = with_) -> None:
                node.pop()
                if not owner.expressions:
                    owner.pop()

            yield Hit("NX007", f"CTE {cte.alias_or_name} is never read", cte, fix)


def _inside(node: exp.Expr, ancestor: exp.Expr) -> bool:
    parent = node.parent
    while parent is not None:
        if parent is ancestor:
            return True
        parent = parent.parent
    return False
