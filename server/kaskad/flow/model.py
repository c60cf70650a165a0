"""The flow document as msgspec Structs.

One source of truth: these Structs decode the API input, produce the JSON Schema
that the catalog publishes for the editor, and are what the engine reads.
Unions are tagged by ``kind``. Layout (x, y) is kept apart from semantics.
Plugin node kinds are decoded as :class:`PluginNode` by :mod:`kaskad.flow.validate`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

import msgspec
from msgspec import Meta, Struct, field

from kaskad.flow.durations import PATTERN as DURATION_PATTERN

SCHEMA_VERSION = "kaskad.flow/1"

NodeId = Annotated[
    str,
    Meta(pattern=r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$", title="Node id", description="Stable id, unique in the flow"),
]
FlowKey = Annotated[
    str,
    Meta(pattern=r"^[a-z0-9][a-z0-9_\-]{0,119}$", title="Key", description="Stable machine name: lowercase, digits, - and _"),
]
Duration = Annotated[str, Meta(pattern=DURATION_PATTERN, title="Duration", description="ISO-8601 duration, e.g. P3D, PT2H, P1M")]
LocalTime = Annotated[str, Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", title="Local time", description="HH:MM in the contact's timezone")]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Engagement = Literal["sent", "delivered", "opened", "clicked", "replied", "converted", "bounced", "failed", "unsubscribed"]


class Model(Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """Base of every flow Struct: unknown keys are errors, defaults are not exported."""


# ---------------------------------------------------------------- conditions


class AttributeCondition(Model, tag_field="kind", tag="attribute", kw_only=True):
    """Compare a contact field (``email``, ``phone``, ``timezone``) or attribute (``city``, ``birthday``)."""

    attribute: Annotated[str, Meta(min_length=1, description="Contact field or attribute name; dots reach into nested attributes")]
    op: Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "exists", "not_exists"] = "eq"
    value: Any = None


class TagCondition(Model, tag_field="kind", tag="tag", kw_only=True):
    tag: Annotated[str, Meta(min_length=1)]
    present: bool = True


class EventCondition(Model, tag_field="kind", tag="event", kw_only=True):
    """The contact performed ``event`` (at least ``min_count`` times) since entering the flow or within a window."""

    event: Annotated[str, Meta(min_length=1)]
    since: Literal["entry"] | None = None
    within: Duration | None = None
    min_count: Annotated[int, Meta(ge=1)] = 1
    where: dict[str, Any] | None = None


class EngagementCondition(Model, tag_field="kind", tag="engagement", kw_only=True):
    """The message sent by an earlier send node in this run reached ``status``."""

    node: NodeId
    status: Engagement


class SegmentCondition(Model, tag_field="kind", tag="segment", kw_only=True):
    segment: Annotated[str, Meta(min_length=1)]
    member: bool = True


class AllOf(Model, tag_field="kind", tag="all", kw_only=True):
    conditions: list[Condition]


class AnyOf(Model, tag_field="kind", tag="any", kw_only=True):
    conditions: list[Condition]


class NotCondition(Model, tag_field="kind", tag="not", kw_only=True):
    condition: Condition


Condition = Union[
    AttributeCondition, TagCondition, EventCondition, EngagementCondition, SegmentCondition, AllOf, AnyOf, NotCondition
]

# ---------------------------------------------------------------- entry, re-entry, goal


class SegmentEntry(Model, tag_field="kind", tag="segment", kw_only=True):
    """Contacts enter from a segment: when they enter (or exit) it, on publish, or on a cron schedule."""

    segment: Annotated[str, Meta(min_length=1)]
    on: Literal["enter", "exit", "publish", "schedule"] = "enter"
    schedule: Annotated[str, Meta(description="Cron expression, with on=schedule")] | None = None


class EventEntry(Model, tag_field="kind", tag="event", kw_only=True):
    """Contacts enter when they perform ``event``; ``dedupe`` names the event property that identifies one entry."""

    event: Annotated[str, Meta(min_length=1)]
    dedupe: Annotated[str, Meta(description="Event property path whose value dedupes entries, e.g. properties.cart_id")] | None = None
    where: dict[str, Any] | None = None


class DateEntry(Model, tag_field="kind", tag="date", kw_only=True):
    """Contacts enter relative to a date attribute (e.g. 3 days before their birthday), at a local time."""

    attribute: Annotated[str, Meta(min_length=1)]
    offset: Duration = "P0D"
    at: LocalTime = "10:00"
    yearly: bool = True


class InactivityEntry(Model, tag_field="kind", tag="inactivity", kw_only=True):
    """Contacts enter when they have placed no order for ``days``."""

    days: Annotated[int, Meta(ge=1)]


class AbandonedCartEntry(Model, tag_field="kind", tag="abandoned_cart", kw_only=True):
    """Contacts enter when their latest ``event`` (a cart update) is ``after`` old and no ``order_event`` came since;
    an order before then cancels the entry. Once per cart update."""

    event: Annotated[str, Meta(min_length=1)] = "cart_updated"
    after: Duration = "PT4H"
    order_event: Annotated[str, Meta(min_length=1)] = "order_placed"


class ReplenishmentEntry(Model, tag_field="kind", tag="replenishment", kw_only=True):
    """Contacts enter ``lead`` before they are predicted to need a product again: for a SKU (any, or ``sku``)
    bought in at least ``min_purchases`` orders, the next purchase is the last one plus the median of their own intervals."""

    sku: Annotated[str, Meta(min_length=1)] | None = None
    min_purchases: Annotated[int, Meta(ge=3)] = 3
    lead: Duration = "P3D"


class ApiEntry(Model, tag_field="kind", tag="api", kw_only=True):
    """Contacts enter only through ``POST /api/v1/flows/{key}/enroll``."""


Entry = Union[SegmentEntry, EventEntry, DateEntry, InactivityEntry, AbandonedCartEntry, ReplenishmentEntry, ApiEntry]


class Reentry(Model, kw_only=True):
    """``once``: a contact enters at most once; ``after``: again after ``cooldown``; ``concurrent``: any time."""

    policy: Literal["once", "after", "concurrent"] = "once"
    cooldown: Duration | None = None


class Goal(Model, kw_only=True):
    """Reaching the goal ends the run as converted, wherever it stands."""

    event: Annotated[str, Meta(min_length=1)]
    within: Duration | None = None
    where: dict[str, Any] | None = None


# ---------------------------------------------------------------- nodes


class TimeWindow(Model, kw_only=True):
    """Wait until the contact's local time is inside [from, to) on one of ``days``."""

    from_: LocalTime = field(name="from")
    to: LocalTime
    days: list[Weekday] | None = None


