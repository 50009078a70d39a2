"""Lint: every rule fires on its bug and stays quiet on the fixed form; fixes keep columns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodus_cli.sqltools.catalog import read_catalog
from nodus_cli.sqltools.lint import LINT_RULES, fix_source, lint_source

CASES: dict[str, tuple[str, str]] = {
    "NX001": (
        "SELECT * FROM orders WHERE o_custkey NOT IN (SELECT c_custkey FROM customer)",
        "SELECT * FROM orders WHERE o_custkey NOT IN "
        "(SELECT c_custkey FROM customer WHERE c_custkey IS NOT NULL)",
    ),
    "NX002": (
        "SELECT o_orderkey FROM orders WHERE o_comment = NULL",
        "SELECT o_orderkey FROM orders WHERE o_comment IS NULL",
    ),
    "NX003": (
        "SELECT o_orderkey, n_name FROM orders, nation WHERE o_orderkey < 3",
        "SELECT o_orderkey, n_name FROM orders, customer, nation "
        "WHERE o_custkey = c_custkey AND c_nationkey = n_nationkey",
    ),
    "NX004": (
        "SELECT o_orderkey FROM orders LIMIT 5",
        "SELECT o_orderkey FROM orders ORDER BY o_orderkey LIMIT 5",
    ),
    "NX005": (
        "SELECT count(*) FROM logs WHERE date_trunc('day', time) = DATE '2024-01-01'",
        "SELECT count(*) FROM logs WHERE time >= DATE '2024-01-01' AND time < DATE '2024-01-02'",
    ),
    "NX006": (
        "CREATE VIEW recent AS SELECT * FROM orders",
        "CREATE VIEW recent AS SELECT o_orderkey, o_orderdate FROM orders",
    ),
    "NX007": (
        "WITH a AS (SELECT 1 AS x), b AS (SELECT 2 AS y) SELECT x FROM a",
        "WITH a AS (SELECT 1 AS x) SELECT x FROM a",
    ),
    "NX008": (
        "SELECT count(*) FROM logs WHERE NOT level IN ('info', NULL)",
        "SELECT count(*) FROM logs WHERE NOT level IN ('info', 'debug')",
    ),
    "NX009": (
        "SELECT a, b FROM t UNION ALL SELECT a FROM u",
        "SELECT a, b FROM t UNION ALL SELECT a, NULL FROM u",
    ),
}


def test_every_rule_has_a_case() -> None:
    assert set(CASES) == set(LINT_RULES)


@pytest.mark.parametrize("code", sorted(CASES))
def test_rule_fires_on_the_bug_and_not_on_the_fix(code: str) -> None:
    bad, good = CASES[code]
    found = [f for f in lint_source(bad).findings if f.code == code]
    assert len(found) == 1, lint_source(bad).findings
    assert found[0].line == 1 and found[0].column >= 1
    assert found[0].message
    assert not [f for f in lint_source(good).findings if f.code == code]


def test_key_and_time_columns_come_from_the_database(tpch_con: Any) -> None:
    catalog = read_catalog(tpch_con)
    noop = "SELECT count(*) FROM orders WHERE CAST(o_orderdate AS DATE) < DATE '1995-01-01'"
    assert not lint_source(noop, catalog=catalog).findings  # the cast is a no-op
    wrapped = "SELECT count(*) FROM orders WHERE year(o_orderdate) = 1995"
    assert [f.code for f in lint_source(wrapped, catalog=catalog).findings] == ["NX005"]


def test_locations_point_at_the_construct() -> None:
    sql = "SELECT 1;\n\nSELECT o_orderkey\nFROM orders\nWHERE o_comment = NULL"
    (finding,) = lint_source(sql).findings
    assert (finding.line, finding.column) == (5, 7)


def test_fixes_keep_columns_and_apply_only_when_safe() -> None:
    sql = (
        "WITH unused AS (SELECT 1), used AS (SELECT 2 AS a, 3 AS b)\n"
        "SELECT b, a FROM used, (SELECT 4 AS c) AS extra WHERE a = NULL"
    )
    result = fix_source(sql)
    assert result.fixed_sql is not None
    fixed = {f.code for f in result.findings if f.fixed}
    assert fixed == {"NX002", "NX003", "NX007"}
    again = lint_source(result.fixed_sql)
    assert not again.findings
    assert _columns(result.fixed_sql) == ["b", "a"]


def test_star_in_view_is_expanded_in_order_and_checked_by_execution(tpch_con: Any) -> None:
    catalog = read_catalog(tpch_con)
    result = fix_source("CREATE VIEW v AS SELECT * FROM nation", catalog=catalog, con=tpch_con)
    assert result.fixed_sql is not None and not result.refused_fixes
    assert result.fixed_sql == (
        "CREATE VIEW v AS SELECT n_nationkey, n_name, n_regionkey, n_comment FROM nation"
    )
    without_db = fix_source("CREATE VIEW v AS SELECT * FROM nation")
    assert without_db.fixed_sql is None  # no columns known: no fix offered


def _columns(sql: str) -> list[str]:
    import sqlglot

    return [s.alias_or_name for s in sqlglot.parse_one(sql, read="duckdb").selects]


names = st.sampled_from(["a", "b", "c", "d", "e"])


@settings(max_examples=60, deadline=None)
@given(st.lists(names, min_size=1, max_size=5, unique=True), st.booleans(), st.booleans())
def test_fix_never_reorders_output_columns(
    columns: list[str], null_compare: bool, cross: bool
) -> None:
    """Whatever the fixes touch, the output columns and their order stay."""
    projections = ", ".join(f"{c}" for c in columns)
    source = "(SELECT 1 AS a, 2 AS b, 3 AS c, 4 AS d, 5 AS e) AS s"
    joined = f"{source}, (SELECT 6 AS f) AS t" if cross else source
    where = " WHERE a = NULL" if null_compare else ""
    sql = f"WITH dead AS (SELECT 0) SELECT {projections} FROM {joined}{where}"
    result = fix_source(sql)
    assert result.fixed_sql is not None
    assert _columns(result.fixed_sql) == columns


def test_not_in_a_list_with_null_is_flagged_in_both_spellings() -> None:
    for sql in (
        "SELECT 1 FROM t WHERE NOT x IN (1, NULL)",
        "SELECT 1 FROM t WHERE x NOT IN (NULL)",
    ):
        assert [f.code for f in lint_source(sql).findings] == ["NX008"], sql
    assert not lint_source("SELECT 1 FROM t WHERE x IN (1, NULL)").findings


LAYOUT = """-- report: keep this comment
WITH unused AS (SELECT 1),
     used   AS (SELECT 2 AS a,   3 AS b)
