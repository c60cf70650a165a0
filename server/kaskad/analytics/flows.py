"""Rebuild the per-day journey tables (:class:`FlowDay`, :class:`NodeDay`) from the raw tables.

Runs are read in slices of ids; each slice brings its contacts' orders and goal
events, its steps, its messages and their events. Every figure is filed under the
day the run entered (UTC), so rebuilding "from day D on" only needs the runs that
entered on or after D.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Iterable

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from kaskad.analytics import attribution as attr
from kaskad.analytics.attribution import AttributionRules, Goal, Message, RunFacts
from kaskad.analytics.loyalty_cost import award_costs
from kaskad.analytics.models import FlowDay, NodeDay
from kaskad.store.models import Event, FlowVersion, JourneyRun, MessageEvent, Order, OutboxMessage, RunStep

SLICE = 20_000
_COUNTERS = ("sent", "delivered", "opened", "clicked", "bounced", "unsubscribed", "converted", "orders")


def _row(**keys) -> dict:
    return {**keys, **{c: 0 for c in _COUNTERS}, "revenue": Decimal(0), "message_cost": Decimal(0),
            "loyalty_cost": Decimal(0)}


def _add_messages(row: dict, messages: Iterable[Message]) -> None:
    for m in messages:
        if m.sent:
            row["sent"] += 1
            row["message_cost"] += m.cost
        for status in attr.ENGAGEMENT:
            row[status] += status in m.events


class _Totals:
    """Per-day rows of one flow being built up slice by slice."""

    def __init__(self, flow_id: int, rules: AttributionRules):
        self.flow_id, self.rules = flow_id, rules
        self.flow: dict[tuple, dict] = {}
        self.nodes: dict[tuple, dict] = {}

    def _flow_row(self, day, path, holdout):
        key = (day, path, holdout)
        if key not in self.flow:
            self.flow[key] = _row(flow_id=self.flow_id, day=day, path=path, holdout=holdout,
                                  entered=0, purchasers=0, revenue_sq=0.0)
        return self.flow[key]

    def _node_row(self, day, node_id, channel):
        key = (day, node_id, channel)
        if key not in self.nodes:
            self.nodes[key] = _row(flow_id=self.flow_id, day=day, node_id=node_id, channel=channel, reached=0)
        return self.nodes[key]

    def add(self, run: RunFacts) -> None:
        day = attr.day_of(run.entered_at)
        f = self._flow_row(day, run.path, run.holdout)
        f["entered"] += 1
        f["converted"] += run.conversion_at() is not None
        orders = run.window_orders()
        revenue = sum((net for _, net in orders), Decimal(0))
        f["purchasers"] += bool(orders)
        f["orders"] += len(orders)
        f["revenue"] += revenue
        f["revenue_sq"] += float(revenue) ** 2
        f["loyalty_cost"] += sum(run.loyalty_cost.values(), Decimal(0))
        _add_messages(f, run.messages)
        by_node = defaultdict(list)
        for m in run.messages:
            by_node[m.node_id].append(m)
        for node_id, at in run.reached.items():
            n = self._node_row(day, node_id, "")
            n["reached"] += 1
            n["converted"] += run.conversion_at(after=at) is not None
            after = run.window_orders(after=at)
            n["orders"] += len(after)
            n["revenue"] += sum((net for _, net in after), Decimal(0))
            n["loyalty_cost"] += run.loyalty_cost.get(node_id, Decimal(0))
            _add_messages(n, by_node.get(node_id, ()))
        for node_id, messages in by_node.items():
            for channel in {m.channel for m in messages}:
                c = self._node_row(day, node_id, channel)
                c["reached"] += 1
                _add_messages(c, [m for m in messages if m.channel == channel])
        self._credit(run, day)

    def _credit(self, run: RunFacts, day: date) -> None:
        """Conversions and orders to the messages that touched them (see :func:`attr.credited`)."""
        converted: set[tuple[str, str]] = set()
        for t in run.goal_times:
            converted.update((m.node_id, m.channel) for m in attr.credited(run, t, self.rules))
        for node_id, channel in converted:
            self._node_row(day, node_id, channel)["converted"] += 1
        for t, net in run.window_orders():
            for m in attr.credited(run, t, self.rules):
                row = self._node_row(day, m.node_id, m.channel)
                row["orders"] += 1
                row["revenue"] += net


def _goals(session: Session, flow_id: int, rules: AttributionRules) -> dict[int, Goal]:
    rows = session.execute(select(FlowVersion.id, FlowVersion.document).where(FlowVersion.flow_id == flow_id))
    return {vid: attr.goal_of(doc, rules) for vid, doc in rows}


def _slice(session: Session, cond: list, runs: list[RunFacts], goals: dict[int, Goal], costs) -> None:
    """Fill the slice's runs with their goal occurrences, orders, steps and messages."""
    by_id = {r.id: r for r in runs}
    by_contact = defaultdict(list)
    for r in runs:
        by_contact[r.contact_id].append(r)
    lo, hi = min(by_id), max(by_id)
    start = min(r.entered_at for r in runs)
    end = max(r.goal.window.add_to(r.entered_at) for r in runs)
    # the slice as SQL: with ``since``, recent runs may lie far apart in id, so the ids
    # are selected again rather than taken as a range
    in_slice = select(JourneyRun.id).where(*cond, JourneyRun.id.between(lo, hi)).scalar_subquery()
    contacts = select(JourneyRun.contact_id).where(*cond, JourneyRun.id.between(lo, hi)).scalar_subquery()
    order_goal_statuses = {s for g in goals.values() for s in (g.order_statuses or ())}
    q = select(Order.contact_id, Order.placed_at, Order.status, Order.amount, Order.refunded_amount).where(
        Order.contact_id.in_(contacts), Order.placed_at.between(start, end),
        Order.status.in_(set(attr.PAID) | order_goal_statuses))
    for cid, placed_at, status, amount, refunded in session.execute(q):
        for r in by_contact.get(cid, ()):
            if status in attr.PAID:
                r.orders.append((placed_at, Decimal(amount) - Decimal(refunded or 0)))
            if status in (r.goal.order_statuses or ()):
                r.goal_times.append(placed_at)
    event_goals = {g.event for g in goals.values() if g.order_statuses is None}
    if event_goals:
        q = select(Event.contact_id, Event.name, Event.occurred_at, Event.properties).where(
            Event.contact_id.in_(contacts), Event.name.in_(event_goals), Event.occurred_at.between(start, end))
        for cid, name, at, props in session.execute(q):
            for r in by_contact.get(cid, ()):
                if r.goal.event == name and r.goal.matches(props or {}):
                    r.goal_times.append(at)
    q = (select(RunStep.run_id, RunStep.node_id, func.min(RunStep.at))
         .where(RunStep.run_id.in_(in_slice)).group_by(RunStep.run_id, RunStep.node_id))
    for run_id, node_id, at in session.execute(q):
        if run_id in by_id:
            by_id[run_id].reached[node_id] = at
    messages: dict[int, Message] = {}
    q = select(OutboxMessage.id, OutboxMessage.run_id, OutboxMessage.node_id, OutboxMessage.channel,
               OutboxMessage.status, OutboxMessage.cost, OutboxMessage.sent_at).where(OutboxMessage.run_id.in_(in_slice))
    for mid, run_id, node_id, channel, status, cost, sent_at in session.execute(q):
        if run_id in by_id:
            m = Message(mid, node_id or "", channel, status, Decimal(cost or 0), sent_at)
            messages[mid] = m
            by_id[run_id].messages.append(m)
    q = (select(MessageEvent.outbox_id, MessageEvent.status)
         .join(OutboxMessage, OutboxMessage.id == MessageEvent.outbox_id)
         .where(OutboxMessage.run_id.in_(in_slice), MessageEvent.status.in_(attr.ENGAGEMENT)))
    for mid, status in session.execute(q):
        if mid in messages:
            messages[mid].events.add(status)
    for (run_id, node_id), cost in costs.items():
        if run_id in by_id:
            by_id[run_id].loyalty_cost[node_id] = cost


