"""Branch conditions, evaluated for a batch of runs at once.

:func:`evaluate` answers one condition for every run of a batch with a few
set-based queries (one per condition per 5,000 contacts), never one query per
run. Attribute and tag conditions read the contact the engine already loaded.

What each kind means:

- ``attribute``: a contact field (``email``, ``phone``, ``timezone``,
  ``external_id``) or an attribute (dotted path; ``attributes.`` prefix
  optional) compared with the operators and semantics of :mod:`kaskad.engine.match`
  (numbers numerically, ISO dates as dates, a type mismatch is false), plus
  ``not_exists``.
- ``tag``: the contact has (``present``) or lacks the tag.
- ``event``: at least ``min_count`` events named ``event`` matching ``where``,
  occurred in ``[entered_at, now]`` (``since: entry``), in ``[now - within, now]``,
  or ever up to now.
- ``engagement``: the outbox rows this run wrote for send node ``node``
  (key ``run:{run}:{node}``, cascade steps ``run:{run}:{node}:{n}``):
  ``sent`` = one has ``sent_at``; ``delivered``/``opened``/``clicked``/
  ``replied``/``bounced``/``failed``/``unsubscribed`` = a message event with that
  status on one of them. A stronger signal implies a weaker one: a click is an
  open, and an open, click or reply proves delivery. ``failed`` is also true when
  the outbox row itself failed (the provider refused it). ``converted`` = the
  contact placed an order (status placed or paid) at or after the first of
  those messages was sent, up to now.
- ``segment``: membership in a segment (:func:`kaskad.segments.members_among`);
  an unknown segment is a :class:`ValueError` naming it.
- ``all`` / ``any`` / ``not`` combine conditions; each child is evaluated once
  per batch, and only for the runs whose answer it can still change.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Sequence

import msgspec
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kaskad import segments
from kaskad.engine.match import MISSING, compare, matches, resolve
from kaskad.flow.durations import Duration, parse_duration
from kaskad.flow.model import (
    AllOf,
    AnyOf,
    AttributeCondition,
    EngagementCondition,
    EventCondition,
    NotCondition,
    SegmentCondition,
    TagCondition,
)
from kaskad.store.models import Event, MessageEvent, Order, OutboxMessage

__all__ = ["RunView", "evaluate", "CONTACT_FIELDS"]

#: Contact columns an attribute condition can name directly.
CONTACT_FIELDS = ("email", "phone", "timezone", "external_id")
#: Message-event statuses that prove an engagement status (a click is also an open…).
IMPLIED_BY = {
    "delivered": ("delivered", "opened", "clicked", "replied"),
    "opened": ("opened", "clicked"),
    "clicked": ("clicked",),
    "replied": ("replied",),
    "bounced": ("bounced",),
    "failed": ("failed",),
    "unsubscribed": ("unsubscribed",),
}
CONVERTING_ORDERS = ("placed", "paid")
_CHUNK = 5000


class RunView(msgspec.Struct):
    """What the engine hands over per run.

    ``contact`` is ``{"email", "phone", "timezone", "external_id", "attributes": {...}, "tags": [...]}``.
    """

    run_id: int
    contact_id: int
    entered_at: datetime
    flow_id: int
    contact: dict


def evaluate(session: Session, runtime: Any, condition: Any, runs: Sequence[RunView], now: datetime) -> list[bool]:
    """Whether ``condition`` holds for each of ``runs`` at ``now``, in the order of ``runs``.

    ``runtime`` is passed through for condition kinds that need plugins or
    settings; the core kinds read only the database through ``session``.
    """
    if not runs:
        return []
    handler = _HANDLERS.get(type(condition))
    if handler is None:
        raise ValueError(f"cannot evaluate a branch condition of type {type(condition).__name__}")
    return handler(session, runtime, condition, list(runs), _utc(now))


# ---------------------------------------------------------------- contact conditions


def _attribute(session, runtime, cond: AttributeCondition, runs: list[RunView], now) -> list[bool]:
    if cond.op == "exists":
        op, operand = "exists", True
    elif cond.op == "not_exists":
        op, operand = "exists", False
    else:
        op, operand = cond.op, cond.value
    return [compare(op, contact_value(run.contact, cond.attribute), operand) for run in runs]


def contact_value(contact: dict, attribute: str) -> Any:
    """A contact field or (dotted) attribute, or :data:`~kaskad.engine.match.MISSING`."""
    if attribute in CONTACT_FIELDS:
        value = contact.get(attribute)
        return MISSING if value is None else value
    return resolve(contact.get("attributes") or {}, attribute, prefix="attributes")


def _tag(session, runtime, cond: TagCondition, runs: list[RunView], now) -> list[bool]:
    return [(cond.tag in (run.contact.get("tags") or [])) is cond.present for run in runs]


# ---------------------------------------------------------------- events


def _event(session: Session, runtime, cond: EventCondition, runs: list[RunView], now: datetime) -> list[bool]:
    if cond.within:
        span = parse_duration(cond.within)
        window_start: datetime | None = Duration(months=-span.months, delta=-span.delta).add_to(now)
    else:
        window_start = None

    def lower(run: RunView) -> datetime | None:
        return _utc(run.entered_at) if cond.since == "entry" else window_start

    counts: list[int] = []  # matching events per run, in order
    for chunk in _chunks(runs):
        contact_ids = {r.contact_id for r in chunk}
        bounds = [lower(r) for r in chunk]
        base = [Event.name == cond.event, Event.contact_id.in_(contact_ids), Event.occurred_at <= now]
        earliest = min((b for b in bounds if b is not None), default=None)
        if earliest is not None and all(b is not None for b in bounds):
            base.append(Event.occurred_at >= earliest)
        if cond.where is None and cond.since != "entry":
            # Same window for every run: let the database count.
            q = select(Event.contact_id, func.count()).where(*base).group_by(Event.contact_id)
            per_contact = dict(session.execute(q).all())
            counts.extend(per_contact.get(run.contact_id, 0) for run in chunk)
            continue
        cols = [Event.contact_id, Event.occurred_at] + ([Event.properties] if cond.where is not None else [])
        by_contact: dict[int, list[datetime]] = {}
        for row in session.execute(select(*cols).where(*base)):
            if cond.where is None or matches(cond.where, row[2]):
                by_contact.setdefault(row[0], []).append(_utc(row[1]))
        for run, bound in zip(chunk, bounds):
            times = by_contact.get(run.contact_id, ())
            counts.append(sum(1 for t in times if bound is None or t >= bound))
    return [n >= cond.min_count for n in counts]


# ---------------------------------------------------------------- engagement


def _engagement(session: Session, runtime, cond: EngagementCondition, runs: list[RunView], now: datetime) -> list[bool]:
    wanted = {run.run_id for run in runs}
    # outbox id -> run id, plus what the rows themselves say
    owner: dict[int, int] = {}
    first_sent: dict[int, datetime] = {}
    failed_rows: set[int] = set()
    for chunk in _chunks(runs):
        q = select(OutboxMessage.id, OutboxMessage.key, OutboxMessage.status, OutboxMessage.sent_at).where(
            OutboxMessage.contact_id.in_({r.contact_id for r in chunk}),
            # a coarse index-friendly prefilter; the exact key test is below ('_' in LIKE only widens it)
            OutboxMessage.key.like(f"run:%:{cond.node}%"),
        )
        for outbox_id, key, status, sent_at in session.execute(q):
            run_id = _run_of(key, cond.node)
            if run_id not in wanted:
                continue
            owner[outbox_id] = run_id
            if sent_at is not None:
                sent_at = _utc(sent_at)
                if run_id not in first_sent or sent_at < first_sent[run_id]:
                    first_sent[run_id] = sent_at
            if status == "failed":
                failed_rows.add(run_id)

    if cond.status == "sent":
        hit = set(first_sent)
    elif cond.status == "converted":
        hit = _converted(session, runs, first_sent, now)
    else:
        statuses = IMPLIED_BY[cond.status]
        hit = set(failed_rows) if cond.status == "failed" else set()
        ids = list(owner)
        for i in range(0, len(ids), _CHUNK):
            q = select(MessageEvent.outbox_id).where(
                MessageEvent.outbox_id.in_(ids[i : i + _CHUNK]), MessageEvent.status.in_(statuses)
            )
            hit.update(owner[outbox_id] for outbox_id in session.execute(q).scalars())
    return [run.run_id in hit for run in runs]


def _run_of(key: str, node: str) -> int | None:
    """The run id of an outbox key ``run:{run}:{node}`` or ``run:{run}:{node}:{suffix}`` for ``node``."""
    parts = key.split(":", 3)
    if len(parts) < 3 or parts[0] != "run" or parts[2] != node or not parts[1].isdigit():
        return None
    return int(parts[1])


def _converted(session: Session, runs: list[RunView], first_sent: dict[int, datetime], now: datetime) -> set[int]:
    sent_runs = [r for r in runs if r.run_id in first_sent]
    hit: set[int] = set()
    for chunk in _chunks(sent_runs):
        since = min(first_sent[r.run_id] for r in chunk)
        q = (
            select(Order.contact_id, func.max(Order.placed_at))
            .where(
                Order.contact_id.in_({r.contact_id for r in chunk}),
                Order.status.in_(CONVERTING_ORDERS),
                Order.placed_at >= since,
                Order.placed_at <= now,
            )
            .group_by(Order.contact_id)
        )
        latest = {cid: _utc(at) for cid, at in session.execute(q)}
        hit.update(r.run_id for r in chunk if r.contact_id in latest and latest[r.contact_id] >= first_sent[r.run_id])
    return hit


# ---------------------------------------------------------------- segments


def _segment(session: Session, runtime, cond: SegmentCondition, runs: list[RunView], now: datetime) -> list[bool]:
    try:
        segments.get(cond.segment, session)  # with the session: stored segments too
    except KeyError:
        raise ValueError(f"branch condition names unknown segment {cond.segment!r}; define it or fix the key") from None
    members = segments.members_among(session, cond.segment, {r.contact_id for r in runs}, now=now)
    return [(run.contact_id in members) is cond.member for run in runs]


# ---------------------------------------------------------------- composition


def _all(session, runtime, cond: AllOf, runs: list[RunView], now) -> list[bool]:
    return _combine(session, runtime, cond.conditions, runs, now, until=False)


def _any(session, runtime, cond: AnyOf, runs: list[RunView], now) -> list[bool]:
    return _combine(session, runtime, cond.conditions, runs, now, until=True)


def _combine(session, runtime, children, runs: list[RunView], now, *, until: bool) -> list[bool]:
    """all (until=False) / any (until=True): each child sees only the runs still undecided."""
    result = [not until] * len(runs)
    open_ = list(range(len(runs)))
    for child in children:
        if not open_:
            break
        answers = evaluate(session, runtime, child, [runs[i] for i in open_], now)
        still = []
        for i, ok in zip(open_, answers):
            if bool(ok) == until:
                result[i] = until
            else:
                still.append(i)
        open_ = still
    return result


def _not(session, runtime, cond: NotCondition, runs: list[RunView], now) -> list[bool]:
    return [not ok for ok in evaluate(session, runtime, cond.condition, runs, now)]


_HANDLERS: dict[type, Callable[..., list[bool]]] = {
    AttributeCondition: _attribute,
    TagCondition: _tag,
    EventCondition: _event,
    EngagementCondition: _engagement,
    SegmentCondition: _segment,
    AllOf: _all,
    AnyOf: _any,
    NotCondition: _not,
}


# ---------------------------------------------------------------- helpers


def _utc(moment: datetime) -> datetime:
    # The store returns aware UTC; a naive value from elsewhere is read as UTC.
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _chunks(runs: list[RunView]) -> Iterator[list[RunView]]:
    for i in range(0, len(runs), _CHUNK):
        yield runs[i : i + _CHUNK]
