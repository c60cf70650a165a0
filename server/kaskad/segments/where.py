"""The ``where`` filter language on event properties, compiled to SQL on PostgreSQL and SQLite.

``where`` maps a dotted property path to a literal (equality) or to an operator
object with exactly one key::

    {"cart.total": {"gte": 50}, "source": "app", "items": {"contains": "SKU-1"}}

Operators: ``eq``, ``ne`` (also true when the property is missing), ``gt``,
``gte``, ``lt``, ``lte`` (numbers compare as numbers, strings as text),
``in`` / ``not_in`` (a list; a missing property satisfies neither), ``exists``
(true/false), ``contains`` (an array holding the element, a string holding
the substring, an object holding the key). A literal ``null`` means "missing or
null". Numbers match JSON numbers and numeric strings (``"12.50"``), so amounts
sent as strings compare; ``true``/``false`` match only JSON booleans. A numeric
path part indexes a list (``items.0.sku``); a leading ``properties.`` is ignored.

These are the semantics of the engine's in-memory matcher for the same language,
compiled to SQL; one difference: two strings compare as text here, where the
engine compares two ISO dates of different precision as dates.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import and_, false, literal, not_, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import Boolean, Float, String

OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "exists", "contains")
_SCALAR = (str, int, float, bool)


def check(where: Any, path: str) -> list[tuple[str, str]]:
    """Every problem in a ``where`` object as (path, message); empty when it is valid."""
    if not isinstance(where, dict):
        return [(path, "where must be an object mapping property paths to values or {operator: value}")]
    out = []
    for prop, test in where.items():
        at = f"{path}.{prop}"
        if not prop or any(not part for part in prop.split(".")):
            out.append((at, "a property path is dot-separated names, e.g. cart.total"))
            continue
        if not isinstance(test, dict):
            if test is not None and not isinstance(test, _SCALAR):
                out.append((at, "a literal must be a string, number, boolean or null; use {\"in\": [...]} for lists"))
            continue
        if len(test) != 1 or next(iter(test)) not in OPS:
            out.append((at, f"an operator object has exactly one key among {', '.join(OPS)}; got {sorted(test)}"))
            continue
        op, value = next(iter(test.items()))
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value or not all(isinstance(v, _SCALAR) for v in value):
                out.append((f"{at}.{op}", "a non-empty list of strings or numbers"))
            elif len({_kind(v) for v in value}) > 1:
                out.append((f"{at}.{op}", "all values of one type (strings or numbers)"))
        elif op == "exists":
            if not isinstance(value, bool):
                out.append((f"{at}.exists", "true or false"))
        elif op in ("gt", "gte", "lt", "lte"):
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                out.append((f"{at}.{op}", "a number or a string"))
        elif op == "contains":
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                out.append((f"{at}.contains", "a string or a number"))
        elif value is not None and not isinstance(value, _SCALAR):
            out.append((f"{at}.{op}", "a string, number, boolean or null"))
    return out


def _kind(v: Any) -> str:
    return "bool" if isinstance(v, bool) else "number" if isinstance(v, (int, float)) else "string"


class json_text(FunctionElement):
    """The property at ``path`` as text (strings unquoted); NULL when missing or JSON null."""

    type = String()
    inherit_cache = True


class json_number(FunctionElement):
    """The property as a number: a JSON number, or a string holding a plain decimal; else NULL."""

    type = Float()
    inherit_cache = True


class json_bool(FunctionElement):
    type = Boolean()
    inherit_cache = True


class json_contains(FunctionElement):
    """An array property holding the element, or a string property holding the substring."""

    type = Boolean()
    inherit_cache = True


def _pg_path(compiler, element, kw) -> tuple[str, str]:
    col, path = list(element.clauses)
    return compiler.process(col, **kw), compiler.process(path, **kw)


@compiles(json_text, "postgresql")
def _pg_text(element, compiler, **kw):
    col, path = _pg_path(compiler, element, kw)
    return f"({col} #>> CAST({path} AS TEXT[]))"


@compiles(json_number, "postgresql")
def _pg_number(element, compiler, **kw):
    col, path = _pg_path(compiler, element, kw)
    v = f"({col} #> CAST({path} AS TEXT[]))"
    return (f"(CASE WHEN jsonb_typeof({v}) = 'number' THEN CAST({v} #>> '{{}}' AS FLOAT) "
            f"WHEN jsonb_typeof({v}) = 'string' AND ({v} #>> '{{}}') ~ '^-?[0-9]+(\\.[0-9]+)?$' "
            f"THEN CAST({v} #>> '{{}}' AS FLOAT) END)")


@compiles(json_bool, "postgresql")
def _pg_bool(element, compiler, **kw):
    col, path = _pg_path(compiler, element, kw)
    v = f"({col} #> CAST({path} AS TEXT[]))"
    return f"(CASE WHEN jsonb_typeof({v}) = 'boolean' THEN CAST({v} #>> '{{}}' AS BOOLEAN) END)"


@compiles(json_contains, "postgresql")
def _pg_contains(element, compiler, **kw):
    col, path, array, needle = [compiler.process(c, **kw) for c in element.clauses]
    v = f"({col} #> CAST({path} AS TEXT[]))"
    return (f"(CASE jsonb_typeof({v}) WHEN 'array' THEN {v} @> CAST({array} AS JSONB) "
            f"WHEN 'string' THEN strpos({v} #>> '{{}}', CAST({needle} AS TEXT)) > 0 "
            f"WHEN 'object' THEN jsonb_exists({v}, CAST({needle} AS TEXT)) ELSE false END)")


# On SQLite the path parameter is a JSON path string such as '$."cart"."total"'.


@compiles(json_text, "sqlite")
def _lite_text(element, compiler, **kw):
    col, path = [compiler.process(c, **kw) for c in element.clauses]
    return f"(CASE WHEN json_type({col}, {path}) IN ('object', 'array') THEN json_extract({col}, {path}) " \
           f"WHEN json_type({col}, {path}) = 'true' THEN 'true' WHEN json_type({col}, {path}) = 'false' THEN 'false' " \
           f"ELSE CAST(json_extract({col}, {path}) AS TEXT) END)"


@compiles(json_number, "sqlite")
def _lite_number(element, compiler, **kw):
    col, path = [compiler.process(c, **kw) for c in element.clauses]
    v = f"json_extract({col}, {path})"
    return (f"(CASE WHEN json_type({col}, {path}) IN ('integer', 'real') THEN {v} "
            f"WHEN json_type({col}, {path}) = 'text' AND {v} GLOB '*[0-9]*' AND {v} NOT GLOB '*[^0-9.-]*' "
            f"AND {v} NOT GLOB '*.*.*' AND {v} NOT GLOB '?*-*' AND {v} NOT GLOB '*.' AND {v} NOT GLOB '.*' "
            f"AND {v} NOT GLOB '-.*' THEN CAST({v} AS REAL) END)")


@compiles(json_bool, "sqlite")
def _lite_bool(element, compiler, **kw):
    col, path = [compiler.process(c, **kw) for c in element.clauses]
    return f"(CASE json_type({col}, {path}) WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)"


@compiles(json_contains, "sqlite")
def _lite_contains(element, compiler, **kw):
    col, path, _, needle = [compiler.process(c, **kw) for c in element.clauses]
    return (f"(CASE json_type({col}, {path}) "
            f"WHEN 'array' THEN EXISTS (SELECT 1 FROM json_each({col}, {path}) AS je WHERE je.value = {needle}) "
            f"WHEN 'text' THEN instr(json_extract({col}, {path}), CAST({needle} AS TEXT)) > 0 "
            f"WHEN 'object' THEN EXISTS (SELECT 1 FROM json_each({col}, {path}) AS je WHERE je.key = CAST({needle} AS TEXT)) "
            f"ELSE 0 END)")


class Accessor:
    """Builds typed property expressions for one JSON column on one dialect."""

    def __init__(self, column, dialect: str):
        self.column = column
        self.dialect = dialect

    def _path(self, prop: str):
        parts = prop.split(".")
        if parts[0] == "properties" and len(parts) > 1:
            parts = parts[1:]
        if self.dialect == "postgresql":  # a numeric element indexes an array in a text[] path too
            return literal("{" + ",".join('"' + p.replace('\\', '\\\\').replace('"', '\\"') + '"' for p in parts) + "}")
        return literal("$" + "".join(f"[{p}]" if p.isdigit() else '."' + p.replace('"', '\\"') + '"' for p in parts))

    def text(self, prop):
        return json_text(self.column, self._path(prop))

    def number(self, prop):
        return json_number(self.column, self._path(prop))

    def boolean(self, prop):
        return json_bool(self.column, self._path(prop))

    def contains(self, prop, needle):
        return json_contains(self.column, self._path(prop), literal(json.dumps([needle])), literal(needle))

    def typed(self, prop, value):
        kind = _kind(value)
        return self.boolean(prop) if kind == "bool" else self.number(prop) if kind == "number" else self.text(prop)


def compile_where(column, where: dict[str, Any], dialect: str) -> ColumnElement:
    """The SQL boolean for a checked ``where`` object (see :func:`check`) over a JSON column."""
    acc = Accessor(column, dialect)
    parts = []
    for prop, test in where.items():
        op, value = next(iter(test.items())) if isinstance(test, dict) else ("eq", test)
        parts.append(_one(acc, prop, op, value))
    return and_(*parts) if parts else literal(True)


def _one(acc: Accessor, prop: str, op: str, value: Any) -> ColumnElement:
    if op == "exists":
        present = acc.text(prop).is_not(None)
        return present if value else not_(present)
    if op == "contains":
        return acc.contains(prop, value)
    if op in ("in", "not_in"):
        expr = acc.typed(prop, value[0])
        return expr.in_(value) if op == "in" else and_(expr.is_not(None), expr.not_in(value))
    if value is None:
        missing = acc.text(prop).is_(None)
        return missing if op == "eq" else not_(missing) if op == "ne" else false()
    expr = acc.typed(prop, value)
    if op == "eq":
        return expr == value
    if op == "ne":
        return or_(expr.is_(None), expr != value)
    return {"gt": expr > value, "gte": expr >= value, "lt": expr < value, "lte": expr <= value}[op]
