"""SQL lint: rules that catch real bugs and slow patterns, with fixes that keep the columns.

Every rule has a stable code. A fix is offered only when it keeps the statement's output
columns and their order; ``fix_source`` checks that on the tree and, given a database
connection, by execution (equivalence fixes must also return the same rows).

``rules`` lists the rules; one module per group checks them (``nulls``, ``joins``,
``pruning``, ``shape``); ``edits`` turns a fix into a text edit and ``engine`` runs
everything over a source.
"""

from nodus_cli.sqltools.lint.engine import fix_source, lint_source
from nodus_cli.sqltools.lint.rules import LINT_RULES, Finding, LintResult, LintRule

__all__ = ["LINT_RULES", "Finding", "LintResult", "LintRule", "fix_source", "lint_source"]