select  b,a
from    used ,  (select 4 as c) as extra
where   a = NULL   -- trailing note
;

SELECT 1 WHERE NULL <> abs( 2 );
"""
LAYOUT_FIXED = """-- report: keep this comment
WITH used   AS (SELECT 2 AS a,   3 AS b)
select  b,a
from    used  CROSS JOIN  (select 4 as c) as extra
where   a IS NULL   -- trailing note
;

SELECT 1 WHERE abs( 2 ) IS NOT NULL;
"""


def test_a_fix_edits_only_its_span_and_keeps_the_rest_byte_identical() -> None:
    result = fix_source(LAYOUT)
    assert not result.refused_fixes
    assert result.fixed_sql == LAYOUT_FIXED
    assert {f.code for f in result.findings if f.fixed} == {"NX002", "NX003", "NX007"}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from([" ", "  ", "\n", "\n  ", "\t"]), min_size=8, max_size=8))
def test_in_place_fixes_keep_any_layout(gaps: list[str]) -> None:
    """Whatever the whitespace, a fix changes only its construct's text."""
    g = gaps
    sql = (
        f"WITH{g[0]}dead AS (SELECT 0),{g[1]}live AS (SELECT 1 AS a){g[2]}SELECT{g[3]}a"
        f"{g[4]}FROM live{g[5]}WHERE{g[6]}a ={g[7]}NULL"
    )
    result = fix_source(sql)
    assert not result.refused_fixes
    expected = (
        f"WITH{g[0]}live AS (SELECT 1 AS a){g[2]}SELECT{g[3]}a"
        f"{g[4]}FROM live{g[5]}WHERE{g[6]}a IS NULL"
    )
    assert result.fixed_sql == expected


