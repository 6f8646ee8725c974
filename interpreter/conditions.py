"""The ``when`` language (docs/botspec.md §9): comparisons, all/any/not. Nothing else.

Conditions are JSON trees, never parsed text, so there is nothing to inject; the
only operations are deep equality, ordering of two numbers or two strings,
membership and containment.
"""

from __future__ import annotations

from collections.abc import Callable

from botkiln.interpreter.templates import Path, parse_path
from botkiln.interpreter.text import compare
from botkiln.interpreter.types import JSON


def _is_number(value: JSON) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_equal(a: JSON, b: JSON) -> bool:
    """Deep equality of two JSON values (§2.4); ``True`` never equals ``1``."""
    if _is_number(a) or _is_number(b):
        return _is_number(a) and _is_number(b) and a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(json_equal, a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(json_equal(v, b[k]) for k, v in a.items())
    return type(a) is type(b) and a == b


def _order(left: JSON, right: JSON, test: Callable[[int], bool]) -> bool:
    if _is_number(left) and _is_number(right):
        return test((left > right) - (left < right))
    if isinstance(left, str) and isinstance(right, str):
        return test(compare(left, right))
    return False


def _contains(left: JSON, right: JSON) -> bool:
    if isinstance(left, str):
        return isinstance(right, str) and right in left
    if isinstance(left, list):
        return any(json_equal(item, right) for item in left)
    return False


def _in(left: JSON, right: JSON) -> bool:
    return isinstance(right, list) and any(json_equal(left, item) for item in right)


OPERATORS: dict[str, Callable[[JSON, JSON], bool]] = {
    "eq": json_equal,
    "ne": lambda a, b: not json_equal(a, b),
    "lt": lambda a, b: _order(a, b, lambda c: c < 0),
    "le": lambda a, b: _order(a, b, lambda c: c <= 0),
    "gt": lambda a, b: _order(a, b, lambda c: c > 0),
    "ge": lambda a, b: _order(a, b, lambda c: c >= 0),
    "in": _in,
    "contains": _contains,
    "exists": lambda a, _b: a is not None,
}
"""Operator name -> test of (left value, right literal)."""


def evaluate(condition: JSON, lookup: Callable[[Path], JSON]) -> bool:
    """Evaluate a valid condition; ``lookup`` resolves a path to its value."""
    if isinstance(condition, bool):
        return condition
    if "all" in condition:
        return all(evaluate(c, lookup) for c in condition["all"])
    if "any" in condition:
        return any(evaluate(c, lookup) for c in condition["any"])
    if "not" in condition:
        return not evaluate(condition["not"], lookup)
    path = parse_path(condition["left"])
    left = lookup(path) if path is not None else None
    return OPERATORS[condition["op"]](left, condition.get("right"))
