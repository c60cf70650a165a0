"""What a journey's awards cost once they were used.

An award node writes a loyalty operation under the idempotency key the engine gives
it, ``run:{run_id}:{node_id}`` (the same scope as the node's outbox key). Two things
it can hand out cost money when they are redeemed:

- a **code** (promo code, melting discount, …): the discount each use took at the
  till (``loyalty_code_uses.amount`` of uses marked ``used``), unless the order was
  afterwards refunded in full or cancelled;
- **points**: the points of the lots the award created that were spent at checkout
  (spends minus spends put back), times the program's ``point_value``.

Not counted: points never spent (no cost yet), cashback boosts (their extra points
come from the order's confirm, not from the award), gift cards (bought with money).
"""

from __future__ import annotations

import re
from collections import defaultdict
from decimal import Decimal

from sqlalchemy import func, select

from kaskad.loyalty import program
from kaskad.loyalty.models import CodeUse, LedgerEntry, LoyaltyCode, Operation, Reservation

_KEY = re.compile(r"^run:(\d+):([^:]+)")
_CHUNK = 500


def _chunks(items: list, size: int = _CHUNK):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def award_costs(session) -> dict[tuple[int, str], Decimal]:
    """(run id, award node id) → money the award's redeemed codes and spent points cost."""
    awards: dict[int, tuple[int, str]] = {}
    codes: dict[str, tuple[int, str]] = {}
    rows = session.execute(
        select(Operation.id, Operation.key, Operation.result)
        .where(Operation.kind.like("award:%"), Operation.key.like("run:%"))
    )
    for op_id, key, result in rows:
        m = _KEY.match(key)
        if not m:
            continue
        scope = (int(m.group(1)), m.group(2))
        awards[op_id] = scope
        code = (result or {}).get("code")
        if isinstance(code, str):
            codes[code.strip().upper()] = scope
    out: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    for part in _chunks(list(codes)):
        q = (
            select(LoyaltyCode.code, func.sum(CodeUse.amount))
            .join(CodeUse, CodeUse.code_id == LoyaltyCode.id)
            .join(Reservation, Reservation.id == CodeUse.reservation_id)
            .where(LoyaltyCode.code.in_(part), CodeUse.status == "used",
                   Reservation.status.not_in(("refunded", "cancelled")))
            .group_by(LoyaltyCode.code)
        )
        for code, amount in session.execute(q):
            out[codes[code.upper()]] += Decimal(amount or 0)
    if awards:
        value = program.load(session).stacking.point_value
        for part in _chunks(list(awards)):
            lots = dict(session.execute(
                select(LedgerEntry.lot_id, LedgerEntry.operation_id)
                .where(LedgerEntry.operation_id.in_(part), LedgerEntry.kind == "earn")
            ).all())
            for lot_part in _chunks(list(lots)):
                q = (
                    select(LedgerEntry.lot_id, func.sum(LedgerEntry.amount))
                    .where(LedgerEntry.lot_id.in_(lot_part), LedgerEntry.kind.in_(("spend", "reverse_spend")))
                    .group_by(LedgerEntry.lot_id)
                )
                for lot_id, net in session.execute(q):
                    spent = -Decimal(net or 0)  # spends are negative, put-backs positive
                    if spent > 0:
                        out[awards[lots[lot_id]]] += spent * value
    return dict(out)
