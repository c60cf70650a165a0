"""Loyalty: the points ledger, codes, tiers and checkout.

Other areas read a contact's standing with :func:`balance`; mechanics plugins
(``plugins/mechanics/``) award through :mod:`kaskad.loyalty.ledger` and
:mod:`kaskad.loyalty.codes`. docs/loyalty.md is the long form.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import select

from kaskad import clock
from kaskad.loyalty.ledger import num


def balance(session, contact_id: int, now: datetime | None = None) -> dict:
    """A contact's standing, JSON-ready::

        {"points": "120", "pending": "30",
         "lots": [{"id", "remaining", "available_at", "expires_at", "reason", "pending"}],
         "next_expiry": {"points", "at"} | None,
         "tier": {"tier", "multiplier", "spend", "window", "next_tier", "spend_to_next"}}

    ``points`` is spendable now; ``pending`` is earned but still in its pending period.
    """
    from kaskad.loyalty import program, tiers
    from kaskad.loyalty.models import PointLot

    now = now or clock.now()
    lots = session.scalars(
        select(PointLot)
        .where(PointLot.contact_id == contact_id, PointLot.remaining > 0)
        .order_by(PointLot.expires_at.asc().nulls_last(), PointLot.id)
    ).all()
    points = pending = Decimal(0)
    out, next_expiry = [], None
    for lot in lots:
        if lot.expires_at is not None and lot.expires_at <= now:
            continue
        is_pending = lot.available_at > now
        if is_pending:
            pending += lot.remaining
        else:
            points += lot.remaining
            if lot.expires_at is not None and next_expiry is None:
                next_expiry = {"points": num(lot.remaining), "at": lot.expires_at.isoformat()}
        out.append({
            "id": lot.id, "remaining": num(lot.remaining), "reason": lot.reason, "pending": is_pending,
            "available_at": lot.available_at.isoformat(),
            "expires_at": lot.expires_at.isoformat() if lot.expires_at else None,
        })
    rules = program.load(session)
    return {"points": num(points), "pending": num(pending), "lots": out, "next_expiry": next_expiry,
            "tier": tiers.progress(session, contact_id, rules, now)}


__all__ = ["balance"]
