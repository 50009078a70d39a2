"""Query rewrites that are proven by execution to return the same rows and not run slower.

Rules are sqlglot optimizer passes plus nodus's own, applied one after another so that
each rule's effect can be measured and a wrong one named. The default set leaves out
``unnest_subqueries``: on DuckDB it turns EXISTS and correlated subqueries into full-table
GROUP BYs that defeat DuckDB's own decorrelation (TPC-H q4, q17, q21 run several times
slower). ``verify_rewrite`` runs the original and every intermediate query, compares the
rows and times the final pair with interleaved runs; a rewrite that changes a result or
runs slower is dropped and the original returned.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nodus_cli.errors import InputError, UsageError
from nodus_cli.sqltools.catalog import Catalog, execute, output_columns, read_catalog
from nodus_cli.sqltools.compare import compare_results
from nodus_cli.sqltools.deep import deep_recursion
from nodus_cli.sqltools.parsing import check_dialect, parse_one
from nodus_cli.sqltools.timing import (
    DEAD_BAND,
    DEFAULT_BUDGET,
    DEFAULT_RUNS,
    NOT_SLOWER,
    measure_ratio,
    time_pair,
)

if TYPE_CHECKING:
    from sqlglot import exp

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Rule:
    """One rewrite step: a name users pass to ``--rules``, what it does, whether default."""

    name: str
    summary: str
    default: bool
    apply: Callable[[exp.Expr, RuleContext], exp.Expr]


@dataclass
class RuleContext:
    dialect: str
    catalog: Catalog | None


def _sqlglot_pass(module: str, function: str) -> Callable[[exp.Expr, RuleContext], exp.Expr]:
    """Call a sqlglot optimizer function with the keyword arguments it accepts."""

    def apply(tree: exp.Expr, ctx: RuleContext) -> exp.Expr:
        import importlib

        rule = getattr(importlib.import_module(f"sqlglot.optimizer.{module}"), function)
        accepted = inspect.signature(rule).parameters
        kwargs: dict[str, Any] = {}
        if "dialect" in accepted:
            kwargs["dialect"] = ctx.dialect
        if "schema" in accepted and ctx.catalog is not None:
            kwargs["schema"] = ctx.catalog.tables
        result: exp.Expr = rule(tree, **kwargs)
        return result

    return apply


# sqlglot's simplify compares the conditions of one AND/OR chain pair by pair: a rewrite
# of 3,000 ANDed comparisons took 33 s of CPU (8 s without simplify), 1,000 took 5 s.
# Past this width the rule is skipped and its step says why; 200 take under a second.
SIMPLIFY_MAX_CONDITIONS = 200


def _simplify(tree: exp.Expr, ctx: RuleContext) -> exp.Expr:
    from sqlglot import exp

    widest = max(
        (
            len(list(chain.flatten()))
            for chain in tree.find_all(exp.Connector)
            if type(chain.parent) is not type(chain)
        ),
        default=0,
    )
    if widest > SIMPLIFY_MAX_CONDITIONS:
        raise InputError(
            f"an AND/OR chain of {widest} conditions (simplify compares them pair by pair; "
            f"at most {SIMPLIFY_MAX_CONDITIONS})"
        )
    return _sqlglot_pass("simplify", "simplify")(tree, ctx)


def _canonicalize(tree: exp.Expr, ctx: RuleContext) -> exp.Expr:
    from sqlglot.optimizer.annotate_types import annotate_types
    from sqlglot.optimizer.canonicalize import canonicalize

    schema: dict[str, object] | None = dict(ctx.catalog.tables) if ctx.catalog else None
    return canonicalize(annotate_types(tree, schema=schema, dialect=ctx.dialect), ctx.dialect)


def _drop_noop_casts(tree: exp.Expr, ctx: RuleContext) -> exp.Expr:
    """``CAST(col AS T)`` where the column already has type T is the column itself."""
    from sqlglot import exp

    if ctx.catalog is None:
        return tree
    aliases = _table_aliases(tree)
    for cast in list(tree.find_all(exp.Cast)):
        column = cast.this
        if not isinstance(column, exp.Column) or cast.args.get("format"):
            continue
        table = aliases.get(column.table.lower(), column.table.lower()) if column.table else None
        current = ctx.catalog.column_type(table, column.name)
        if current is None:
            continue
        wanted = cast.to.sql(dialect="duckdb").upper()
        if wanted == current.upper():
            cast.replace(column.copy())
    return tree


def _table_aliases(tree: exp.Expr) -> dict[str, str]:
    from sqlglot import exp

    return {
        table.alias_or_name.lower(): table.name.lower()
        for table in tree.find_all(exp.Table)
        if table.name
    }


RULES: dict[str, Rule] = {
    rule.name: rule
    for rule in (
        Rule(
            "drop_noop_casts",
            "remove CAST(col AS T) when the column already has type T (needs a database)",
            True,
            _drop_noop_casts,
        ),
        Rule(
            "pushdown_projections",
            "drop columns that subqueries compute but nobody reads",
            True,
            _sqlglot_pass("pushdown_projections", "pushdown_projections"),
        ),
        Rule(
            "normalize",
            "rewrite boolean predicates into conjunctive normal form",
            True,
            _sqlglot_pass("normalize", "normalize"),
        ),
        Rule(
            "unnest_subqueries",
            "turn correlated and EXISTS subqueries into joins (slow on DuckDB: not default)",
            False,
            _sqlglot_pass("unnest_subqueries", "unnest_subqueries"),
        ),
        Rule(
            "pushdown_predicates",
            "move WHERE conditions into subqueries and joins (slow on DuckDB for TPC-H "
            "q2 and q20: not default)",
            False,
            _sqlglot_pass("pushdown_predicates", "pushdown_predicates"),
        ),
        Rule(
            "optimize_joins",
            "turn comma joins into explicit joins and order them by their conditions",
            True,
            _sqlglot_pass("optimize_joins", "optimize_joins"),
        ),
        Rule(
            "eliminate_subqueries",
            "turn derived tables into CTEs and deduplicate equal ones",
            True,
            _sqlglot_pass("eliminate_subqueries", "eliminate_subqueries"),
        ),
        Rule(
            "merge_subqueries",
            "merge derived tables and CTEs into the query that reads them",
            True,
            _sqlglot_pass("merge_subqueries", "merge_subqueries"),
        ),
        Rule(
            "eliminate_joins",
            "drop LEFT JOINs whose columns are never read",
            True,
            _sqlglot_pass("eliminate_joins", "eliminate_joins"),
        ),
        Rule(
            "eliminate_ctes",
            "drop CTEs nobody reads",
            True,
            _sqlglot_pass("eliminate_ctes", "eliminate_ctes"),
        ),
        Rule(
            "canonicalize",
            "make implicit type coercions explicit and remove redundant casts",
            False,
            _canonicalize,
        ),
        Rule(
            "simplify",
            "fold constants and simplify boolean and date arithmetic",
            True,
            _simplify,
        ),
    )
}


def resolve_rules(spec: str) -> list[str]:
    """``default``, ``all`` or a comma-separated list of rule names, in application order."""
    wanted = spec.strip().lower()
    if wanted == "default":
        return [name for name, rule in RULES.items() if rule.default]
    if wanted == "all":
        return list(RULES)
    names = [part.strip() for part in wanted.split(",") if part.strip()]
    unknown = [name for name in names if name not in RULES]
    if unknown or not names:
        raise UsageError(
            f"unknown rewrite rule(s) {', '.join(unknown) or spec!r} "
            f"(known: default, all, {', '.join(RULES)})"
        )
    return [name for name in RULES if name in names]


@dataclass
class RuleStep:
    """What one rule did: whether it changed the query and, when verified, its effect."""

    rule: str
    changed: bool
    sql: str  # the query after this rule, in the engine dialect (duckdb)
    error: str | None = None
    rows_equal: bool | None = None
    difference: str | None = None
    seconds: float | None = None
    # Against the query before this rule: one run each, re-timed over interleaved runs
    # when the whole rewrite turns out slower (see _slowest_step).
    time_ratio: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "changed": self.changed,
            "error": self.error,
            "rows_equal": self.rows_equal,
            "difference": self.difference,
            "time_ratio": _round(self.time_ratio),
        }


@dataclass
class RewriteReport:
    """The rewrite, and with ``verify`` the proof (or the reason it was refused)."""

    original: str
    rewritten: str  # what to use: the rewrite, or the original when refused
    dialect: str
    rules: list[str]
    steps: list[RuleStep] = field(default_factory=list)
    verified: bool = False
    kept: bool = True
    reason: str | None = None
    culprit: str | None = None
    ordered: bool = False
    rows: int | None = None
    runs: int = 0
    original_seconds: float | None = None
    rewritten_seconds: float | None = None
    candidate: str | None = None  # the refused rewrite, for the report
    baseline: str = ""  # the original as sqlglot writes it for DuckDB, before any rule
    ratio: float | None = None  # rewrite / original time: geometric mean over the pairs
    ratio_low: float | None = None  # the 95% confidence interval of that ratio
    ratio_high: float | None = None
    timing_seconds: float | None = None
    same_plan: bool = False  # DuckDB plans both the same: not slower without timing
    # The second timing a kept rewrite needs: ratio, interval low, interval high.
    confirmation: tuple[float, float, float] | None = None

    @property
    def time_ratio(self) -> float | None:
        if self.ratio is not None:
            return self.ratio
        if not self.original_seconds or self.rewritten_seconds is None:
            return None
        return self.rewritten_seconds / self.original_seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "dialect": self.dialect,
            "rules": self.rules,
            "verified": self.verified,
            "kept": self.kept,
            "reason": self.reason,
            "culprit": self.culprit,
            "ordered": self.ordered,
            "rows": self.rows,
            "runs": self.runs,
            "original_ms": _ms(self.original_seconds),
            "rewritten_ms": _ms(self.rewritten_seconds),
            "time_ratio": _round(self.time_ratio),
            "time_ratio_interval": (
                [_round(self.ratio_low), _round(self.ratio_high)]
                if self.ratio_low is not None
                else None
            ),
            "timing_seconds": _round(self.timing_seconds),
            "confirmation": (
                [_round(value) for value in self.confirmation] if self.confirmation else None
            ),
            "same_plan": self.same_plan,
            "steps": [step.as_dict() for step in self.steps],
            "sql": self.rewritten,
            "candidate": self.candidate,
        }


@deep_recursion
def rewrite_sql(
    sql: str,
    *,
    dialect: str = "duckdb",
    rules: list[str] | None = None,
    catalog: Catalog | None = None,
    con: Any = None,
) -> RewriteReport:
    """Apply ``rules`` (default set when None) to one query, step by step, unverified.

    Columns are qualified first (the other rules need it). A rule that fails on this
    query is skipped and its error recorded. With a connection ``con`` the schema comes
    from it (unless ``catalog`` is given) and unnamed outputs keep DuckDB's names.
    """
    from sqlglot.optimizer.qualify import qualify

    dialect = check_dialect(dialect)
    names = rules if rules is not None else resolve_rules("default")
    tree = parse_one(sql, dialect)
    from sqlglot import exp

    if not isinstance(tree, exp.Query):
        raise UsageError("nodus sql rewrite works on queries (SELECT, WITH, set operations)")
    names_out: list[str] | None = None
    if con is not None:
        catalog = catalog or read_catalog(con)
        engine_sql = tree.sql(dialect="duckdb")
        with contextlib.suppress(InputError):  # verification reports a query that fails
            names_out = [name for name, _kind in output_columns(con, engine_sql)]
    ctx = RuleContext(dialect, catalog)
    report = RewriteReport(sql.strip().rstrip(";").strip(), "", dialect, names)
    report.ordered = bool(tree.args.get("order"))
    previous = report.baseline = tree.sql(dialect="duckdb")
    try:
        current: exp.Expr = qualify(
            tree.copy(),
            dialect=dialect,
            schema=dict(catalog.tables) if catalog else None,
            validate_qualify_columns=catalog is not None,
            quote_identifiers=False,
            isolate_tables=True,
        )
    except Exception as exc:  # sqlglot raises many types; any failure means "cannot rewrite"
        raise InputError(f"cannot resolve the query's columns: {_one_line(exc)}") from None
    report.steps.append(_step("qualify", previous, current, tree, names_out))
    for name in names:
        before = report.steps[-1].sql
        try:
            candidate = RULES[name].apply(current.copy(), ctx)
            candidate.sql(dialect="duckdb")
        except Exception as exc:  # a sqlglot pass that cannot handle this query
            report.steps.append(RuleStep(name, False, before, error=_one_line(exc)))
            continue
        current = candidate
        report.steps.append(_step(name, before, current, tree, names_out))
    final = current.copy()
    _keep_output_names(tree, final, names_out)
    report.rewritten = _finish(final, dialect)
    return report


def _keep_output_names(original: exp.Expr, rewritten: exp.Expr, names: list[str] | None) -> None:
    """Keep the output names of unnamed expressions (qualify calls them ``_col_N``).

    With the names DuckDB gives the original's outputs, those become explicit aliases;
    without them the alias is dropped (a qualified expression may then be named
    differently, which ``--verify`` reports).
    """
    from sqlglot import exp

    if not isinstance(original, exp.Query) or not isinstance(rewritten, exp.Query):
        return
    if len(original.selects) != len(rewritten.selects):
        return
    pairs = zip(original.selects, rewritten.selects, strict=True)
    for index, (before, after) in enumerate(pairs):
        if isinstance(before, exp.Alias | exp.Column) or not isinstance(after, exp.Alias):
            continue
        if names is not None and index < len(names):
            after.set("alias", exp.to_identifier(names[index], quoted=True))
        else:
            after.replace(after.this)


def _step(
    name: str, before: str, tree: exp.Expr, original: exp.Expr, names: list[str] | None
) -> RuleStep:
    named = tree.copy()
    _keep_output_names(original, named, names)
    after = named.sql(dialect="duckdb")
    return RuleStep(name, after != before, after)


def _finish(tree: exp.Expr, dialect: str) -> str:
    from sqlglot.optimizer.qualify_columns import quote_identifiers

    return quote_identifiers(tree, dialect=dialect, identify=False).sql(
        dialect=dialect, pretty=True
    )


@deep_recursion
def verify_rewrite(
    report: RewriteReport,
    con: Any,
    *,
    runs: int = DEFAULT_RUNS,
    budget: float = DEFAULT_BUDGET,
    on_progress: Progress | None = None,
) -> RewriteReport:
    """Prove ``report``'s rewrite on ``con``: same rows after every rule, not slower overall.

    The verdict is taken on the 95% confidence interval of the time ratio over
    interleaved runs (see ``measure_ratio``): the rewrite is kept only when it is
    measurably faster (the whole interval at most ``1 - DEAD_BAND``); it is "slower"
    when the whole interval lies above ``NOT_SLOWER``. A query whose true ratio is near
    1 thus keeps the original every time, instead of flipping with the noise around a
    threshold; so do queries too fast to time, intervals left too wide by the budget
    and intervals from fewer than ``MIN_KEEP_BLOCKS`` blocks of runs ("no measurable
    difference"). A rewrite found faster is timed again from scratch and kept only if
    the second timing agrees: within one timing the machine's state (load, caches) is
    one sample, and a phase of it that favoured the rewrite kept TPC-H q22 (0.93
    [0.91, 0.95] once, 0.97-0.99 in four other verifications on a loaded machine). On a
    different result, an error or a slowdown the report keeps the original and names
    the rule.
    """
    note = on_progress or (lambda _message: None)
    original_sql = _engine_sql(report.original, report.dialect)
    note("running the original")
    expected, _cold = execute(con, original_sql)
    seconds = execute(con, original_sql)[1]  # warm, like the steps that follow
    columns = output_columns(con, original_sql)
    report.verified, report.rows, report.runs = True, len(expected), runs
    previous_seconds = seconds
    for step in report.steps:
        if not step.changed:
            continue
        note(f"checking rule {step.rule}")
        try:
            rows, step.seconds = execute(con, step.sql)
        except InputError as exc:
            step.error = exc.message
            return _refuse(
                report, step.rule, f"rule {step.rule} produced SQL that fails: {exc.message}"
            )
        step.difference = _column_difference(columns, output_columns(con, step.sql))
        if step.difference is None:
            step.difference = compare_results(expected, rows, ordered=report.ordered)
        step.rows_equal = step.difference is None
        step.time_ratio = step.seconds / previous_seconds if previous_seconds else None
        previous_seconds = step.seconds
        if step.difference is not None:
            return _refuse(
                report, step.rule, f"rule {step.rule} changed the result: {step.difference}"
            )
    last_step = report.steps[-1].sql if report.steps else original_sql
    if last_step == report.baseline:
        report.kept, report.reason = False, "no rule changed the query"
        report.rewritten = report.original
        return report
    final_sql = _engine_sql(report.rewritten, report.dialect)  # exactly what is printed
    if final_sql != last_step:
        rows, _seconds = execute(con, final_sql)
        difference = _column_difference(columns, output_columns(con, final_sql))
        difference = difference or compare_results(expected, rows, ordered=report.ordered)
        if difference is not None:
            return _refuse(report, None, f"the printed rewrite differs: {difference}")
    if _plan(con, original_sql) == _plan(con, final_sql):
        report.ratio = report.ratio_low = report.ratio_high = 1.0
        report.same_plan = True
        return report
    note("timing original and rewrite in interleaved runs")
    measured = measure_ratio(con, original_sql, final_sql, min_pairs=runs, budget=budget)
    report.runs = len(measured.timing.first)
    report.original_seconds, report.rewritten_seconds = measured.timing.medians
    report.ratio, report.ratio_low, report.ratio_high = measured.ratio, measured.low, measured.high
    report.timing_seconds = measured.seconds
    interval = f"{measured.ratio:.2f}x [{measured.low:.2f}, {measured.high:.2f}]"
    if measured.too_fast:
        return _refuse(
            report,
            None,
            f"too fast to time reliably (original {report.original_seconds * 1000:.1f} ms, "
            f"rewrite {report.rewritten_seconds * 1000:.1f} ms): kept the original",
        )
    culprit = None
    if measured.high > NOT_SLOWER:  # slower, or may be: name the rule most to blame
        note("timing each rule against the query before it, to name the slow one")
        slowest = _slowest_step(con, original_sql, report.steps, runs)
        culprit = slowest.rule if slowest else None
    if measured.low > NOT_SLOWER:
        return _refuse(
            report,
            culprit,
            f"slower: time ratio {interval} (95% interval, all of it above {NOT_SLOWER:.2f})",
        )
    if measured.high <= 1 - DEAD_BAND and not measured.may_keep:
        return _refuse(
            report,
            culprit,
            f"no measurable difference: time ratio {interval} from only {report.runs} "
            f"pairs of runs in the {budget:g} s budget (a longer --budget can decide): "
            "kept the original",
        )
    if measured.high > 1 - DEAD_BAND:
        maybe = " (possibly slower)" if culprit else ""
        return _refuse(
            report,
            culprit,
            f"no measurable difference{maybe}: time ratio {interval} (95% interval; a "
            f"rewrite is kept when all of it is at most {1 - DEAD_BAND:.2f}x): kept the "
            "original",
        )
    note("confirming in a second, independent timing")
    again = measure_ratio(con, original_sql, final_sql, min_pairs=runs, budget=budget)
    report.confirmation = (again.ratio, again.low, again.high)
    if again.too_fast or again.high > 1 - DEAD_BAND or not again.may_keep:
        return _refuse(
            report,
            None,
            f"no measurable difference: time ratio {interval} in a first timing, "
            f"{again.ratio:.2f}x [{again.low:.2f}, {again.high:.2f}] in a second (a rewrite "
            f"is kept when two independent timings each put all of the 95% interval at "
            f"most {1 - DEAD_BAND:.2f}x): kept the original",
        )
    return report


_ESTIMATES = re.compile(r"~\s*[\d,.]+\s*rows?|EC:\s*\d+")


def _plan(con: Any, sql: str) -> str | None:
    """DuckDB's physical plan of ``sql`` without its row estimates; None if unavailable."""
    import duckdb

    try:
        rows = con.execute(f"EXPLAIN {sql}").fetchall()
    except duckdb.Error:
        return None
    return _ESTIMATES.sub("", "\n".join(str(row[-1]) for row in rows))


def _column_difference(before: list[tuple[str, str]], after: list[tuple[str, str]]) -> str | None:
    if before == after:
        return None
    show = lambda columns: ", ".join(f"{name} {kind}" for name, kind in columns)  # noqa: E731
    return f"output columns ({show(before)}) became ({show(after)})"


def _slowest_step(con: Any, original_sql: str, steps: list[RuleStep], runs: int) -> RuleStep | None:
    """The changed step with the largest median time ratio over the query before it.

    Single runs of small queries are too noisy to name a culprit: a hiccup in one
    step's only run would blame it instead of the rule that really costs time.
    """
    previous, slowest, worst = original_sql, None, 0.0
    for step in steps:
        if not step.changed:
            continue
        before, after = time_pair(con, previous, step.sql, runs).medians
        step.time_ratio = after / before if before else None
        if step.time_ratio is not None and step.time_ratio > worst:
            slowest, worst = step, step.time_ratio
        previous = step.sql
    return slowest


def _refuse(report: RewriteReport, culprit: str | None, reason: str) -> RewriteReport:
    report.kept, report.culprit, report.reason = False, culprit, reason
    report.candidate = report.rewritten
    report.rewritten = report.original
    return report


def _engine_sql(sql: str, dialect: str) -> str:
    """The query as DuckDB runs it (verification always executes on DuckDB)."""
    if dialect == "duckdb":
        return sql
    return parse_one(sql, dialect).sql(dialect="duckdb")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def _round(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 3)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)
