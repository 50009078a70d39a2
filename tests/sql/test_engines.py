"""Transpiled queries run on the real engines: PostgreSQL (from .ci/run) and SQLite.

Every output that ``transpile`` writes (exit 0) must run on its engine; TPC-H outputs
must also return DuckDB's rows. A construct the engine lacks must be refused by name.
"""

from __future__ import annotations

import datetime
import sqlite3
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodus_cli.sqltools.compare import compare_results
from nodus_cli.sqltools.errors import UnsupportedConstruct
from nodus_cli.sqltools.known import known_functions
from nodus_cli.sqltools.transpile import transpile_sql
from tests.sql.engines import normalise, run_on


def _failures(
    queries: dict[str, str], duck: Any, target: str, con: Any, *, compare: bool
) -> tuple[list[str], list[str]]:
    """(failures, refusals): outputs that fail or differ on the engine; refused queries."""
    failures, refused = [], []
    for name, sql in queries.items():
        try:
            out = transpile_sql(sql, "duckdb", target).sql
        except UnsupportedConstruct as exc:
            refused.append(f"{name}: {exc.message}")
            continue
        try:
            rows = run_on(con, out)
        except Exception as exc:  # any engine error is the finding
            failures.append(f"{name}: exit 0, then {type(exc).__name__}: {exc}".splitlines()[0])
            continue
        if compare:
            expected = [normalise(row) for row in duck.execute(sql).fetchall()]
            difference = compare_results(expected, rows, ordered=False)
            if difference is not None:
                failures.append(f"{name}: rows differ from DuckDB: {difference}")
    return failures, refused


@pytest.mark.parametrize("target", ["postgres", "sqlite"])
def test_every_tpch_query_runs_and_matches_duckdb(
    target: str, tpch_queries: dict[str, str], tpch_duckdb: Any, request: pytest.FixtureRequest
) -> None:
    con = request.getfixturevalue(f"tpch_{target}")
    failures, refused = _failures(tpch_queries, tpch_duckdb, target, con, compare=True)
    assert not failures and not refused, failures + refused
    assert len(tpch_queries) == 22


@pytest.mark.parametrize("target", ["postgres", "sqlite"])
def test_every_tpcds_output_runs_or_is_refused_by_name(
    target: str, tpcds_queries: dict[str, str], tpcds_duckdb: Any, request: pytest.FixtureRequest
) -> None:
    con = request.getfixturevalue(f"tpcds_{target}")
    failures, refused = _failures(tpcds_queries, tpcds_duckdb, target, con, compare=False)
    assert not failures, failures
    assert len(tpcds_queries) == 99
    for message in refused:
        assert " has no " in message or "cannot express" in message, message
    if target == "postgres":
        assert not refused, refused


def test_the_sqlite_function_list_is_the_engines() -> None:
    con = sqlite3.connect(":memory:")
    engine = {row[0].upper() for row in con.execute("PRAGMA function_list")}
    assert engine <= known_functions("sqlite")  # type: ignore[operator]


@pytest.mark.usefixtures("postgres_available")
def test_the_postgres_function_list_is_the_engines(tpch_postgres: Any) -> None:
    engine = {
        row[0].upper()
        for row in tpch_postgres.execute(
            "SELECT DISTINCT proname FROM pg_proc p JOIN pg_namespace n ON n.oid = "
            "p.pronamespace WHERE nspname = 'pg_catalog' AND proname !~ '^_'"
        ).fetchall()
    }
    listed = known_functions("postgres")
    assert listed is not None
    assert engine <= listed


# --- DuckDB time functions on each engine ------------------------------------------------

TIME_TABLE = (
    "CREATE TABLE t AS SELECT DATE '2024-02-29' AS d, "
    "TIMESTAMP '2024-03-10 13:45:07' AS ts, 1710078307123 AS ms, 1710078307 AS s"
)
TIME_FUNCTIONS = [
    "year(d)",
    "month(d)",
    "day(d)",
    "dayofweek(d)",
    "dayofyear(d)",
    "quarter(d)",
    "extract(year FROM ts)",
    "extract(hour FROM ts)",
    "extract(minute FROM ts)",
    "extract(dow FROM d)",
    "epoch(ts)",
    "epoch_ms(ts)",
    "epoch_ms(ms)",
    "to_timestamp(s)",
    "make_date(2024, 2, 29)",
    "date_trunc('month', d)",
    "date_trunc('hour', ts)",
    "d + INTERVAL 1 DAY",
    "d - INTERVAL 1 MONTH",
    "ts + INTERVAL 2 HOUR",
    "date_diff('day', d, DATE '2024-03-10')",
    "strftime(ts, '%Y-%m-%d %H')",
    "CAST(ts AS DATE)",
]


@pytest.fixture(scope="module")
def time_engines(request: pytest.FixtureRequest) -> dict[str, Any]:
    import duckdb

    duck = duckdb.connect()
    duck.execute("SET TimeZone = 'UTC'")
    duck.execute(TIME_TABLE)
    engines: dict[str, Any] = {"duckdb": duck, "sqlite": sqlite3.connect(":memory:")}
    from tests.sql.engines import copy_to_sqlite

    copy_to_sqlite(duck, engines["sqlite"])
    request.getfixturevalue("postgres_available")
    pg = request.getfixturevalue("tpch_postgres")
    pg.execute("SET TimeZone = 'UTC'")
    pg.execute("DROP TABLE IF EXISTS t")
    pg.execute(
        "CREATE TABLE t AS SELECT DATE '2024-02-29' AS d, "
        "TIMESTAMP '2024-03-10 13:45:07' AS ts, 1710078307123 AS ms, 1710078307 AS s"
    )
    engines["postgres"] = pg
    return engines


