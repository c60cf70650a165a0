"""Compile a condition tree into one SQLAlchemy Core boolean over ``contacts.id``.

Every leaf becomes a correlated ``EXISTS`` / scalar subquery on the contact, so a
whole segment is one SELECT, and restricting it to some ids is one more WHERE.
JSON attribute access goes through SQLAlchemy's JSON comparator, which renders
``->>`` on PostgreSQL and ``json_extract`` on SQLite.
"""

from __future__ import annotations

import operator
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import and_, exists, false, func, not_, or_, select, true
from sqlalchemy.sql import ColumnElement

from kaskad.segments import model as m
from kaskad.store.models import Consent, Contact, Event, Order, OrderItem

SPENDING = ("cancelled", "refunded")


class SegmentError(ValueError):
    """A definition that cannot be compiled; ``field`` says where."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def _compare(expr, op: str, value) -> ColumnElement:
    if op == "exists":
        return expr.is_not(None)
    if op == "missing":
        return expr.is_(None)
    if op == "neq":
        return or_(expr != value, expr.is_(None))
    return {"eq": operator.eq, "gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}[op](
        expr, value
    )


def _counted_orders(within_days, now):
    cond = [Order.contact_id == Contact.id, Order.status.not_in(SPENDING)]
    if within_days:
        cond.append(Order.placed_at >= now - timedelta(days=within_days))
    return cond


def compile_condition(
    cond: m.Condition, *, now: datetime, resolve: Callable[[str], m.Segment], path: str = "$.condition", seen=()
) -> ColumnElement:
    """The SQL boolean for ``cond`` (``resolve`` gives referenced segments; cycles are errors)."""
    rec = lambda c, p: compile_condition(c, now=now, resolve=resolve, path=p, seen=seen)  # noqa: E731
    if isinstance(cond, m.All):
        return and_(true(), *[rec(c, f"{path}.conditions[{i}]") for i, c in enumerate(cond.conditions)])
    if isinstance(cond, m.Any_):
        return or_(false(), *[rec(c, f"{path}.conditions[{i}]") for i, c in enumerate(cond.conditions)])
    if isinstance(cond, m.Not):
        # SQL's unknown (e.g. no orders at all) must read as "not a member", so NOT of it is true
        return not_(func.coalesce(rec(cond.condition, f"{path}.condition"), false()))
    if isinstance(cond, m.Attribute):
        if cond.op not in ("exists", "missing") and cond.value is None:
            raise SegmentError(f"{path}.value", f"op {cond.op!r} needs a value")
        el = Contact.attributes[cond.name]
        if isinstance(cond.value, bool):
            expr = el.as_boolean()
        elif isinstance(cond.value, (int, float)):
            expr = el.as_float()
        else:
            expr = el.as_string()
        return _compare(expr, cond.op, cond.value)
    if isinstance(cond, m.Tag):
        return _tag(cond.tag)
    if isinstance(cond, m.Reachable):
        return exists().where(
            Consent.contact_id == Contact.id, Consent.channel == cond.channel,
            Consent.topic == "*", Consent.status == "granted",
        )
    if isinstance(cond, m.Orders):
        if cond.op not in ("exists", "missing") and cond.value is None:
            raise SegmentError(f"{path}.value", f"op {cond.op!r} needs a value")
        where = _counted_orders(cond.within_days, now)
        net = Order.amount - func.coalesce(Order.refunded_amount, 0)
        if cond.measure == "count":
            expr = select(func.count()).where(*where).scalar_subquery()
        elif cond.measure == "total":
            expr = select(func.coalesce(func.sum(net), 0)).where(*where).scalar_subquery()
        elif cond.measure == "average":
            expr = select(func.avg(net)).where(*where).scalar_subquery()
        else:  # days_since_last: compare the last order's time with now - N days
            last = select(func.max(Order.placed_at)).where(*where).scalar_subquery()
            if cond.op in ("exists", "missing"):
                return _compare(last, cond.op, None)
            cutoff = now - timedelta(days=cond.value)
            flipped = {"gt": "lt", "gte": "lte", "lt": "gt", "lte": "gte", "eq": "eq", "neq": "neq"}[cond.op]
            return _compare(last, flipped, cutoff)
        return _compare(expr, cond.op, cond.value)
    if isinstance(cond, m.Bought):
        if not (cond.sku or cond.category):
            raise SegmentError(f"{path}.sku", "give a sku or a category")
        where = _counted_orders(cond.within_days, now) + [OrderItem.order_id == Order.id]
        if cond.sku:
            where.append(OrderItem.sku == cond.sku)
        if cond.category:
            where.append(OrderItem.category == cond.category)
        return exists().where(*where)
    if isinstance(cond, m.Performed):
        where = [Event.contact_id == Contact.id, Event.name == cond.name]
        if cond.within_days:
            where.append(Event.occurred_at >= now - timedelta(days=cond.within_days))
        n = select(func.count()).where(*where).scalar_subquery()
        out = n >= cond.min
        if cond.max is not None:
            out = and_(out, n <= cond.max)
        return out
    if isinstance(cond, m.InSegment):
        if cond.segment in seen:
            raise SegmentError(f"{path}.segment", f"cycle: {' -> '.join((*seen, cond.segment))}")
        try:
            other = resolve(cond.segment)
        except KeyError:
            raise SegmentError(f"{path}.segment", f"no segment {cond.segment!r}") from None
        return compile_condition(other.condition, now=now, resolve=resolve, path=f"{path}<{cond.segment}>",
                                 seen=(*seen, cond.segment))
    raise SegmentError(path, f"unknown condition {type(cond).__name__}")  # pragma: no cover


def _tag(tag: str) -> ColumnElement:
    # tags is a JSON array of strings on both backends; match the quoted element in its text.
    from sqlalchemy import String, cast

    needle = '"' + tag.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return cast(Contact.tags, String).contains(needle, autoescape=True)


def segment_query(segment: m.Segment, *, now: datetime, resolve) -> "select":
    """``SELECT contacts.id`` of the segment's members (erased contacts excluded)."""
    where = compile_condition(segment.condition, now=now, resolve=resolve, seen=(segment.key,))
    return select(Contact.id).where(Contact.erased_at.is_(None), where)
