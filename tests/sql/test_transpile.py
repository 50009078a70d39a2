"""`transpile_sql`: faithful output, loud errors for what the target cannot express."""

from __future__ import annotations

from typing import Any

import pytest

from nodus_cli.errors import EXIT_USAGE, InputError, UsageError
from nodus_cli.sqltools.errors import UnsupportedConstruct
from nodus_cli.sqltools.transpile import TranspileResult, transpile_sql


def test_plain_query_is_written_in_the_target_dialect() -> None:
    result = transpile_sql("SELECT a FROM t LIMIT 3", "duckdb", "tsql")
    assert isinstance(result, TranspileResult)
    assert result.sql == "SELECT TOP 3 a FROM t"
    assert result.warnings == []


def test_several_statements_are_joined() -> None:
    result = transpile_sql("SELECT 1; SELECT 2", "duckdb", "postgres")
    assert result.statements == ["SELECT 1", "SELECT 2"]


@pytest.mark.parametrize(
    ("sql", "target", "construct"),
    [
        ("SELECT list_transform(xs, x -> x + 1) FROM t", "mysql", "lambda"),
        ("SELECT * FROM a ASOF JOIN b ON a.t >= b.t", "postgres", "ASOF JOIN"),
        ("SELECT c FROM (SELECT * FROM x) AS t(c)", "sqlite", "Named columns"),
        ("SELECT a, GROUPING(a) FROM t GROUP BY ROLLUP (a)", "sqlite", "has no GROUPING"),
    ],
)
def test_unsupported_construct_is_an_error_naming_it(sql: str, target: str, construct: str) -> None:
    with pytest.raises(UnsupportedConstruct, match=construct) as caught:
        transpile_sql(sql, "duckdb", target)
    assert isinstance(caught.value, InputError)
    assert caught.value.exit_code == EXIT_USAGE


FLOAT_CAST = "SELECT CAST(a AS FLOAT) FROM t"


def test_float_width_change_is_warned() -> None:
    result = transpile_sql(FLOAT_CAST, "duckdb", "tsql")
    assert any("4-byte" in w and "8-byte" in w for w in result.warnings)


def test_tsql_float_is_read_as_a_double() -> None:
    assert "DOUBLE" in transpile_sql("SELECT CAST(a AS FLOAT) FROM t", "tsql", "duckdb").sql


def test_varchar_max_is_warned_and_written_unbounded() -> None:
    result = transpile_sql("SELECT CAST(a AS VARCHAR(MAX)) FROM t", "tsql", "duckdb")
    assert "MAX" not in result.sql
    assert any("VARCHAR(MAX)" in w for w in result.warnings)


def test_unknown_dialect_and_bad_sql_are_usage_and_input_errors() -> None:
    with pytest.raises(UsageError, match="unknown SQL dialect"):
        transpile_sql("SELECT 1", "duckdb", "cobol")
    with pytest.raises(InputError, match="cannot parse"):
        transpile_sql("SELECT FROM WHERE (", "duckdb", "postgres")


def test_cli_transpile_prints_sql_and_warns_on_stderr(cli: Any) -> None:
    result = cli("sql", "transpile", "-", "--from", "duckdb", "--to", "tsql", input=FLOAT_CAST)
    assert result.exit_code == 0
    assert result.stdout.strip() == "SELECT CAST(a AS FLOAT) FROM t;"
    assert "8-byte" in result.stderr
    document = cli("sql", "transpile", "-", "--to", "tsql", "--json", input=FLOAT_CAST).json()
    assert isinstance(document, dict) and document["warnings"]


def test_cli_transpile_unsupported_construct_exits_two_naming_it(cli: Any) -> None:
    sql = "SELECT * FROM a ASOF JOIN b ON a.t >= b.t"
    result = cli("sql", "transpile", "-", "--to", "postgres", input=sql)
    assert result.exit_code == EXIT_USAGE
    assert "ASOF JOIN" in result.stderr
    assert result.stdout == ""


def test_round_trip_of_every_tpch_query_through_postgres_runs_the_same(
    tpch_con: Any, tpch_queries: dict[str, str]
) -> None:
    from nodus_cli.sqltools.catalog import execute
    from nodus_cli.sqltools.compare import compare_results

    for name, sql in tpch_queries.items():
        there = transpile_sql(sql, "duckdb", "postgres").sql
        back = transpile_sql(there, "postgres", "duckdb").sql
        expected, _ = execute(tpch_con, sql)
        actual, _ = execute(tpch_con, back)
        assert compare_results(expected, actual, ordered=False) is None, name


@pytest.mark.parametrize("target", ["prql", "dax"])
def test_dialects_sqlglot_only_reads_are_refused_as_targets(target: str) -> None:
    with pytest.raises(UnsupportedConstruct, match=f"cannot write {target}"):
        transpile_sql("SELECT 1", "duckdb", target)


def test_a_dropped_condition_is_named() -> None:
    """The round-trip check: anything missing after the trip is an error naming it."""
    import sqlglot

    from nodus_cli.sqltools.transpile import _refuse_lost_content

    original = sqlglot.parse_one("SELECT a FROM t WHERE b = 'x' LIMIT 5")
    with pytest.raises(UnsupportedConstruct, match=r"WHERE .*drops column b"):
        _refuse_lost_content(original, sqlglot.parse_one("SELECT a FROM t LIMIT 5"), "x")
    with pytest.raises(UnsupportedConstruct, match=r"LIMIT .*drops number 5"):
        _refuse_lost_content(original, sqlglot.parse_one("SELECT a FROM t WHERE b = 'x'"), "x")


def test_a_derived_column_list_becomes_aliases_on_sqlite() -> None:
    out = transpile_sql("SELECT c FROM (SELECT 1) AS t(c)", "duckdb", "sqlite").sql
    assert out == "SELECT c FROM (SELECT 1 AS c) AS t"


def test_sqlite_date_arithmetic_on_a_literal_follows_duckdb_month_ends() -> None:
    sql = "SELECT DATE '2024-01-31' + INTERVAL 1 MONTH, CAST(d AS DATE) - INTERVAL '90' DAY FROM t"
    out = transpile_sql(sql, "duckdb", "sqlite").sql
    assert out == "SELECT DATE('2024-02-29'), DATE(DATE(d), '-90 days') FROM t"


def test_order_by_an_alias_written_as_its_expression_is_not_a_drop() -> None:
    sql = "SELECT a, sum(b) AS total FROM t GROUP BY a ORDER BY total"
    assert "ORDER BY" in transpile_sql(sql, "duckdb", "tsql").sql
