"""Tiers by net spend over a rolling window; upgrade and downgrade both happen on recompute."""

from __future__ import annotations

import functools
from datetime import datetime
from decimal import Decimal

from sqlalchemy import bindparam, exists, func, select

from kaskad.flow.durations import parse_duration
from kaskad.loyalty.ledger import account as ledger_account
from kaskad.loyalty.ledger import emit, num
from kaskad.loyalty.models import Reservation
from kaskad.loyalty.program import ProgramRules


def window_start(rules: ProgramRules, now: datetime) -> datetime:
    return parse_duration("-" + rules.tier_window).add_to(now)


@functools.cache
def spend_statement():
    """The net spend of contact ``cid`` confirmed in (``start``, ``now``]: its checkouts, and the
    orders from the orders API that no checkout covers. One statement: every checkout of a tiered
    program runs it, on the API's sync and asynchronous paths alike."""
    from kaskad.store.models import Order

    checkouts = select(func.coalesce(func.sum(Reservation.net - Reservation.refunded_amount), 0)).where(
        Reservation.contact_id == bindparam("cid"),
        Reservation.status.in_(("confirmed", "partially_refunded", "refunded")),
        Reservation.confirmed_at > bindparam("start"),
        Reservation.confirmed_at <= bindparam("now"),
    ).scalar_subquery()
    orders = select(func.coalesce(func.sum(Order.amount - Order.refunded_amount), 0)).where(
        Order.contact_id == bindparam("cid"),
        Order.status.in_(("paid", "partially_refunded", "refunded")),
        Order.placed_at > bindparam("start"),
        Order.placed_at <= bindparam("now"),
        ~exists().where(Reservation.order_ref == Order.external_id),
    ).scalar_subquery()
    return select(checkouts + orders)


def spend_in_window(session, contact_id: int, rules: ProgramRules, now: datetime) -> Decimal:
    return Decimal(session.scalar(spend_statement(), {"cid": contact_id, "start": window_start(rules, now), "now": now}))


def progress(session, contact_id: int, rules: ProgramRules, now: datetime, spend: Decimal | None = None) -> dict:
    """The contact's tier and what it takes to reach the next; ``spend`` in the window, if read already."""
    if not rules.tiers:
        return {"tier": None, "multiplier": "1", "spend": None, "window": None, "next_tier": None, "spend_to_next": None}
    if spend is None:
        spend = spend_in_window(session, contact_id, rules, now)
    tier = rules.tier_for(spend)
    nxt = next((t for t in rules.tiers if t.min_spend > spend), None)
    return {
        "tier": tier.name if tier else None,
        "multiplier": num(tier.multiplier) if tier else "1",
        "spend": num(spend),
        "window": rules.tier_window,
        "next_tier": nxt.name if nxt else None,
        "spend_to_next": num(nxt.min_spend - spend) if nxt else None,
    }


def recompute(session, contact_id: int, rules: ProgramRules, now: datetime, cause: str) -> str | None:
    """Set the contact's tier from its spend; a change writes a ``tier_changed`` event."""
    if not rules.tiers:
        return None
    account = ledger_account(session, contact_id)
    tier = rules.tier_for(spend_in_window(session, contact_id, rules, now))
    name = tier.name if tier else None
    if name != account.tier:
        emit(
            session, contact_id, "tier_changed", {"from": account.tier, "to": name},
            key=f"loyalty:tier_changed:{contact_id}:{cause}:{account.tier}:{name}", at=now,
        )
        account.tier, account.tier_since = name, now
    return name
