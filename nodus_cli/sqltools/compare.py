"""Result equivalence for verified rewrites: multisets or sequences, floats with tolerance.

NULL equals NULL and NaN equals NaN; floats (and a float against a DECIMAL) match within a
relative tolerance, because a rewrite may legitimately sum in a different order.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Sequence
from typing import Any

REL_TOLERANCE = 1e-9
ABS_TOLERANCE = 1e-12
SORT_DIGITS = 6  # significant digits of a float in the sort key of a multiset comparison

Row = Sequence[Any]


def values_equal(left: Any, right: Any) -> bool:
    """One cell against another with the documented NULL, NaN and float rules."""
    if left is None or right is None:
        return left is None and right is None
    if _is_number(left) and _is_number(right):
        if isinstance(left, int | decimal.Decimal) and isinstance(right, int | decimal.Decimal):
            return bool(left == right)
        a, b = float(left), float(right)
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=REL_TOLERANCE, abs_tol=ABS_TOLERANCE)
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(map(values_equal, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(values_equal(left[k], right[k]) for k in left)
    return bool(left == right)


def rows_equal(left: Row, right: Row) -> bool:
    return len(left) == len(right) and all(map(values_equal, left, right))


def compare_results(expected: Sequence[Row], actual: Sequence[Row], *, ordered: bool) -> str | None:
    """None when the results match, else a short description of the first difference."""
    if len(expected) != len(actual):
        return f"{len(expected)} rows became {len(actual)}"
    if ordered:
        left, right = list(expected), list(actual)
    else:
        left, right = sorted(expected, key=_sort_key), sorted(actual, key=_sort_key)
    for index, (a, b) in enumerate(zip(left, right, strict=True)):
        if not rows_equal(a, b):
            where = f"row {index + 1}" if ordered else "a row"
            return f"{where} differs: {_show(a)} became {_show(b)}"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | decimal.Decimal) and not isinstance(value, bool)


def _sort_key(row: Row) -> tuple[tuple[int, Any], ...]:
    return tuple(_cell_key(value) for value in row)


def _cell_key(value: Any) -> tuple[int, Any]:
    """Comparable across rows: a rank per kind, floats rounded so near-equal ones sort alike."""
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if _is_number(value):
        number = float(value)
        if math.isnan(number):
            return (3, 0)
        return (2, float(f"{number:.{SORT_DIGITS}g}"))
    if isinstance(value, str):
        return (4, value)
    return (5, repr(value))


def _show(row: Row, width: int = 120) -> str:
    text = repr(tuple(row))
    return text if len(text) <= width else text[: width - 1] + "…"