class DateOffset(Model, kw_only=True):
    """Wait until a date attribute plus ``offset`` (negative for before), at local time ``at``."""

    attribute: Annotated[str, Meta(min_length=1)]
    offset: Duration = "P0D"
    at: LocalTime = "10:00"
    yearly: bool = True


class EventWait(Model, kw_only=True):
    """Wait until ``event`` arrives, or ``timeout`` passes (leaving by the ``on_timeout`` port)."""

    event: Annotated[str, Meta(min_length=1)]
    timeout: Duration
    where: dict[str, Any] | None = None


class Node(Model, tag_field="kind", kw_only=True):
    id: NodeId
    title: str | None = None


class WaitNode(Node, tag="wait", kw_only=True):
    """Pause the run: for a duration, until a local time window, until a date, or until an event."""

    for_: Duration | None = field(name="for", default=None)
    until_time: TimeWindow | None = None
    until_date: DateOffset | None = None
    until_event: EventWait | None = None
    next: NodeId | None = None
    on_timeout: NodeId | None = None


class Case(Model, kw_only=True):
    when: Condition
    next: NodeId
    name: str | None = None


class BranchNode(Node, tag="branch", kw_only=True):
    """Ordered cases; the first that holds wins, else ``else``."""

    cases: list[Case]
    else_: NodeId | None = field(name="else", default=None)


class SplitPath(Model, kw_only=True):
    name: Annotated[str, Meta(min_length=1)]
    weight: Annotated[int, Meta(ge=0, le=100)]
    next: NodeId | None = None
    holdout: bool = False


