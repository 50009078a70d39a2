"""Linting and fixing a source: every rule over every statement, and each fix kept
only when the statement keeps its columns (and rows, given a connection)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from nodus_cli.sqltools.catalog import Catalog
from nodus_cli.sqltools.deep import deep_recursion
from nodus_cli.sqltools.lint.edits import text_edit
from nodus_cli.sqltools.lint.joins import implicit_cross_join
from nodus_cli.sqltools.lint.nulls import not_in_list_with_null, not_in_nullable, null_comparison
from nodus_cli.sqltools.lint.pruning import function_on_filter_column, limit_without_order
from nodus_cli.sqltools.lint.rules import LINT_RULES, Finding, Hit, LintResult
from nodus_cli.sqltools.lint.shape import set_operation_column_count, star_in_view, unused_cte
from nodus_cli.sqltools.parsing import parse_statements

if TYPE_CHECKING:
    from sqlglot import exp


@deep_recursion
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


@deep_recursion
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
        edit = text_edit(hit, current, dialect)
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
) -> tuple[int, Hit] | None:
    for index, statement in enumerate(statements):
        for hit in _check(statement, catalog, dialect):
            if hit.fix is not None and (hit.code, hit.message) not in passed:
                return index, hit
    return None


def _mark_fixed(findings: list[Finding], hit: Hit) -> None:
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


def _check(statement: exp.Expr, catalog: Catalog | None, dialect: str) -> Iterator[Hit]:
    yield from not_in_nullable(statement, catalog)
    yield from null_comparison(statement)
    yield from implicit_cross_join(statement, catalog)
    yield from limit_without_order(statement)
    yield from function_on_filter_column(statement, catalog, dialect)
    yield from star_in_view(statement, catalog, dialect)
    yield from unused_cte(statement)
    yield from not_in_list_with_null(statement)
    yield from set_operation_column_count(statement)


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
