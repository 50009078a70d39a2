"""Fixes as edits of the source text: the span of a node, replaced in place, so the
rest of the file (comments, layout) stays as written."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nodus_cli.sqltools.lint.rules import Hit

if TYPE_CHECKING:
    from sqlglot import exp


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


def text_edit(hit: Hit, text: str, dialect: str) -> tuple[int, int, str] | None:
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
    hit: Hit, text: str, tokens: list[Any], at: int
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
