"""`transpile_sql`: faithful output, loud errors for what the target cannot express."""

from __future__ import annotations

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
        ("SELECT c FROM (SELECT 1) AS t(c)", "sqlite", "Named columns"),
    ],
)
def test_unsupported_construct_is_an_error_naming_it(sql: str, target: str, construct: str) -> None:
    with pytest.raises(UnsupportedConstruct, match=construct) as caught:
        transpile_sql(sql, "duckdb", target)
    assert isinstance(caught.value, InputError)
    assert caught.value.exit_code == EXIT_USAGE


def test_float_width_change_is_warned() -> None:
    result = transpile_sql("SELECT CAST(a AS FLOAT) FROM t", "duckdb", "tsql")
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