def _same_time_value(expected: Any, actual: Any) -> bool:
    """Equal values, or the same instant written as text by one engine."""
    if compare_results([(expected,)], [(actual,)], ordered=True) is None:
        return True

    def text(value: Any) -> str:
        return str(value).replace("T", " ").removesuffix("+00:00").removesuffix(" 00:00:00")

    return text(expected) == text(actual)


@pytest.mark.parametrize("target", ["postgres", "sqlite"])
def test_each_duckdb_time_function_has_its_meaning_or_is_refused(
    target: str, time_engines: dict[str, Any]
) -> None:
    wrong = []
    for function in TIME_FUNCTIONS:
        sql = f"SELECT {function} AS v FROM t"
        expected = normalise(time_engines["duckdb"].execute(sql).fetchone())[0]
        try:
            out = transpile_sql(sql, "duckdb", target).sql
        except UnsupportedConstruct:
            continue
        try:
            actual = run_on(time_engines[target], out)[0][0]
        except Exception as exc:
            wrong.append(f"{function}: {out} fails: {exc}".splitlines()[0])
            continue
        if not _same_time_value(expected, actual):
            wrong.append(f"{function}: {out} gives {actual!r}, DuckDB {expected!r}")
    assert not wrong, wrong


def test_epoch_ms_of_a_timestamp_is_milliseconds_not_its_inverse() -> None:
    sql = "SELECT epoch_ms(CAST(t AS TIMESTAMP)) FROM x"
    assert "TO_TIMESTAMP" not in transpile_sql(sql, "duckdb", "postgres").sql
    with pytest.raises(UnsupportedConstruct, match="TIME_TO_UNIX"):
        transpile_sql(sql, "duckdb", "tsql")  # sqlglot has no T-SQL spelling: refused
    with pytest.raises(UnsupportedConstruct, match="epoch_ms"):
        transpile_sql("SELECT epoch_ms(time) FROM x", "duckdb", "postgres")


@pytest.mark.parametrize(
    ("sql", "construct"),
    [
        ("SELECT a FROM t WHERE a ILIKE 'x%'", "ILIKE"),
        ("SELECT ARRAY_AGG(b) FROM t", "ARRAY_AGG"),
        ("SELECT APPROX_QUANTILE(c, 0.5) FROM t", "APPROX_QUANTILE"),
        ("SELECT epoch_ms(1710078307123) FROM t", "UNIX_TO_TIME"),
    ],
)
def test_tsql_refuses_what_it_lacks_by_name(sql: str, construct: str) -> None:
    with pytest.raises(UnsupportedConstruct, match=construct):
        transpile_sql(sql, "duckdb", "tsql")
    allowed = transpile_sql(sql, "duckdb", "tsql", allow_unverified=True)
    assert any(construct in w for w in allowed.warnings)


def test_tsql_spells_deviations_its_own_way() -> None:
    sql = "SELECT stddev_samp(a), stddev_pop(a), var_samp(a), var_pop(a) FROM t"
    assert transpile_sql(sql, "duckdb", "tsql").sql == (
        "SELECT STDEV(a), STDEVP(a), VAR(a), VARP(a) FROM t"
    )


@pytest.mark.parametrize("target", ["snowflake", "bigquery", "oracle", "tsql", "mysql"])
def test_targets_without_an_engine_pass_the_tpch_queries_or_name_the_construct(
    target: str, tpch_queries: dict[str, str]
) -> None:
    for name, sql in tpch_queries.items():
        try:
            transpile_sql(sql, "duckdb", target)
        except UnsupportedConstruct as exc:
            assert " has no " in exc.message or "cannot express" in exc.message, name


def test_cli_allow_unverified_writes_with_a_warning_per_construct(cli: Any) -> None:
    sql = "SELECT ARRAY_AGG(b), APPROX_QUANTILE(c, 0.5) FROM t"
    refused = cli("sql", "transpile", "-", "--to", "tsql", input=sql)
    assert refused.exit_code == 2 and "ARRAY_AGG" in refused.stderr
    allowed = cli("sql", "transpile", "-", "--to", "tsql", "--allow-unverified", input=sql)
    assert allowed.exit_code == 0
    assert "ARRAY_AGG" in allowed.stderr and "APPROX_QUANTILE" in allowed.stderr


@settings(max_examples=60, deadline=None)
@given(
    st.dates(min_value=datetime.date(1990, 1, 1), max_value=datetime.date(2040, 12, 31)),
    st.integers(-30, 30),
    st.sampled_from(["DAY", "MONTH", "YEAR", "WEEK", "QUARTER"]),
    st.booleans(),
)
def test_date_arithmetic_on_sqlite_gives_duckdbs_date(
    day: datetime.date, amount: int, unit: str, literal: bool
) -> None:
    """Month ends included (Jan 31 + 1 month is Feb 28/29 in DuckDB)."""
    import duckdb

    base = f"DATE '{day.isoformat()}'" if literal else "CAST(d AS DATE)"
    sql = f"SELECT CAST({base} + INTERVAL '{amount}' {unit} AS DATE) AS v FROM t"
    duck = duckdb.connect()
    duck.execute(f"CREATE TABLE t AS SELECT DATE '{day.isoformat()}' AS d")
    expected = normalise(duck.execute(sql).fetchone())[0]
    lite = sqlite3.connect(":memory:")
    lite.execute("CREATE TABLE t (d DATE)")
    lite.execute("INSERT INTO t VALUES (?)", (day.isoformat(),))
    result = transpile_sql(sql, "duckdb", "sqlite")
    assert run_on(lite, result.sql)[0][0] == expected, result.sql
