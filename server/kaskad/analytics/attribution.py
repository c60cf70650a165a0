"""Attribution: which runs converted, which orders they brought, which message gets the credit.

For one run (one contact's entry into a flow):

- its **window** is the flow goal's ``within`` (default :attr:`AttributionRules.window`,
  7 days), counted from the entry;
- it **converted** when the goal occurred inside the window: the goal's event (with
  ``where`` property filters), ``order_paid`` / ``order_placed`` read from the orders
  table, no goal = a paid order;
- its **revenue** is the paid orders (``paid``, ``partially_refunded``) placed inside
  the window, each net of ``refunded_amount``; a fully refunded or cancelled order
  brings nothing;
- at a **node**, the conversions and orders that came after the run reached it;
- a **message** is credited with a goal occurrence or an order when it was sent
  before it and within the message window (default: the flow's window) — by last
  touch (only the latest such message of the run) or any touch (every one), see
  :class:`AttributionRules`. Only the run's own messages compete: another flow's
  message in between does not take the credit.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import msgspec

from kaskad.flow.durations import Duration, parse_duration

#: Order statuses that count as a paid order (revenue net of ``refunded_amount``).
PAID = ("paid", "partially_refunded")
#: Goals read from the orders table rather than from events.
ORDER_GOALS = {"order_paid": PAID, "order_placed": ("placed", *PAID)}
#: Outbox statuses that mean the message went out (and so cost money).
SENT = ("sent", "delivered")
#: Message events counted per message (the first of each kind per message).
ENGAGEMENT = ("delivered", "opened", "clicked", "bounced", "unsubscribed")
ZERO = Decimal(0)


class AttributionRules(msgspec.Struct, kw_only=True, frozen=True):
    """How conversions are attributed; set from ``KASKAD_ANALYTICS_*`` variables."""

    #: the window after entry when the flow's goal has no ``within`` (or there is no goal)
    window: str = "P7D"
    #: how long after a message a conversion may be credited to it; None = the flow's window
    message_window: str | None = None
    #: ``last``: only the run's latest message before the conversion gets it; ``any``: each one
    touch: Literal["last", "any"] = "last"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "AttributionRules":
        env = dict(os.environ if env is None else env)
        rules = cls(
            window=env.get("KASKAD_ANALYTICS_WINDOW") or "P7D",
            message_window=env.get("KASKAD_ANALYTICS_MESSAGE_WINDOW") or None,
            touch=env.get("KASKAD_ANALYTICS_TOUCH") or "last",  # type: ignore[arg-type]
        )
        if rules.touch not in ("last", "any"):
            raise ValueError(f"KASKAD_ANALYTICS_TOUCH: {rules.touch!r} must be 'last' or 'any'")
        for name in ("window", "message_window"):
            if getattr(rules, name) is not None:
                parse_duration(getattr(rules, name))
        return rules


@dataclass(frozen=True)
class Goal:
    """What converts a run of one flow version, and for how long after entry."""

    event: str | None  # None = a paid order
    window: Duration
    where: dict[str, Any] = field(default_factory=dict)

    @property
    def order_statuses(self) -> tuple[str, ...] | None:
        if self.event is None:
            return PAID
        return ORDER_GOALS.get(self.event)

    def matches(self, properties: dict[str, Any]) -> bool:
        """``where`` keys are property names (a ``properties.`` prefix is allowed), values must be equal."""
        for key, want in self.where.items():
            name = key.removeprefix("properties.")
            if properties.get(name) != want:
                return False
        return True


def goal_of(document: str | dict, rules: AttributionRules) -> Goal:
    """The goal of a stored flow version (its canonical JSON text or the parsed document)."""
    doc = json.loads(document) if isinstance(document, str) else document
    goal = doc.get("goal") or {}
    within = goal.get("within") or rules.window
    return Goal(event=goal.get("event"), window=parse_duration(within), where=goal.get("where") or {})


@dataclass
class Message:
    id: int
    node_id: str
    channel: str
    status: str
    cost: Decimal
    sent_at: datetime | None
    events: set[str] = field(default_factory=set)

    @property
    def sent(self) -> bool:
        return self.status in SENT


@dataclass
class RunFacts:
    """Everything about one run that the figures need, read by :mod:`kaskad.analytics.flows`."""

    id: int
    contact_id: int
    entered_at: datetime
    goal: Goal
    path: str = ""
    holdout: bool = False
    goal_times: list[datetime] = field(default_factory=list)  # goal occurrences (inside the window once settled)
    orders: list[tuple[datetime, Decimal]] = field(default_factory=list)  # paid orders (placed_at, net), likewise
    reached: dict[str, datetime] = field(default_factory=dict)  # node id → first time there
    messages: list[Message] = field(default_factory=list)
    loyalty_cost: dict[str, Decimal] = field(default_factory=dict)  # award node id → cost
    window_end: datetime | None = None

    def settle(self) -> None:
        """Keep only what fell inside the window (call once all occurrences and orders are in)."""
        self.window_end = self.goal.window.add_to(self.entered_at)
        self.goal_times = sorted(t for t in self.goal_times if self.entered_at <= t <= self.window_end)
        self.orders = sorted(o for o in self.orders if self.entered_at <= o[0] <= self.window_end)

    def conversion_at(self, after: datetime | None = None) -> datetime | None:
        """The first goal occurrence inside the window (and not before ``after``); needs :meth:`settle`."""
        for t in self.goal_times:
            if after is None or t >= after:
                return t
        return None

    def window_orders(self, after: datetime | None = None) -> list[tuple[datetime, Decimal]]:
        """Paid orders inside the window (and not before ``after``); needs :meth:`settle`."""
        return self.orders if after is None else [o for o in self.orders if o[0] >= after]


def credited(run: RunFacts, at: datetime, rules: AttributionRules) -> list[Message]:
    """The run's messages credited with something that happened at ``at``."""
    span = parse_duration(rules.message_window) if rules.message_window else run.goal.window
    touched = [m for m in run.messages if m.sent and m.sent_at is not None and m.sent_at <= at <= span.add_to(m.sent_at)]
    if rules.touch == "any" or not touched:
        return touched
    return [max(touched, key=lambda m: (m.sent_at, m.id))]


def day_of(moment: datetime):
    """The UTC day a moment belongs to (figures are filed by UTC day)."""
    return (moment - (moment.utcoffset() or timedelta(0))).date()
