"""Tree rewrites for constructs a target spells differently, applied before sqlglot writes it.

Found by running the transpiled TPC-H and TPC-DS queries on real SQLite and PostgreSQL:
where sqlglot writes a construct the engine rejects (``x - INTERVAL '90' DAY`` and
``EXTRACT(YEAR FROM x)`` on SQLite, an output alias inside an ORDER BY expression on
PostgreSQL), the construct is rewritten into one the engine has, with DuckDB's meaning;
where no faithful spelling exists the step raises ``UnsupportedConstruct`` naming it.
"""

from __future__ import annotations

import calendar
import datetime
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from nodus_cli.sqltools.errors import UnsupportedConstruct

if TYPE_CHECKING:
    from sqlglot import exp

Step = Callable[["exp.Expr", list[str]], "exp.Expr"]

POSTGRES_FAMILY = frozenset({"postgres", "redshift", "materialize", "risingwave"})


def prepare(tree: exp.Expr, source: str, target: str, warnings: list[str]) -> exp.Expr:
    """A copy of ``tree`` rewritten so that ``target`` runs it with ``source``'s meaning."""
    tree = tree.copy()
    if source == "duckdb":
        tree = _resolve_duckdb_overloads(tree)
    steps: list[Step] = []
    if target == "sqlite":
        steps = [_sqlite_interval_arithmetic, _sqlite_extract, _derived_column_lists,
                 _sqlite_set_operands, _fold_decimal_literals,
                 _order_by_output_names]  # fmt: skip
    elif target in {"tsql", "fabric"}:
        steps = [_tsql_statistics]
    elif target in POSTGRES_FAMILY:
        steps = [_aliases_in_order_expressions, _alias_derived_tables, _numeric_round,
                 _postgres_division]  # fmt: skip
    for step in steps:
        tree = step(tree, warnings)
    return tree


# --- DuckDB functions whose meaning depends on the argument's type ----------------------


def _value_type(node: exp.Expr) -> str | None:
    """The sqlglot type name of an expression, or None when it cannot be told."""
    from sqlglot.optimizer.annotate_types import annotate_types

    annotated = annotate_types(node.copy())
    kind = annotated.type
    if kind is None or kind.this.name in {"UNKNOWN", "NULL"}:
        return None
    return str(kind.this.name)


