"""Deeply nested and very long SQL: what DuckDB runs, the SQL tools handle; deeper is exit 2.

sqlglot recurses per level of nesting; under Python's default limit 50 nested
parentheses were an internal error (exit 70) in lint, transpile and rewrite.
"""

from __future__ import annotations

import sys
from typing import Any

import duckdb
import pytest

from nodus_cli.errors import EXIT_USAGE, InputError, UsageError
from nodus_cli.sqltools.lint import lint_source
from nodus_cli.sqltools.querylog import fingerprint
from nodus_cli.sqltools.rewrite import rewrite_sql
from nodus_cli.sqltools.transpile import transpile_sql


def nested(depth: int) -> str:
    return "SELECT " + "(" * depth + "1" + ")" * depth + " AS x"


# Depths beyond Python's default reach; rewriting and checking stay quadratic in the
# depth of subqueries and calls (500 nested subqueries: 28 s), so those are kept smaller.
SHAPES = {
    "parentheses": nested,
    "functions": lambda depth: "SELECT " + "coalesce(" * depth + "1" + ")" * depth + " AS x",
    "subqueries": lambda depth: (
        "SELECT * FROM " + "(SELECT x FROM " * depth + "(SELECT 1 AS x) t" + ") t" * depth
    ),
    "negations": lambda depth: "SELECT " + "NOT " * depth + "true AS x",
}


DEPTHS = {"parentheses": 500, "functions": 150, "subqueries": 100, "negations": 500}


@pytest.mark.parametrize("shape", SHAPES)
def test_every_sql_tool_takes_nesting_duckdb_itself_runs(shape: str) -> None:
    sql = SHAPES[shape](DEPTHS[shape])
    duckdb.connect().execute(sql).fetchall()  # the peer accepts it
    assert lint_source(sql, "duckdb") is not None
    for target in ("postgres", "sqlite", "tsql"):
        assert transpile_sql(sql, "duckdb", target).sql
    assert rewrite_sql(sql).rewritten
    assert fingerprint(sql)[1]


def test_nesting_deeper_than_the_tools_reach_is_an_input_error_and_limits_are_restored() -> None:
    limit = sys.getrecursionlimit()
    for tool in (
        lambda sql: lint_source(sql, "duckdb"),
        lambda sql: transpile_sql(sql, "duckdb", "postgres"),
        lambda sql: rewrite_sql(sql),
    ):
        with pytest.raises(InputError, match="nested too deeply"):
            tool(nested(20_000))
    assert sys.getrecursionlimit() == limit


def test_errors_raised_on_the_deep_thread_keep_their_type() -> None:
    with pytest.raises(UsageError, match="unknown SQL dialect"):
        transpile_sql("SELECT 1", "duckdb", "cobol")
    with pytest.raises(InputError, match="cannot parse"):
        lint_source("SELECT FROM WHERE (", "duckdb")


def test_a_long_and_chain_transpiles() -> None:
    """Each AND of a chain was written out whole to look for function calls: 1,000
    conditions took 18 s to transpile, 3,000 over a minute."""
    where = " AND ".join(f"level <> 'x{i}'" for i in range(3000))
    result = transpile_sql(f"SELECT * FROM logs WHERE {where}", "duckdb", "sqlite")
    assert result.sql.count(" AND ") == 2999


@pytest.mark.parametrize("command", [("lint",), ("transpile", "--to", "sqlite"), ("rewrite",)])
def test_cli_says_nested_too_deeply_with_exit_two(cli: Any, command: tuple[str, ...]) -> None:
    result = cli("sql", *command, "-", input=nested(20_000))
    assert result.exit_code == EXIT_USAGE
    assert result.stderr.startswith("nodus: error: SQL nested too deeply")
    assert cli("sql", *command, "-", input=nested(1000)).exit_code in (0, 1)
