"""The lint rules: codes, names and what each catches; a finding and a hit of one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
class Hit:
    code: str
    message: str
    node: exp.Expr
    fix: Fixer | None = None
    replacement: str | None = None  # the new text of the node's span, where not derivable
