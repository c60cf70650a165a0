"""The ``where`` filter language of event entries, goals, event waits and event conditions.

A filter maps a dotted property path to a test; every test must hold::

    {"cart.total": {"gte": 1000}, "category": {"in": ["pizza", "sushi"]}, "first": true}

A test is a literal (equality) or an object with exactly one operator:
``eq``, ``ne``, ``gt``, ``gte``, ``lt``, ``lte``, ``in``, ``not_in``,
``exists`` (true/false), ``contains`` (substring of a string, item of a list,
key of an object). To compare with an object literal, write ``{"eq": {...}}``.

Semantics, chosen so that a filter never raises at run time:

- Numbers compare numerically, also a numeric string against a number
  (``"1200"`` ≥ ``1000``); two strings compare as ISO dates when both are
  dates or datetimes (a date against a datetime compares the dates, so
  ``"2026-03-01"`` equals ``"2026-03-01T10:00:00Z"``), else as text; two
  strings that are both numbers compare numerically for ``gt``/``gte``/``lt``/
  ``lte`` but as text for equality (``"007"`` is not ``"7"``).
  ``true``/``false`` equal only booleans (never 1/0).
- A type mismatch (a list against a number, text against a number, text that
  is not a date against a date) is simply false.
- A missing path satisfies only ``{"exists": false}`` and ``{"ne": …}``
  (not ``not_in``: a filter on a property speaks about events that have it);
  a present ``null`` counts as missing for ``exists``.
- Paths are dotted keys (``cart.total``); a numeric segment indexes a list
  (``items.0.sku``). A leading ``properties.`` is accepted for event
  properties (``properties.first`` = ``first``) unless the data itself has a
  ``properties`` key.
- An invalid filter (see :func:`check_where`) matches nothing; validation
  reports it before a flow is saved.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

__all__ = ["OPERATORS", "MISSING", "matches", "check_where", "resolve", "compare"]

OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "exists", "contains")
_ORDERING = ("gt", "gte", "lt", "lte")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: What :func:`resolve` returns for a path that is not there.
MISSING: Any = _Missing()


def resolve(data: Any, path: str, *, prefix: str = "properties") -> Any:
    """The value at a dotted ``path`` in ``data``, or :data:`MISSING`.

    A leading ``<prefix>.`` is skipped when ``data`` has no such key, so
    ``properties.cart_id`` and ``cart_id`` name the same event property.
    """
    parts = path.split(".")
    if parts[0] == prefix and len(parts) > 1 and isinstance(data, Mapping) and prefix not in data:
        parts = parts[1:]
    value = data
    for part in parts:
        if isinstance(value, Mapping):
            if part not in value:
                return MISSING
            value = value[part]
        elif isinstance(value, list) and part.isdigit():
            index = int(part)
            if index >= len(value):
                return MISSING
            value = value[index]
        else:
            return MISSING
    return value


def _number(x: Any) -> Decimal | None:
    if isinstance(x, bool):
        return None
    if isinstance(x, (int, Decimal)):
        return Decimal(x)
    if isinstance(x, float):
        return Decimal(repr(x)) if x == x and x not in (float("inf"), float("-inf")) else None
    if isinstance(x, str) and x.strip():
        try:
            d = Decimal(x.strip())
        except InvalidOperation:
            return None
        return d if d.is_finite() else None
    return None


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, Decimal)) and not isinstance(x, bool)


def _moment(x: Any) -> date | datetime | None:
    """An ISO date or datetime string as a date / aware datetime (naive = UTC), else None."""
    if not isinstance(x, str) or not _DATE.match(x):
        return None
    try:
        if len(x) == 10:
            return date.fromisoformat(x)
        moment = datetime.fromisoformat(x)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _dates(a: Any, b: Any) -> tuple[Any, Any] | None:
    """Both values as comparable dates (date against datetime compares dates), or None."""
    x, y = _moment(a), _moment(b)
    if x is None or y is None:
        return None
    if isinstance(x, datetime) and isinstance(y, datetime):
        return x, y
    return (x.date() if isinstance(x, datetime) else x), (y.date() if isinstance(y, datetime) else y)


def _equal(value: Any, expected: Any) -> bool:
    if isinstance(value, bool) or isinstance(expected, bool):
        return type(value) is type(expected) and value == expected
    if _is_number(value) or _is_number(expected):
        a, b = _number(value), _number(expected)
        return a is not None and b is not None and a == b
    if isinstance(value, str) and isinstance(expected, str):
        if value == expected:
            return True
        both = _dates(value, expected)
        return both is not None and both[0] == both[1]
    return type(value) is type(expected) and value == expected


def _order(value: Any, expected: Any) -> int | None:
    """-1/0/1 comparing ``value`` to ``expected``, or None when they do not compare."""
    if isinstance(value, bool) or isinstance(expected, bool):
        return None
    a, b = _number(value), _number(expected)
    if a is not None and b is not None:
        return (a > b) - (a < b)
    if isinstance(value, str) and isinstance(expected, str):
        both = _dates(value, expected)
        if both is not None:
            x, y = both
        elif _moment(value) is None and _moment(expected) is None:
            x, y = value, expected
        else:
            return None  # a date against text that is not a date: a type mismatch
        return (x > y) - (x < y)
    return None


def _contains(value: Any, item: Any) -> bool:
    if isinstance(value, str):
        return isinstance(item, str) and item in value
    if isinstance(value, list):
        return any(_equal(v, item) for v in value)
    if isinstance(value, Mapping):
        return isinstance(item, str) and item in value
    return False


def _is_operator(test: Any) -> bool:
    return isinstance(test, Mapping) and len(test) == 1 and next(iter(test)) in OPERATORS


def compare(op: str, value: Any, operand: Any) -> bool:
    """Apply one operator to a resolved value (:data:`MISSING` when absent). Never raises."""
    if op == "exists":
        present = value is not MISSING and value is not None
        return present is bool(operand) if isinstance(operand, bool) else False
    if op == "ne":
        return value is MISSING or not _equal(value, operand)
    if value is MISSING:
        return False
    if op == "eq":
        return _equal(value, operand)
    if op == "in":
        return isinstance(operand, list) and any(_equal(value, o) for o in operand)
    if op == "not_in":
        return isinstance(operand, list) and not any(_equal(value, o) for o in operand)
    if op == "contains":
        return _contains(value, operand)
    if op in _ORDERING:
        cmp = _order(value, operand)
        if cmp is None:
            return False
        return {"gt": cmp > 0, "gte": cmp >= 0, "lt": cmp < 0, "lte": cmp <= 0}[op]
    return False


def matches(where: Mapping[str, Any] | None, properties: Mapping[str, Any] | None) -> bool:
    """Whether ``properties`` satisfy every test of ``where`` (``None`` or ``{}`` match everything)."""
    if not where:
        return True
    if not isinstance(where, Mapping):
        return False
    data = properties if properties is not None else {}
    for path, test in where.items():
        if not isinstance(path, str) or not path:
            return False
        value = resolve(data, path)
        if isinstance(test, Mapping):
            if not _is_operator(test):
                return False
            ((op, operand),) = test.items()
            if _operand_error(op, operand):
                return False
            if not compare(op, value, operand):
                return False
        elif not compare("eq", value, test):
            return False
    return True


def _operand_error(op: str, operand: Any) -> str | None:
    if op in ("in", "not_in") and not isinstance(operand, list):
        return f"'{op}' needs a list of values, e.g. {{\"{op}\": [\"a\", \"b\"]}}"
    if op == "exists" and not isinstance(operand, bool):
        return "'exists' needs true or false"
    if op in _ORDERING and (isinstance(operand, bool) or not (_is_number(operand) or isinstance(operand, str))):
        return f"'{op}' needs a number or a string (ISO dates compare as dates), not {_kind(operand)}"
    if op == "contains" and isinstance(operand, (list, Mapping)):
        return f"'contains' needs a single value, not {_kind(operand)}"
    return None


def _kind(x: Any) -> str:
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "a boolean"
    if isinstance(x, list):
        return "a list"
    if isinstance(x, Mapping):
        return "an object"
    return type(x).__name__


def check_where(where: Any) -> list[str]:
    """Every problem in a filter, each naming the property path; ``[]`` when it is valid."""
    if where is None:
        return []
    if not isinstance(where, Mapping):
        return [f"where must be an object mapping property paths to tests, not {_kind(where)}"]
    errors = []
    for path, test in where.items():
        if not isinstance(path, str) or not path or any(not part for part in path.split(".")):
            errors.append(f"{path!r}: a property path is names joined by dots, e.g. 'cart.total'")
            continue
        if not isinstance(test, Mapping):
            continue  # a literal: equality
        if len(test) != 1:
            keys = ", ".join(map(str, test)) or "none"
            errors.append(
                f"{path}: an operator object has exactly one of {', '.join(OPERATORS)} (got {keys}); "
                "to compare with an object write {\"eq\": {...}}"
            )
            continue
        ((op, operand),) = test.items()
        if op not in OPERATORS:
            errors.append(f"{path}: unknown operator {op!r}; use one of {', '.join(OPERATORS)}")
            continue
        problem = _operand_error(op, operand)
        if problem:
            errors.append(f"{path}: {problem}")
    return errors