def test_fix_with_a_database_lacking_the_tables_is_refused_naming_them(tpch_con: Any) -> None:
    from nodus_cli.errors import InputError

    catalog = read_catalog(tpch_con)
    with pytest.raises(InputError, match="no table weblogs, events"):
        fix_source(
            "SELECT * FROM weblogs JOIN events USING (id) JOIN nation USING (n_nationkey) "
            "WHERE level = NULL",
            catalog=catalog,
            con=tpch_con,
        )


@pytest.mark.usefixtures("tpch_home")
def test_cli_fix_with_db_lacking_the_tables_exits_two(cli: Any, tpch_home: Path) -> None:
    sql = "SELECT level FROM weblogs WHERE level = NULL"
    db = str(tpch_home / "store.duckdb")
    result = cli("sql", "lint", "-", "--fix", "--db", db, input=sql)
    assert result.exit_code == 2
    assert "weblogs" in result.stderr and result.stdout == ""


def test_cli_diff_prints_a_unified_diff_and_leaves_the_file(cli: Any, tmp_path: Path) -> None:
    query = tmp_path / "q.sql"
    query.write_text(LAYOUT)
    result = cli("sql", "lint", str(query), "--diff")
    assert result.exit_code == 1
    assert query.read_text() == LAYOUT
    assert result.stdout.startswith(f"--- {query}\n+++ {query}\n@@")
    assert "-where   a = NULL   -- trailing note\n" in result.stdout
    assert "+where   a IS NULL   -- trailing note\n" in result.stdout
    assert "NX002" in result.stderr


def test_cli_findings_are_lines_on_stdout_without_an_error_line(cli: Any, tmp_path: Path) -> None:
    query = tmp_path / "q.sql"
    query.write_text(CASES["NX008"][0])
    result = cli("sql", "lint", str(query))
    assert result.exit_code == 1
    assert result.stdout.startswith(f"{query}:1:")
    assert "NX008" in result.stdout
    assert "nodus: error" not in result.stderr


def test_cli_lint_reports_codes_and_exits_one(cli: Any, tmp_path: Path) -> None:
    query = tmp_path / "q.sql"
    query.write_text(CASES["NX004"][0] + ";\n")
    result = cli("sql", "lint", str(query), "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert [f["code"] for f in document["findings"]] == ["NX004"]
    assert document["remaining"] == 1
    clean = tmp_path / "ok.sql"
    clean.write_text(CASES["NX004"][1])
    assert cli("sql", "lint", str(clean)).exit_code == 0


def test_cli_fix_rewrites_the_file_and_keeps_the_column_order(cli: Any, tmp_path: Path) -> None:
    query = tmp_path / "q.sql"
    query.write_text("WITH gone AS (SELECT 1) SELECT 2 AS z, 1 AS y WHERE 1 = NULL;\n")
    result = cli("sql", "lint", str(query), "--fix", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["fixed"] == 2
    text = query.read_text()
    assert "gone" not in text and "IS NULL" in text
    assert _columns(text) == ["z", "y"]


@pytest.mark.usefixtures("tpch_home")
def test_cli_fix_with_db_checks_by_execution(cli: Any, tpch_home: Path) -> None:
    sql = "CREATE VIEW v AS SELECT * FROM region"
    result = cli("sql", "lint", "-", "--fix", "--db", str(tpch_home / "store.duckdb"), input=sql)
    assert result.exit_code == 0, result.stderr
    assert "r_regionkey" in result.stdout and "*" not in result.stdout
