"""Send nodes: outbox first, provider after, each message once.

For a run standing on a send node the message it owes is message ``m`` (0 = the
node's own channel, 1… = its cascade steps) under the outbox key
``run:<run>:<node>`` (``:<m>`` for cascade steps). The key is unique, so the
row is the proof of what was decided:

- no row: consent, caps and quiet hours decide (:func:`kaskad.delivery.policy.filter_sends`)
  — allowed: render and write the row as ``sending``, hold the run, and hand the
  message to the provider as soon as the transaction commits (:func:`deliver`);
  skipped: a ``skipped`` row with the reason, the run moves on; delayed: the run waits.
- ``pending`` (the provider asked to try again): hand it over once more, claiming
  it as ``sending`` first, or wait for the retry if it was just tried.
- ``sending``: a process died during the provider call (or just before it). Channels whose
  provider deduplicates on our key (``Channel.idempotent = True``) get it again;
  for the others it becomes ``unknown`` and is not resent: at most once.
- ``sent``, ``skipped``, ``unknown``: settled, the run moves on (or to the
  next cascade step); ``failed``: the run fails with the provider's reason.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from decimal import Decimal
from typing import Any, NamedTuple

import msgspec
from sqlalchemy import or_, select, update

from kaskad import clock, templates
from kaskad.channels import OutboundMessage, Recipient, SendResult
from kaskad.delivery.policy import filter_sends
from kaskad.engine.batch import MAX_ATTEMPTS, BatchContext, Run, backoff
from kaskad.engine.plan import FlowPlan
from kaskad.engine.render import render_context
from kaskad.flow import model
from kaskad.flow.durations import parse_duration
from kaskad.store.bulk import among, bulk_insert, bulk_update, fetch_rows
from kaskad.store.engine import transaction
from kaskad.store.models import MessageEvent, OutboxMessage

log = logging.getLogger("kaskad.engine.send")
STATE = "send"  # context key: {node_id: {"m": index, "wait": bool}}
SETTLED = ("sent", "skipped", "unknown")
OUTBOX = OutboxMessage.__table__


class _Row(NamedTuple):
    id: int
    key: str
    status: str
    error: str | None
    attempts: int


def outbox_key(run_id: int, node_id: str, m: int) -> str:
    return f"run:{run_id}:{node_id}" + (f":{m}" if m else "")


def _message_spec(node: model.SendNode, m: int) -> tuple[str, dict, str | None]:
    if m == 0:
        return node.channel, node.message, node.template
    step = node.cascade[m - 1]
    return step.channel, step.message, step.template


def handle_send(ctx: BatchContext, plan: FlowPlan, node: model.SendNode, runs: list[Run]) -> None:
    due: dict[int, list[Run]] = {}
    for run in runs:
        state = run.context.setdefault(STATE, {}).setdefault(node.id, {"m": 0, "wait": False})
        if state["wait"]:
            state["wait"] = False
            state["m"] += 1
            if _responded(ctx, run, node, state["m"]):
                _leave(ctx, run, node, "responded before cascade step")
                continue
        due.setdefault(state["m"], []).append(run)
    for m, group in sorted(due.items()):
        _send_message(ctx, plan, node, m, group)


def _responded(ctx: BatchContext, run: Run, node: model.SendNode, m: int) -> bool:
    """Did the contact respond (any of the step's ``unless`` statuses) to the node's earlier messages?"""
    unless = set(node.cascade[m - 1].unless)
    if ctx.dry_run or not unless:
        return False
    statuses = set(unless)
    if "opened" in statuses:
        statuses.add("clicked")  # a click implies an open
    base = f"run:{run.id}:{node.id}"
    q = (
        select(MessageEvent.id)
        .join(OutboxMessage, OutboxMessage.id == MessageEvent.outbox_id)
        .where(or_(OutboxMessage.key == base, OutboxMessage.key.like(base + ":%")), MessageEvent.status.in_(statuses))
        .limit(1)
    )
    return ctx.session.scalar(q) is not None


def _leave(ctx: BatchContext, run: Run, node: model.SendNode, detail: str | None = None) -> None:
    run.context.get(STATE, {}).pop(node.id, None)
    ctx.move(run, "next", node.next, detail)


def _settled(ctx: BatchContext, run: Run, node: model.SendNode, m: int, detail: str | None) -> None:
    """Message ``m`` is settled: wait for the next cascade step, or leave."""
    if m < len(node.cascade) and not ctx.dry_run:
        run.context[STATE][node.id]["wait"] = True
        after = parse_duration(node.cascade[m].after).add_to(ctx.now)
        ctx.wait(run, after, f"cascade: {node.cascade[m].channel} after {node.cascade[m].after} unless responded")
        return
    _leave(ctx, run, node, detail)


def _send_message(ctx: BatchContext, plan: FlowPlan, node: model.SendNode, m: int, runs: list[Run]) -> None:
    channel_name, message, template_name = _message_spec(node, m)
    channel = ctx.runtime.registry.channels.get(channel_name)
    if channel is None:
        for run in runs:
            ctx.finish(run, "failed", f"channel {channel_name!r} is not installed")
        return
    keys = {outbox_key(run.id, node.id, m): run for run in runs}
    rows = {} if ctx.dry_run else {
        r[1]: _Row(*r) for r in fetch_rows(ctx.session,
            select(OUTBOX.c.id, OUTBOX.c.key, OUTBOX.c.status, OUTBOX.c.error, OUTBOX.c.attempts)
            .where(among(ctx.session, OUTBOX.c.key, list(keys)))
        )
    }
    fresh = [run for key, run in keys.items() if key not in rows]
    for key, row in rows.items():
        run = keys[key]
        if row.status in SETTLED:
            _settled(ctx, run, node, m, None if row.status == "sent" else f"message {row.status}: {row.error or ''}".strip())
        elif row.status == "failed":
            ctx.finish(run, "failed", f"{channel_name} send failed: {row.error}")
        elif row.status == "pending":
            if row.id in ctx.delivered:  # tried in this very call and told to retry
                run.attempts = row.attempts
                ctx.wait(run, ctx.now + backoff(row.attempts, ctx.retry_base), f"send retry {row.attempts}: {row.error}")
            else:
                ctx.block(run, row.id)
        elif row.status == "sending":
            if getattr(channel, "idempotent", False):
                _set_status(ctx, row.id, "pending", "resent after an interrupted provider call")
                ctx.block(run, row.id)
            else:
                _set_status(ctx, row.id, "unknown", "interrupted during the provider call; not resent (at most once)")
                _settled(ctx, run, node, m, "message unknown: interrupted during the provider call")
    if fresh:
        _decide_and_write(ctx, plan, node, m, channel, message, template_name, fresh)


def _set_status(ctx: BatchContext, outbox_id: int, status: str, error: str | None) -> None:
    ctx.session.execute(update(OutboxMessage).where(OutboxMessage.id == outbox_id).values(status=status, error=error))


def _decide_and_write(ctx, plan, node, m, channel, message, template_name, runs: list[Run]) -> None:
    known = {r.contact_id: ctx.contacts[r.contact_id] for r in runs if r.contact_id in ctx.fresh}
    decisions = filter_sends(ctx.session, ctx.runtime, channel=channel.name, topic=node.topic,
                             contact_ids=[r.contact_id for r in runs], now=ctx.now, on_cap=node.on_cap,
                             contacts=known)
    rows, by_key = [], {}
    for run in runs:
        d = decisions[run.contact_id]
        key = outbox_key(run.id, node.id, m)
        if d.action == "delay":
            ctx.wait(run, d.until, f"{channel.name} delayed: {d.reason}")
            continue
        contact = ctx.contacts[run.contact_id]
        base = {"key": key, "run_id": run.id, "flow_id": run.flow_id, "node_id": node.id, "contact_id": run.contact_id,
                "channel": channel.name, "attempts": 0, "created_at": ctx.now}
        if d.action == "skip":
            rows.append({**base, "status": "skipped", "error": d.reason, "payload": {}})
            by_key[key] = (run, "skip", d.reason)
            continue
        try:
            out = build_message(ctx, plan, node, run, contact, channel, message, template_name, key)
        except templates.TemplateError as exc:
            ctx.finish(run, "failed", f"{channel.name} template: {exc}")
            continue
        payload = msgspec.to_builtins(out)
        # Written as sending: handed over right after this transaction commits, without a
        # statement and a transaction of its own to claim it (see deliver).
        rows.append({**base, "status": "sending", "attempts": 1, "error": None, "payload": payload})
        ctx.built[key] = out
        by_key[key] = (run, "send", payload)
    if ctx.dry_run:
        for key, (run, action, info) in by_key.items():
            if action == "send":
                ctx.sent.append({"node": node.id, "channel": channel.name, "content": info["content"], "address": info["address"]})
                _leave(ctx, run, node, f"would send via {channel.name}")
            else:
                _leave(ctx, run, node, f"would skip {channel.name}: {info}")
        return
    if not rows:
        return
    ids = dict(bulk_insert(ctx.session, OutboxMessage.__table__, rows, on_conflict_nothing=True, returning=("key", "id")))
    # A row another process wrote first is the one that counts: the run comes back to it after
    # this transaction, as to any row it finds, and the message built here is dropped.
    for key in by_key.keys() - ids.keys():
        ctx.built.pop(key, None)
    for key, (run, action, info) in by_key.items():
        if action == "skip":
            _settled(ctx, run, node, m, f"skipped: {info}")
        elif key in ctx.built:
            ctx.hand_over(run, ids[key], key, channel.name)
        else:  # not ours: its run comes back to it after this transaction
            ctx.block(run, None)


def build_message(ctx, plan, node, run, contact, channel, message, template_name, key) -> OutboundMessage:
    context = render_context(ctx, plan, run, contact, key, channel.name, node.topic)
    content = templates.render_message(message, context)
    if template_name and isinstance(content, dict):
        content.setdefault("template", template_name)
    address_field = getattr(channel, "address_field", "email")
    address = contact.get(address_field) if address_field in contact else contact["external_id"]
    recipient = Recipient(contact_id=contact["id"], external_id=contact["external_id"], email=contact.get("email"),
                          phone=contact.get("phone"), timezone=contact.get("timezone"),
                          attributes=contact.get("attributes") or {})
    return OutboundMessage(key=key, recipient=recipient, address=str(address or ""), content=content, topic=node.topic)


# ---------------------------------------------------------------- handing messages to providers

_loop = threading.local()


def run_async(coro) -> Any:
    """Run a coroutine on this thread's own event loop, kept across calls so that
    channels can keep connections (an SMTP pool) open between batches."""
    loop = getattr(_loop, "loop", None)
    if loop is None or loop.is_closed():
        loop = _loop.loop = asyncio.new_event_loop()
    return loop.run_until_complete(coro)


async def _send(runtime, channel, messages: list[OutboundMessage]) -> list[SendResult]:
    rate = getattr(channel, "rate_limit", None)
    if rate:
        try:
            from kaskad.delivery.ratelimit import acquire
        except ImportError:
            acquire = None
        if acquire is not None:
            await acquire(runtime, channel.name, rate, len(messages))
    return await channel.send_batch(messages)


class Claimed(NamedTuple):
    """An outbox row marked ``sending`` by a committed transaction, to hand over now."""

    id: int
    key: str
    channel: str
    attempts: int


def deliver(runtime: Any, outbox_ids: list[int], built: dict[str, OutboundMessage] | None = None,
            record: bool = True, claimed: list[Claimed] = ()) -> list[dict]:
    """Hand outbox rows to their channels: ``pending`` ones (``outbox_ids``) are marked
    ``sending`` first; ``claimed`` ones were written as ``sending`` by the engine's committed
    transaction. Then call the channels and record the results.

    ``built`` are messages just written to these rows, by key; the others are read from their rows.
    With ``record=False`` the results are returned instead of written, for the caller to write
    with :func:`record_results` at the start of its next transaction (the engine's, which moves
    the runs on): until then the rows stay ``sending``, as after a crash during the call.
    """
    t = OUTBOX
    built = built or {}
    rows: list = list(claimed)
    unbuilt = [r.id for r in rows if r.key not in built]
    if outbox_ids or unbuilt:
        with transaction(runtime.sessions) as session:
            if outbox_ids:
                # One statement claims the rows: only those still pending (a duplicate batch
                # message, or a concurrent retry, finds nothing left to send).
                rows += session.execute(
                    update(t).where(among(session, t.c.id, outbox_ids), t.c.status == "pending")
                    .values(status="sending", attempts=t.c.attempts + 1)
                    .returning(t.c.id, t.c.key, t.c.channel, t.c.attempts)
                ).all()
                unbuilt = [r.id for r in rows if r.key not in built]
            payloads = dict(session.execute(select(t.c.id, t.c.payload).where(among(session, t.c.id, unbuilt))).all()
                            ) if unbuilt else {}
    if not rows:
        return []
    by_channel: dict[str, list] = {}
    for r in rows:
        by_channel.setdefault(r.channel, []).append(r)
    updates = []
    for name, group in by_channel.items():
        channel = runtime.registry.channels.get(name)
        messages = [built.get(r.key) or msgspec.convert(payloads[r.id], OutboundMessage) for r in group]
        try:
            results = {res.key: res for res in run_async(_send(runtime, channel, messages))}
        except Exception as exc:  # the channel raised for the whole batch: every message is retried
            log.warning("channel %s failed a batch of %d: %s", name, len(messages), exc)
            results = {}
            error = f"{type(exc).__name__}: {exc}"
        else:
            error = "the channel returned no result for this message"
        now = clock.now()
        for r, msg in zip(group, messages):
            res = results.get(r.key) or SendResult(key=r.key, status="retry", error=error)
            attempts = r.attempts
            if res.status == "sent":
                updates.append({"id": r.id, "status": "sent", "error": None,
                                "provider_message_id": res.provider_message_id, "cost": _cost(channel, msg),
                                "sent_at": now})
            elif res.status == "retry" and attempts < MAX_ATTEMPTS:
                updates.append({"id": r.id, "status": "pending", "error": res.error, "provider_message_id": None,
                                "cost": None, "sent_at": None})
            else:
                err = res.error if res.status == "failed" else f"{res.error} (gave up after {attempts} attempts)"
                updates.append({"id": r.id, "status": "failed", "error": err, "provider_message_id": None,
                                "cost": None, "sent_at": None})
    if record:
        with transaction(runtime.sessions) as session:
            record_results(session, updates)
    return updates


def record_results(session, updates: list[dict]) -> None:
    """Write what :func:`deliver` returned (``record=False``) into the outbox rows."""
    bulk_update(session, OutboxMessage.__table__, updates)


def _cost(channel, message: OutboundMessage) -> Decimal:
    try:
        return Decimal(channel.cost(message))
    except Exception:  # a cost function must never lose a sent message's record
        log.exception("cost() of channel %s failed", channel.name)
        return Decimal(0)


__all__ = ["handle_send", "Claimed", "deliver", "record_results", "outbox_key", "run_async"]
