"""SQL lint: rules that catch real bugs and slow patterns, with fixes that keep the columns.

Every rule has a stable code. A fix is offered only when it keeps the statement's output
columns and their order; ``fix_source`` checks that on the tree and, given a database
connection, by execution (equivalence fixes must also return the same rows).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nodus_cli.sqltools.catalog import Catalog
from nodus_cli.sqltools.parsing import parse_statements

if TYPE_CHECKING:
    from sqlglot import exp


@dataclass(frozen=True)
class LintRule:
    code: str
    name: str
    summary: str
    fix: str  # "equivalent" (same rows), "corrective" (fixes the bug: rows change), or "none"


LINT_RULES: dict[str, LintRule] = {
    rule.code: rule
    for rule in (
        LintRule(
            "NX001",
            "not-in-nullable-subquery",
            "NOT IN over a subquery whose column can be NULL is never true once a NULL appears",
            "none",
        ),
        LintRule(
            "NX002",
            "null-comparison",
            "= NULL and <> NULL are never true; use IS NULL / IS NOT NULL",
            "corrective",
        ),
        LintRule(
            "NX003",
            "implicit-cross-join",
            "tables listed with commas and no condition linking them multiply their rows",
            "equivalent",
        ),
        LintRule(
            "NX004",
            "limit-without-order-by",
            "LIMIT without ORDER BY returns arbitrary rows that may change from run to run",
            "none",
        ),
        LintRule(
            "NX005",
            "function-on-filter-column",
            "a function around a key, indexed or time column in WHERE defeats pruning",
            "none",
        ),
        LintRule(
            "NX006",
            "select-star-in-view",
            "SELECT * in a view changes the view's columns when the table changes",
            "equivalent",
        ),
        LintRule(
            "NX007",
            "unused-cte",
            "a CTE that nothing reads is dead code (and may still be computed)",
            "equivalent",
        ),
        LintRule(
            "NX008",
            "not-in-list-with-null",
            "NOT IN a list that holds NULL is never true",
            "none",
        ),
        LintRule(
            "NX009",
            "set-operation-column-count",
            "the sides of UNION, INTERSECT or EXCEPT select different numbers of columns",
            "none",
        ),
    )
}

# Columns that are usually the sort or partition key of operational data.
TIME_COLUMN_NAMES = frozenset({"time", "ts", "timestamp", "date", "day", "event_time"})
TIME_TYPES = ("DATE", "TIMESTAMP", "TIME")


@dataclass
class Finding:
    """One problem at one place; ``fixed`` once ``--fix`` applied its fix."""

    code: str
    message: str
    file: str
    line: int
    column: int
    fixable: bool = False
    fixed: bool = False

    @property
    def name(self) -> str:
        return LINT_RULES[self.code].name

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "code": self.code,
            "rule": self.name,
            "message": self.message,
            "fixable": self.fixable,
            "fixed": self.fixed,
        }


@dataclass
class LintResult:
    """The findings of one source and, with fixes, its new text."""

    file: str
    findings: list[Finding] = field(default_factory=list)
    fixed_sql: str | None = None
    refused_fixes: list[str] = field(default_factory=list)


Fixer = Callable[[], None]


@dataclass
class _Hit:
    code: str
    message: str
    node: exp.Expr
    fix: Fixer | None = None
    replacement: str | None = None  # the new text of the node's span, where not derivable


def lint_source(
    text: str,
    file: str = "-",
    *,
    dialect: str = "duckdb",
    catalog: Catalog | None = None,
) -> LintResult:
    """Lint every statement of ``text``; no fix is applied."""
    result = LintResult(file)
    for statement in parse_statements(text, dialect):
        for hit in _check(statement, catalog, dialect):
            line, column = _location(hit.node, text)
            result.findings.append(
                Finding(hit.code, hit.message, file, line, column, fixable=hit.fix is not None)
            )
    result.findings.sort(key=lambda f: (f.line, f.column, f.code))
    return result


def fix_source(
    text: str,
    file: str = "-",
    *,
    dialect: str = "duckdb",
    catalog: Catalog | None = None,
    con: Any = None,
) -> LintResult:
    """Lint and apply every safe fix; ``fixed_sql`` is the new text when anything changed.

    A fix that would change the output columns or their order is refused; with ``con``
    the fixed statement must also run with the same column names and types and, for an
    equivalence fix, return the same rows (a table missing from ``con`` is an error: the
    check cannot be done). A fix edits only the span it changes: the rest of the text
    stays byte for byte, and the edited text must parse to the fixed tree.
    """
    result = lint_source(text, file, dialect=dialect, catalog=catalog)
    if con is not None:
        _require_tables(text, dialect, catalog)
    current = text
    passed: set[tuple[str, str]] = set()  # (code, message) of fixes refused or failed
    while True:
        statements = parse_statements(current, dialect)
        found = _next_fixable(statements, catalog, dialect, passed)
        if found is None:
            break
        index, hit = found
        passed.add((hit.code, hit.message))
        statement = statements[index]
        before = statement.copy()
        hit_location = _location(hit.node, current)
        edit = _text_edit(hit, current, dialect)
        assert hit.fix is not None
        hit.fix()
        where = f"{file}:{hit_location[0]}:{hit_location[1]} {hit.code}"
        problem = _fix_problem(before, statement, hit.code, con, dialect)
        if problem is None and edit is None:
            problem = "cannot locate its text to edit in place"
        if problem is None and edit is not None:
            start, end, replacement = edit
            edited = current[:start] + replacement + current[end:]
            if not _parses_to(edited, statements, dialect):
                problem = "the edited text does not parse to the fixed statement"
            else:
                current = edited
                passed.discard((hit.code, hit.message))
                _mark_fixed(result.findings, hit)
                continue
        result.refused_fixes.append(f"{where}: {problem}")
    if current != text:
        result.fixed_sql = current
    return result


def _next_fixable(
    statements: list[exp.Expr],
    catalog: Catalog | None,
    dialect: str,
    passed: set[tuple[str, str]],
) -> tuple[int, _Hit] | None:
    for index, statement in enumerate(statements):
        for hit in _check(statement, catalog, dialect):
            if hit.fix is not None and (hit.code, hit.message) not in passed:
                return index, hit
    return None


def _mark_fixed(findings: list[Finding], hit: _Hit) -> None:
    for finding in findings:
        if not finding.fixed and finding.code == hit.code and finding.message == hit.message:
            finding.fixed = True
            return


def _parses_to(edited: str, expected: list[exp.Expr], dialect: str) -> bool:
    from nodus_cli.errors import InputError

    try:
        statements = parse_statements(edited, dialect)
    except InputError:
        return False
    return [s.sql(dialect=dialect, comments=False) for s in statements] == [
        s.sql(dialect=dialect, comments=False) for s in expected
    ]


def _require_tables(text: str, dialect: str, catalog: Catalog | None) -> None:
    """The execution check needs every table the SQL reads; name the missing ones."""
    from sqlglot import exp

    from nodus_cli.errors import InputError

    known = set(catalog.tables) if catalog is not None else set()
    missing: list[str] = []
    for statement in parse_statements(text, dialect):
        local = {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
        if isinstance(statement, exp.Create):
            local.add(statement.this.name.lower() if statement.this else "")
        for table in statement.find_all(exp.Table):
            name = table.name.lower()
            if (
                name
                and name not in local | known
                and name not in missing
                and not isinstance(table.parent, exp.Schema | exp.Create)
            ):
                missing.append(name)
    if missing:
        raise InputError(
            f"cannot check the fixes by execution: the database has no table "
            f"{', '.join(missing)} (give --db the database the SQL runs on, or fix without --db)"
        )


# --- in-place edits -------------------------------------------------------------------


def _opening() -> frozenset[Any]:
    from sqlglot.tokens import TokenType

    return frozenset({TokenType.L_PAREN, TokenType.SELECT, TokenType.WITH, TokenType.DISTINCT})


def _tokens(text: str, dialect: str) -> list[Any]:
    from sqlglot.dialects.dialect import Dialect

    return list(Dialect.get_or_raise(dialect).tokenize(text))


def _first_offset(node: exp.Expr) -> int | None:
    starts = [n.meta["start"] for n in node.walk() if n.meta and "start" in n.meta]
    return min(starts) if starts else None


def _last_offset(node: exp.Expr) -> int | None:
    ends = [n.meta["end"] for n in node.walk() if n.meta and "end" in n.meta]
    return max(ends) if ends else None


def _text_edit(hit: _Hit, text: str, dialect: str) -> tuple[int, int, str] | None:
    """(start, end, replacement) in ``text`` that makes the same change as ``hit.fix``."""
    from sqlglot.tokens import TokenType

    tokens = _tokens(text, dialect)
    first = _first_offset(hit.node)
    if first is None:
        return None
    at = next((i for i, token in enumerate(tokens) if token.start == first), None)
    if at is None:
        return None
    if hit.code == "NX002":
        return _null_comparison_edit(hit, text, tokens, at)
    if hit.code == "NX003":
        back = at - 1  # a derived table's first named token is inside its parentheses
        while back >= 0 and tokens[back].token_type in _opening():
            back -= 1
        if back < 0 or tokens[back].token_type != TokenType.COMMA:
            return None
        return tokens[back].start, tokens[back].end + 1, " CROSS JOIN"
    if hit.code == "NX006" and hit.replacement is not None:
        last = _last_offset(hit.node)
        return (first, last + 1, hit.replacement) if last is not None else None
    if hit.code == "NX007":
        return _cte_edit(tokens, at)
    return None


def _balanced_end(tokens: list[Any], first: int, last_offset: int) -> int:
    """The offset after the node that starts at token ``first`` and whose last named token
    ends at ``last_offset``: closing parentheses that belong to it are included."""
    from sqlglot.tokens import TokenType

    depth, index = 0, first
    while index < len(tokens) and tokens[index].start <= last_offset:
        depth += tokens[index].token_type == TokenType.L_PAREN
        depth -= tokens[index].token_type == TokenType.R_PAREN
        index += 1
    while depth > 0 and index < len(tokens) and tokens[index].token_type == TokenType.R_PAREN:
        depth -= 1
        index += 1
    return tokens[index - 1].end + 1


def _null_comparison_edit(
    hit: _Hit, text: str, tokens: list[Any], at: int
) -> tuple[int, int, str] | None:
    from sqlglot.tokens import TokenType

    comparisons = {TokenType.EQ, TokenType.NEQ}
    wanted = "IS NOT NULL" if hit.code == "NX002" and "NOT NULL" in hit.message else "IS NULL"
    last = _last_offset(hit.node)
    if (
        at >= 2
        and last is not None
        and tokens[at - 1].token_type in comparisons
        and tokens[at - 2].token_type == TokenType.NULL
    ):  # NULL = x: the named tokens are x's
        end = _balanced_end(tokens, at, last)
        return tokens[at - 2].start, end, f"{text[tokens[at].start : end]} {wanted}"
    for index in range(at, len(tokens) - 1):
        if tokens[index].token_type in comparisons and tokens[index + 1].token_type == (
            TokenType.NULL
        ):
            return tokens[index].start, tokens[index + 1].end + 1, wanted
    return None


def _cte_edit(tokens: list[Any], at: int) -> tuple[int, int, str] | None:
    """Remove a CTE from its name to its closing parenthesis, with one separating comma
    (and the WITH keyword when it was the only one)."""
    from sqlglot.tokens import TokenType

    index = at
    while index < len(tokens) and tokens[index].token_type != TokenType.L_PAREN:
        index += 1
    if (
        index < len(tokens)
        and index + 1 < len(tokens)
        and tokens[index - 1].token_type != (TokenType.ALIAS)
    ):
        # a column list ``name (a, b) AS (…)``: skip it to the body's parenthesis
        depth = 0
        while index < len(tokens):
            kind = tokens[index].token_type
            depth += kind == TokenType.L_PAREN
            depth -= kind == TokenType.R_PAREN
            index += 1
            if depth == 0:
                break
        while index < len(tokens) and tokens[index].token_type != TokenType.L_PAREN:
            index += 1
    depth = 0
    close = index
    while close < len(tokens):
        kind = tokens[close].token_type
        depth += kind == TokenType.L_PAREN
        depth -= kind == TokenType.R_PAREN
        if depth == 0:
            break
        close += 1
    if close >= len(tokens):
        return None
    start, end = tokens[at].start, tokens[close].end + 1
    after = close + 1
    if after < len(tokens) and tokens[after].token_type == TokenType.COMMA:
        following = tokens[after + 1].start if after + 1 < len(tokens) else tokens[after].end + 1
        return start, following, ""
    if at > 0 and tokens[at - 1].token_type == TokenType.COMMA:
        return tokens[at - 1].start, end, ""
    if at > 0 and tokens[at - 1].token_type == TokenType.WITH:
        following = tokens[after].start if after < len(tokens) else end
        return tokens[at - 1].start, following, ""
    return None


# --- checks ---------------------------------------------------------------------------


def _check(statement: exp.Expr, catalog: Catalog | None, dialect: str) -> Iterator[_Hit]:
    yield from _not_in_nullable(statement, catalog)
    yield from _null_comparison(statement)
    yield from _implicit_cross_join(statement, catalog)
    yield from _limit_without_order(statement)
    yield from _function_on_filter_column(statement, catalog, dialect)
    yield from _star_in_view(statement, catalog, dialect)
    yield from _unused_cte(statement)
    yield from _not_in_list_with_null(statement)
    yield from _set_operation_column_count(statement)


def _not_in_nullable(statement: exp.Expr, catalog: Catalog | None) -> Iterator[_Hit]:
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
        yield _Hit(
            "NX001",
            f"NOT IN (SELECT {selected.sql()} ...) is never true if {selected.sql()} is NULL "
            "in any row; use NOT EXISTS or filter the NULLs out",
            negation,
        )


def _not_in_list_with_null(statement: exp.Expr) -> Iterator[_Hit]:
    from sqlglot import exp

    for negation in statement.find_all(exp.Not):
        membership = negation.this
        if not isinstance(membership, exp.In) or membership.args.get("query") is not None:
            continue
        if any(isinstance(item, exp.Null) for item in membership.expressions):
            yield _Hit(
                "NX008",
                f"{negation.sql()} is never true: x NOT IN (…, NULL) is NULL or false for "
                "every x; drop the NULL from the list",
                negation,
            )


def _set_operation_column_count(statement: exp.Expr) -> Iterator[_Hit]:
    from sqlglot import exp

    for operation in statement.find_all(exp.SetOperation):
        widths = [_width(operation.left), _width(operation.right)]
        if None in widths or widths[0] == widths[1]:
            continue
        yield _Hit(
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


def _null_comparison(statement: exp.Expr) -> Iterator[_Hit]:
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

        yield _Hit(
            "NX002",
            f"{comparison.sql()} is never true (it is NULL); write {left.sql()} {wanted}",
            comparison,
            fix,
        )


def _implicit_cross_join(statement: exp.Expr, catalog: Catalog | None) -> Iterator[_Hit]:
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

            yield _Hit(
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


def _limit_without_order(statement: exp.Expr) -> Iterator[_Hit]:
    from sqlglot import exp

    for query in statement.find_all(exp.Select, exp.Union):
        limit = query.args.get("limit")
        if limit is None or query.args.get("order") is not None:
            continue
        if isinstance(query.parent, exp.Subquery) and isinstance(query.parent.parent, exp.Exists):
            continue  # EXISTS (... LIMIT 1) does not care which row
        yield _Hit(
            "NX004",
            f"{limit.sql()} without ORDER BY returns arbitrary rows; add an ORDER BY",
            limit,
        )


def _function_on_filter_column(
    statement: exp.Expr, catalog: Catalog | None, dialect: str
) -> Iterator[_Hit]:
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
                yield _Hit(
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


def _star_in_view(statement: exp.Expr, catalog: Catalog | None, dialect: str) -> Iterator[_Hit]:
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
        yield _Hit(
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


def _unused_cte(statement: exp.Expr) -> Iterator[_Hit]:
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

            yield _Hit("NX007", f"CTE {cte.alias_or_name} is never read", cte, fix)


def _inside(node: exp.Expr, ancestor: exp.Expr) -> bool:
    parent = node.parent
    while parent is not None:
        if parent is ancestor:
            return True
        parent = parent.parent
    return False


# --- fix checking ---------------------------------------------------------------------


def _output_names(statement: exp.Expr) -> list[str] | None:
    from sqlglot import exp

    query = statement.expression if isinstance(statement, exp.Create) else statement
    if not isinstance(query, exp.Query):
        return None
    return [projection.alias_or_name for projection in query.selects]


def _fix_problem(
    before: exp.Expr,
    after: exp.Expr,
    code: str,
    con: Any,
    dialect: str,
) -> str | None:
    """Why a fix is unsafe, or None: columns and order kept (and rows, when executable)."""
    from sqlglot import exp

    old_names, new_names = _output_names(before), _output_names(after)
    star_expanded = code == "NX006"
    if not star_expanded and old_names != new_names:
        return f"the fix would change the output columns {old_names} to {new_names}"
    if con is None:
        return None
    old_query = before.expression if isinstance(before, exp.Create) else before
    new_query = after.expression if isinstance(after, exp.Create) else after
    if not isinstance(old_query, exp.Query) or not isinstance(new_query, exp.Query):
        return None
    from nodus_cli.errors import InputError
    from nodus_cli.sqltools.catalog import execute, output_columns
    from nodus_cli.sqltools.compare import compare_results

    old_sql, new_sql = old_query.sql(dialect="duckdb"), new_query.sql(dialect="duckdb")
    try:
        old_columns = output_columns(con, old_sql)
    except InputError:
        return None  # the original does not run here (other tables): nothing to compare
    try:
        new_columns = output_columns(con, new_sql)
    except InputError as exc:
        return f"the fixed statement fails: {exc.message}"
    if old_columns != new_columns:
        return f"the fix changes the output columns {old_columns} to {new_columns}"
    if LINT_RULES[code].fix != "equivalent":
        return None
    old_rows, _ = execute(con, old_sql)
    new_rows, _ = execute(con, new_sql)
    difference = compare_results(old_rows, new_rows, ordered=bool(old_query.args.get("order")))
    return None if difference is None else f"the fix changes the result: {difference}"


def _location(node: exp.Expr, text: str) -> tuple[int, int]:
    """1-based line and column of the first token of ``node`` in ``text``."""
    starts = [n.meta["start"] for n in node.walk() if n.meta and "start" in n.meta]
    if not starts:
        parent = node.parent
        return _location(parent, text) if parent is not None else (1, 1)
    offset = min(starts)
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column