class SplitNode(Node, tag="split", kw_only=True):
    """Deterministic weighted random split per contact; a ``holdout`` path receives nothing (control group)."""

    paths: list[SplitPath]


class CascadeStep(Model, kw_only=True):
    """After ``after``, send through ``channel`` to those who did not reach any of ``unless``."""

    after: Duration
    channel: Annotated[str, Meta(min_length=1)]
    message: dict[str, Any] = {}
    template: str | None = None
    unless: list[Engagement] = field(default_factory=lambda: ["opened", "clicked", "converted"])


class SendNode(Node, tag="send", kw_only=True):
    """Send a message through a channel; optionally cascade to dearer channels for non-responders."""

    channel: Annotated[str, Meta(min_length=1)]
    message: dict[str, Any] = {}
    template: str | None = None
    topic: str | None = None
    on_cap: Literal["skip", "delay"] = "skip"
    cascade: list[CascadeStep] = []
    next: NodeId | None = None


class AwardNode(Node, tag="award", kw_only=True):
    """Award a loyalty mechanic (points, cashback, a promo code, a melting discount…)."""

    mechanic: Annotated[str, Meta(min_length=1)]
    config: dict[str, Any] = {}
    next: NodeId | None = None


class UpdateNode(Node, tag="update", kw_only=True):
    """Set or remove contact attributes and tags."""

    set: dict[str, Any] = {}
    unset: list[str] = []
    add_tags: list[str] = []
    remove_tags: list[str] = []
    next: NodeId | None = None


class ExitNode(Node, tag="exit", kw_only=True):
    """End the run."""


class PluginNode(Model, kw_only=True):
    """A node of a kind added by a plugin (``register_node_kinds``)."""

    kind: str
    id: NodeId
    title: str | None = None
    config: dict[str, Any] = {}
    next: NodeId | None = None
    ports: dict[str, NodeId] = {}


CoreNode = Union[WaitNode, BranchNode, SplitNode, SendNode, AwardNode, UpdateNode, ExitNode]
CORE_KINDS: dict[str, type] = {t.__struct_config__.tag: t for t in CoreNode.__args__}  # type: ignore[attr-defined]


class Position(Model, kw_only=True):
    x: float
    y: float


class Flow(Model, kw_only=True):
    """A customer journey."""

    schema: Literal["kaskad.flow/1"]
    key: FlowKey
    name: Annotated[str, Meta(min_length=1, max_length=300)]
    description: str | None = None
    entry: Entry
    reentry: Reentry | None = None  # None = policy "once"
    goal: Goal | None = None
    start: NodeId | None = None
    nodes: list[CoreNode]
    layout: dict[str, Position] = {}

    @property
    def start_id(self) -> str:
        return self.start or self.nodes[0].id


def ports(node: Any) -> dict[str, str | None]:
    """Every outgoing port of a node and its target (``None`` = not connected)."""
    if isinstance(node, WaitNode):
        out = {"next": node.next}
        if node.until_event is not None:
            out["on_timeout"] = node.on_timeout
        return out
    if isinstance(node, BranchNode):
        out = {f"case:{c.name or i}": c.next for i, c in enumerate(node.cases)}
        out["else"] = node.else_
        return out
    if isinstance(node, SplitNode):
        return {f"path:{p.name}": p.next for p in node.paths if not p.holdout}
    if isinstance(node, ExitNode):
        return {}
    if isinstance(node, PluginNode):
        return {"next": node.next, **node.ports} if node.next is not None or not node.ports else dict(node.ports)
    return {"next": node.next}


_encoder = msgspec.json.Encoder(order="deterministic")


def canonical_json(flow: Flow) -> bytes:
    """The canonical export: fixed field order, sorted maps, 2-space indent, trailing newline.

    import → export → import of any flow yields these exact bytes again.
    """
    return msgspec.json.format(_encoder.encode(flow), indent=2) + b"\n"


def flow_json_schema() -> dict[str, Any]:
    """JSON Schema of the whole flow document (core node kinds)."""
    return msgspec.json.schema(Flow)