TEMPORAL = frozenset({"DATE", "DATETIME", "TIMESTAMP", "TIMESTAMPTZ", "TIMESTAMPLTZ",
                      "TIMESTAMPNTZ", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS"})  # fmt: skip


def _resolve_duckdb_overloads(tree: exp.Expr) -> exp.Expr:
    """``epoch_ms(x)`` is milliseconds since the epoch of a timestamp ``x``, and the
    timestamp of a millisecond count ``x``; sqlglot reads both as the second."""
    from sqlglot import exp

    for node in list(tree.find_all(exp.UnixToTime)):
        scale = node.args.get("scale")
        if scale is None or scale.name != "3" or node.args.get("zone"):
            continue
        kind = _value_type(node.this)
        if kind in TEMPORAL:
            epoch = exp.TimeToUnix(this=node.this.copy())
            millis = exp.Mul(this=epoch, expression=exp.Literal.number(1000))
            node.replace(exp.cast(exp.Floor(this=millis), "BIGINT"))
        elif kind is None:
            raise UnsupportedConstruct(
                f"epoch_ms({node.this.sql('duckdb')}) on a value of unknown type: DuckDB "
                "means milliseconds since the epoch for a timestamp and the timestamp of "
                "a millisecond count for a number; cast the argument to say which"
            )
    return tree


# --- SQLite ---------------------------------------------------------------------------

_SQLITE_UNITS = {"DAY": "days", "HOUR": "hours", "MINUTE": "minutes", "SECOND": "seconds",
                 "MONTH": "months", "YEAR": "years"}  # fmt: skip
_SCALED_UNITS = {"WEEK": (7, "DAY"), "QUARTER": (3, "MONTH")}


def _sqlite_interval_arithmetic(tree: exp.Expr, warnings: list[str]) -> exp.Expr:
    """``d ± INTERVAL 'n' UNIT`` becomes ``DATE(d, '±n units')`` (``DATETIME`` for a
    timestamp); with a literal date it is computed here, with DuckDB's month rules."""
    from sqlglot import exp

    def rewrite(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Add | exp.Sub):
            return node
        base, interval = node.this, node.expression
        if isinstance(base, exp.Interval) and isinstance(node, exp.Add):
            base, interval = interval, base
        if not isinstance(interval, exp.Interval):
            return node
        amount, unit = _interval_parts(interval)
        sign = -1 if isinstance(node, exp.Sub) else 1
        kind = _value_type(base)
        if kind not in TEMPORAL:
            raise UnsupportedConstruct(
                f"sqlite cannot express {_short(node.sql('duckdb'))}: date arithmetic on a "
                "value whose type (DATE or TIMESTAMP) is not known; cast it"
            )
        function = "DATE" if kind == "DATE" else "DATETIME"
        literal = _date_literal(base)
        if literal is not None and amount is not None and function == "DATE":
            shifted = _shift_date(literal, sign * amount, unit)
            return exp.func("DATE", exp.Literal.string(shifted.isoformat()))
        if unit in {"MONTH", "YEAR"} and amount is not None and function == "DATE":
            return _sqlite_month_shift(base, sign * amount * (12 if unit == "YEAR" else 1))
        if unit in {"MONTH", "YEAR"}:
            warnings.append(
                f"{_short(node.sql('duckdb'))}: sqlite rolls past a month's end "
                "(Jan 31 + 1 month is Mar 3) where DuckDB stops at its last day"
            )
        if amount is not None:
            modifier: exp.Expr = exp.Literal.string(f"{sign * amount:+d} {_SQLITE_UNITS[unit]}")
        else:
            count = interval.this.copy()
            if sign < 0:
                count = exp.Neg(this=exp.paren(count))
            modifier = exp.DPipe(
                this=exp.cast(count, "TEXT"), expression=exp.Literal.string(f" {unit.lower()}s")
            )
        return exp.func(function, base.copy(), modifier)

    return tree.transform(rewrite)


def _sqlite_month_shift(base: exp.Expr, months: int) -> exp.Expr:
    """``DATE(d, '+n months')`` rolls Jan 31 into March; DuckDB stops at the month's last
    day. The smaller of the rolled date and the target month's last day is DuckDB's."""
    from sqlglot import exp

    rolled = exp.func("DATE", base.copy(), exp.Literal.string(f"{months:+d} months"))
    last_day = exp.func(
        "DATE",
        base.copy(),
        exp.Literal.string("start of month"),
        exp.Literal.string(f"{months + 1:+d} months"),
        exp.Literal.string("-1 days"),
    )
    return exp.func("MIN", rolled, last_day)


def _interval_parts(interval: exp.Interval) -> tuple[int | None, str]:
    """The whole-number amount (None when not a literal) and unit of an interval."""
    from sqlglot import exp

    unit_node = interval.args.get("unit")
    text = interval.this.name if isinstance(interval.this, exp.Literal) else None
    unit = unit_node.name.upper() if unit_node is not None else ""
    if text is not None and not unit:  # INTERVAL '3 days'
        match = re.fullmatch(r"\s*([+-]?\d+)\s+([a-zA-Z]+?)s?\s*", text)
        if match:
            text, unit = match.group(1), match.group(2).upper()
    unit = unit.removesuffix("S") if unit.endswith("S") and unit != "S" else unit
    factor = 1
    if unit in _SCALED_UNITS:
        factor, unit = _SCALED_UNITS[unit]
    if unit not in _SQLITE_UNITS:
        raise UnsupportedConstruct(f"sqlite cannot express an interval of unit {unit or '?'}")
    if text is None:
        if factor != 1:
            raise UnsupportedConstruct(f"sqlite cannot express {interval.sql('duckdb')}")
        return None, unit
    try:
        return int(text) * factor, unit
    except ValueError:
        raise UnsupportedConstruct(
            f"sqlite cannot express {interval.sql('duckdb')}: a fractional interval"
        ) from None


def _date_literal(node: exp.Expr) -> datetime.date | None:
    from sqlglot import exp

    inner = node.this if isinstance(node, exp.Cast | exp.TsOrDsToDate | exp.DateStrToDate) else None
    if isinstance(node, exp.Cast) and not node.is_type("date"):
        return None
    if isinstance(inner, exp.Literal) and inner.is_string:
        try:
            return datetime.date.fromisoformat(inner.this)
        except ValueError:
            return None
    return None


def _shift_date(day: datetime.date, amount: int, unit: str) -> datetime.date:
    """DuckDB's date arithmetic: months and years stop at the target month's last day."""
    if unit == "DAY":
        return day + datetime.timedelta(days=amount)
    months = amount * (12 if unit == "YEAR" else 1)
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return datetime.date(year, month + 1, min(day.day, last))


_STRFTIME_PARTS = {"YEAR": "%Y", "MONTH": "%m", "DAY": "%d", "HOUR": "%H", "MINUTE": "%M",
                   "SECOND": "%S", "DOY": "%j", "DAYOFYEAR": "%j", "DOW": "%w",
                   "DAYOFWEEK": "%w", "EPOCH": "%s"}  # fmt: skip


def _sqlite_extract(tree: exp.Expr, warnings: list[str]) -> exp.Expr:
    """``EXTRACT(YEAR FROM x)`` and ``year(x)`` become ``CAST(STRFTIME('%Y', x) AS INTEGER)``."""
    from sqlglot import exp

    named = {exp.Year: "YEAR", exp.Month: "MONTH", exp.Day: "DAY", exp.DayOfWeek: "DOW",
             exp.DayOfYear: "DOY", exp.Quarter: "QUARTER"}  # fmt: skip

    def part_of(unit: str, value: exp.Expr) -> exp.Expr:
        if unit == "QUARTER":
            month = part_of("MONTH", value)
            return exp.paren(exp.Div(this=exp.paren(month + 2), expression=exp.Literal.number(3),
                                     typed=True))  # fmt: skip
        if unit not in _STRFTIME_PARTS:
            raise UnsupportedConstruct(f"sqlite cannot express EXTRACT({unit} FROM …)")
        text = exp.func("STRFTIME", exp.Literal.string(_STRFTIME_PARTS[unit]), value.copy())
        return exp.cast(text, "INTEGER")

    def rewrite(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Extract):
            return part_of(node.this.name.upper(), node.expression)
        for kind, unit in named.items():
            if type(node) is kind:
                return part_of(unit, node.this)
        return node

    return tree.transform(rewrite)


def _derived_column_lists(tree: exp.Expr, warnings: list[str]) -> exp.Expr:
    """``(SELECT …) AS t(a, b)`` becomes ``(SELECT … AS a, … AS b) AS t``."""
    from sqlglot import exp

    for alias in list(tree.find_all(exp.TableAlias)):
        columns = alias.args.get("columns")
        subquery = alias.parent
        if not columns or not isinstance(subquery, exp.Subquery):
            continue
        query = subquery.this
        first = query
        while isinstance(first, exp.SetOperation):
            first = first.this
        if not isinstance(first, exp.Select) or any(
            isinstance(p, exp.Star) or (isinstance(p, exp.Column) and p.is_star)
            for p in first.selects
        ):
            continue  # left for sqlglot, which names the construct it cannot write
        if len(first.selects) != len(columns):
            continue
        first.set(
            "expressions",
            [
                exp.alias_(projection.unalias().copy(), column.name)
                for projection, column in zip(first.selects, columns, strict=True)
            ],
        )
        alias.set("columns", None)
    return tree


def _sqlite_set_operands(tree: exp.Expr, warnings: list[str]) -> exp.Expr:
    """SQLite rejects a parenthesised operand of UNION/EXCEPT/INTERSECT: unwrap it, or make
    it a derived table when it has its own ORDER BY or LIMIT."""
    from sqlglot import exp

    for operation in list(tree.find_all(exp.SetOperation)):
        for key in ("this", "expression"):
            operand = operation.args.get(key)
            if not isinstance(operand, exp.Subquery) or operand.alias:
                continue
            inner = operand.this
            if isinstance(inner, exp.Select) and not any(
                inner.args.get(k) for k in ("order", "limit", "offset")
            ):
                operation.set(key, inner)
            else:
                operation.set(key, exp.select("*").from_(operand.subquery("_operand")))
    return tree


def _fold_decimal_literals(tree: exp.Expr, warnings: list[str]) -> exp.Expr:
    """``0.06 + 0.01`` is an exact DECIMAL in DuckDB and a double (0.06999…) in SQLite:
    sums, differences and products of literals are computed here, exactly."""
    import decimal

    from sqlglot import exp

    operations: dict[type[exp.Expr], str] = {
        exp.Add: "__add__",
        exp.Sub: "__sub__",
        exp.Mul: "__mul__",
    }

    def fold(node: exp.Expr) -> exp.Expr:
        method = operations.get(type(node))
        left, right = node.args.get("this"), node.args.get("expression")
        if method is None or left is None or right is None:
            return node
        if not (_is_decimal(left) and _is_decimal(right)):
            return node
        value = getattr(decimal.Decimal(left.name), method)(decimal.Decimal(right.name))
        return exp.Literal.number(format(value, "f"))

    return tree.transform(fold)


def _is_decimal(node: exp.Expr | None) -> bool:
    from sqlglot import exp

    return isinstance(node, exp.Literal) and node.is_number and "." in node.name


def _order_by_output_names(tree: exp.Expr, warnings: list[str]) -> exp.Expr:
    """DuckDB binds a bare ORDER BY name to the select list first, so ``ORDER BY item_id``
    means the output ``t.item_id``; SQLite looks at the tables and may find it ambiguous.
    The key is written as that output's qualified column."""
    from sqlglot import exp

    for select in list(tree.find_all(exp.Select)):
        order = select.args.get("order")
        if order is None:
            continue
        outputs: dict[str, list[exp.Column]] = {}
        for projection in select.selects:
            if isinstance(projection, exp.Column) and projection.table and not projection.is_star:
                outputs.setdefault(projection.name.lower(), []).append(projection)
        aliases = {p.alias.lower() for p in select.selects if isinstance(p, exp.Alias)}
        for key in order.expressions:
            column = key.this
            if not isinstance(column, exp.Column) or column.table:
                continue
            found = outputs.get(column.name.lower(), [])
            if len(found) == 1 and column.name.lower() not in aliases:
                column.replace(found[0].copy())
    return tree


# --- T-SQL ----------------------------------------------------------------------------


def _tsql_statistics(tree: exp.Expr, warnings: list[str]) -> exp.Expr:
    """T-SQL spells the sample and population deviations and variances STDEV, STDEVP, VAR
    and VARP; sqlglot writes them under the standard names T-SQL lacks."""
    from sqlglot import exp

    names: dict[type[exp.Expr], str] = {
        exp.StddevSamp: "STDEV",
        exp.Stddev: "STDEV",
        exp.StddevPop: "STDEVP",
        exp.Variance: "VAR",
        exp.VariancePop: "VARP",
    }

    def rename(node: exp.Expr) -> exp.Expr:
        name = names.get(type(node))
        if name is None:
            return node
        return exp.Anonymous(this=name, expressions=[node.this.copy()])

    return tree.transform(rename)


# --- PostgreSQL -----------------------------------------------------------------------


def _aliases_in_order_expressions(tree: exp.Expr, warnings: list[str]) -> exp.Expr:
    """PostgreSQL resolves an output alias in ORDER BY only as the whole key: inside an
    expression (``CASE WHEN total = 0 …``) the alias is replaced by what it names."""
    from sqlglot import exp

    for select in list(tree.find_all(exp.Select)):
        order = select.args.get("order")
        if order is None:
            continue
        aliases = {
            p.alias.lower(): p.this for p in select.selects if isinstance(p, exp.Alias) and p.alias
        }
        sources = _source_columns(select)
        for key in order.expressions:
            value = key.this
            if isinstance(value, exp.Column):
                continue
            for column in list(value.find_all(exp.Column)):
                name = column.name.lower()
                if column.table or name not in aliases or name in sources:
                    continue
                column.replace(exp.paren(aliases[name].copy()))
    return tree


def _source_columns(select: exp.Select) -> set[str]:
    """Column names the query's own tables may have (unknown: the selected bare columns)."""
    from sqlglot import exp

    return {p.name.lower() for p in select.selects if isinstance(p, exp.Column) and not p.is_star}


def _alias_derived_tables(tree: exp.Expr, warnings: list[str]) -> exp.Expr:
    """PostgreSQL before 16 requires an alias on every derived table in FROM."""
    from sqlglot import exp

    counter = 0
    for subquery in list(tree.find_all(exp.Subquery)):
        parent = subquery.parent
        if subquery.alias or not isinstance(parent, exp.From | exp.Join):
            continue
        counter += 1
        subquery.set("alias", exp.TableAlias(this=exp.to_identifier(f"_derived{counter}")))
    return tree


def _numeric_round(tree: exp.Expr, warnings: list[str]) -> exp.Expr:
    """PostgreSQL has ``round(numeric, int)`` only: a double is rounded as a NUMERIC."""
    from sqlglot import exp

    for node in list(tree.find_all(exp.Round)):
        if node.args.get("decimals") is None or _value_type(node.this) in {"DECIMAL"}:
            continue
        node.set("this", exp.cast(node.this.copy(), "DECIMAL"))
    return tree


def _postgres_division(tree: exp.Expr, warnings: list[str]) -> exp.Expr:
    """PostgreSQL raises on a division by zero, where DuckDB gives Infinity or NaN: the
    divisor becomes ``NULLIF(y, 0)`` so that the query runs (with NULL there)."""
    from sqlglot import exp

    for node in list(tree.find_all(exp.Div)):
        divisor = node.expression
        if divisor.is_number and divisor.to_py() != 0:
            continue
        if isinstance(divisor, exp.Nullif):
            continue
        node.set("expression", exp.Nullif(this=divisor.copy(), expression=exp.Literal.number(0)))
        warnings.append(
            f"{_short(node.sql('duckdb'))}: where the divisor is 0 postgres gives NULL "
            "(DuckDB gives Infinity or NaN)"
        )
    return tree


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
