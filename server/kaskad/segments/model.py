"""Segment definitions: JSON condition trees (tagged by ``kind``) as msgspec Structs."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

import msgspec
from msgspec import Meta

Op = Literal["eq", "neq", "gt", "gte", "lt", "lte", "exists", "missing"]


class Cond(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class Attribute(Cond, tag_field="kind", tag="attribute"):
    """A contact attribute compared with a value (numbers compare as numbers)."""

    name: Annotated[str, Meta(min_length=1)]
    op: Op = "eq"
    value: str | int | float | bool | None = None


class Tag(Cond, tag_field="kind", tag="tag"):
    """The contact carries ``tag``."""

    tag: Annotated[str, Meta(min_length=1)]


class Reachable(Cond, tag_field="kind", tag="consent"):
    """Consent granted for ``channel`` (topic ``*``)."""

    channel: Annotated[str, Meta(min_length=1)]


class Orders(Cond, tag_field="kind", tag="orders"):
    """An aggregate over the contact's orders, optionally within the last ``within_days``.

    Spend (``total``, ``average``) counts orders that are not cancelled or refunded,
    minus their ``refunded_amount``. ``days_since_last`` of a contact with no
    orders is unknown: only ``missing`` matches it.
    """

    measure: Literal["count", "total", "average", "days_since_last"]
    op: Op = "gte"
    value: float | None = None
    within_days: Annotated[int, Meta(ge=1)] | None = None


class Bought(Cond, tag_field="kind", tag="bought"):
    """Bought an item of ``sku`` or ``category`` (not in a cancelled/refunded order)."""

    sku: str | None = None
    category: str | None = None
    within_days: Annotated[int, Meta(ge=1)] | None = None


class Performed(Cond, tag_field="kind", tag="event"):
    """Performed event ``name`` at least ``min`` / at most ``max`` times, counting only events
    whose properties match ``where`` (see :mod:`kaskad.segments.where`)."""

    name: Annotated[str, Meta(min_length=1)]
    min: Annotated[int, Meta(ge=0)] = 1
    max: Annotated[int, Meta(ge=0)] | None = None
    within_days: Annotated[int, Meta(ge=1)] | None = None
    where: Annotated[
        dict[str, Any],
        Meta(description="property path -> literal (equality) or one of {eq, ne, gt, gte, lt, lte, in, not_in, exists, contains}"),
    ] | None = None


RfmName = Literal["Champions", "Loyal", "Can't lose them", "At risk", "Potential loyalists", "New", "Promising",
                  "Need attention", "About to sleep", "Hibernating", "Lost"]
Score = Annotated[int, Meta(ge=1, le=5)]


class Rfm(Cond, tag_field="kind", tag="rfm"):
    """The contact's RFM in the latest snapshot: one of the named ``segments`` and/or scores within bounds.

    Contacts not scored in that snapshot (no counted order) match nothing."""

    segments: list[RfmName] | None = None
    r_min: Score | None = None
    r_max: Score | None = None
    f_min: Score | None = None
    f_max: Score | None = None
    m_min: Score | None = None
    m_max: Score | None = None


class InSegment(Cond, tag_field="kind", tag="segment"):
    segment: Annotated[str, Meta(min_length=1)]


class All(Cond, tag_field="kind", tag="all"):
    conditions: list[Condition]


class Any_(Cond, tag_field="kind", tag="any"):
    conditions: list[Condition]


class Not(Cond, tag_field="kind", tag="not"):
    condition: Condition


Condition = Union[Attribute, Tag, Reachable, Orders, Bought, Performed, Rfm, InSegment, All, Any_, Not]


class Segment(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    schema: Literal["kaskad.segment/1"] = "kaskad.segment/1"
    key: Annotated[str, Meta(min_length=1, pattern=r"^[a-z0-9][a-z0-9-]*$")]
    name: str
    condition: Condition


def decode(data: bytes | str) -> Segment:
    """Decode a segment; msgspec's error names the field path (e.g. ``$.condition.measure``)."""
    return msgspec.json.decode(data, type=Segment)
