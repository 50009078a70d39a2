"""Rules about rows read or returned by chance: LIMIT without ORDER BY (NX004) and a
function around a key or time column in WHERE (NX005)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from nodus_cli.sqltools.catalog import Catalog
from nodus_cli.sqltools.lint.rules import Hit

if TYPE_CHECKING:
    from sqlglot import exp


# Columns that are usually the sort or partition key of operational data.
TIME_COLUMN_NAMES = frozenset({"time", "ts", "timestamp", "date", "day", "event_time"})


TIME_TYPES = ("DATE", "TIMESTAMP", "TIME")


def limit_without_order(statement: exp.Expr) -> Iterator[Hit]:
    from sqlglot import exp

    for query in statement.find_all(exp.Select, exp.Union):
        limit = query.args.get("limit")
        if limit is None or query.args.get("order") is not None:
            continue
        if isinstance(query.parent, exp.Subquery) and isinstance(query.parent.parent, exp.Exists):
            continue  # EXISTS (... LIMIT 1) does not care which row
        yield Hit(
            "NX004",
            f"{limit.sql()} without ORDER BY returns arbitrary rows; add an ORDER BY",
            limit,
        )


def function_on_filter_column(
    statement: exp.Expr, catalog: Catalog | None, dialect: str
) -> Iterator[Hit]:
    from sqlglot import exp

    for select in statement.find_all(exp.Select):
        where = select.args.get("where")
        if where is None:
            continue
        aliases = {t.alias_or_name.lower(): t.name.lower() for t in select.find_all(exp.Table)}
        for predicate in where.find_all(exp.Predicate):
            if not isinstance(predicate, exp.Binary):
                continue
            for side, other in (
                (predicate.this, predicate.expression),
                (predicate.expression, predicate.this),
            ):
                if not isinstance(side, exp.Func) or isinstance(side, exp.AggFunc):
                    continue
                if any(isinstance(node, exp.Column) for node in other.walk()):
                    continue  # a join condition, not a filter against constants
                columns = list(side.find_all(exp.Column))
                if len(columns) != 1:
                    continue
                column = columns[0]
                why = _filter_column_reason(column, aliases, catalog, side, dialect)
                if why is None:
                    continue
                yield Hit(
                    "NX005",
                    f"{side.sql(dialect=dialect)} in WHERE wraps {why}: the filter cannot use "
                    f"it to skip data; compare the bare column with a range instead",
                    side,
                )


def _filter_column_reason(
    column: exp.Column,
    aliases: dict[str, str],
    catalog: Catalog | None,
    call: exp.Expr,
    dialect: str,
) -> str | None:
    from sqlglot import exp

    name = column.name.lower()
    table = aliases.get(column.table.lower()) if column.table else None
    if catalog is None:
        return f"the time column {name}" if name in TIME_COLUMN_NAMES else None
    current = catalog.column_type(table, name)
    if (
        isinstance(call, exp.Cast)
        and current is not None
        and call.to.sql(dialect="duckdb").upper() == current.upper()
    ):
        return None  # a no-op cast (nodus sql rewrite removes it)
    tables = [table] if table else [t for t, cols in catalog.tables.items() if name in cols]
    if any((t, name) in catalog.indexed for t in tables):
        return f"the key column {name}"
    if current is not None and current.upper().startswith(TIME_TYPES):
        return f"the {current.lower()} column {name}"
    return None