def refresh_flow(session: Session, flow_id: int, since: date | None, rules: AttributionRules, costs=None) -> int:
    """Rebuild one flow's rows for runs that entered on ``since`` or later (all when None).
    Returns the number of runs read. Runs inside the caller's transaction."""
    goals = _goals(session, flow_id, rules)
    costs = award_costs(session) if costs is None else costs
    totals = _Totals(flow_id, rules)
    cond = [JourneyRun.flow_id == flow_id]
    if since is not None:
        cond.append(JourneyRun.entered_at >= datetime.combine(since, time(0), timezone.utc))
    after, seen = 0, 0
    while True:
        rows = session.execute(
            select(JourneyRun.id, JourneyRun.contact_id, JourneyRun.entered_at, JourneyRun.status,
                   JourneyRun.flow_version_id, JourneyRun.context)
            .where(*cond, JourneyRun.id > after).order_by(JourneyRun.id).limit(SLICE)
        ).all()
        if not rows:
            break
        runs = []
        for rid, cid, entered_at, status, vid, ctx in rows:
            split = (ctx or {}).get("split") or {}
            runs.append(RunFacts(rid, cid, entered_at, goals.get(vid) or attr.goal_of({}, rules),
                                 path=str(split.get("path") or ""), holdout=status == "holdout"))
        _slice(session, cond, runs, goals, costs)
        for run in runs:
            run.settle()
            totals.add(run)
        after, seen = rows[-1][0], seen + len(rows)
    for model in (FlowDay, NodeDay):
        stmt = delete(model).where(model.flow_id == flow_id)
        if since is not None:
            stmt = stmt.where(model.day >= since)
        session.execute(stmt)
    if totals.flow:
        session.execute(insert(FlowDay.__table__), list(totals.flow.values()))
    if totals.nodes:
        session.execute(insert(NodeDay.__table__), list(totals.nodes.values()))
    return seen
