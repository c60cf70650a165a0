"""Hand-made analytics data: rows inserted directly, as the engine, channels and loyalty would write them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import insert, select

from kaskad.loyalty.models import CodeUse, LedgerEntry, LoyaltyCode, Operation, PointLot, Reservation
from kaskad.store.models import (
    Contact, Event, Flow, FlowVersion, JourneyRun, MessageEvent, Order, OutboxMessage, RunStep,
)

D0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)  # a Monday


def at(days: float = 0, hours: float = 0) -> datetime:
    return D0 + timedelta(days=days, hours=hours)


class Data:
    """Inserts rows and hands back their ids; ``s`` is an open session (commit is the caller's)."""

    def __init__(self, s, prefix: str = "o"):
        self.s = s
        self.prefix, self.n = prefix, 0

    def _id(self, model, **values) -> int:
        return self.s.execute(insert(model).values(**values).returning(model.id)).scalar_one()

    def contact_id(self, name: str) -> int:
        return self.s.scalar(select(Contact.id).where(Contact.external_id == name))

    def contact(self, name: str, created: datetime = D0 - timedelta(days=400), erased: datetime | None = None) -> int:
        return self._id(Contact, external_id=name, attributes={}, tags=[], created_at=created, updated_at=created,
                        erased_at=erased)

    def flow(self, key: str, goal: dict | None = None) -> tuple[int, int]:
        doc = {"schema": "kaskad.flow/1", "key": key, "name": key, "nodes": []}
        if goal is not None:
            doc["goal"] = goal
        fid = self._id(Flow, key=key, name=key, current_version=1)
        vid = self._id(FlowVersion, flow_id=fid, version=1, status="published", document=json.dumps(doc))
        return fid, vid

    def run(self, flow: tuple[int, int], contact: int, entered: datetime = D0, status: str = "exited",
            split: dict | None = None, steps: dict[str, datetime] | None = None) -> int:
        rid = self._id(JourneyRun, flow_id=flow[0], flow_version_id=flow[1], contact_id=contact, node_id="end",
                       status=status, entered_at=entered, context={"split": split} if split else {})
        for node, when in (steps or {}).items():
            self._id(RunStep, run_id=rid, flow_version_id=flow[1], node_id=node, port="next", outcome="passed", at=when)
        return rid

    def message(self, run: int, flow: tuple[int, int], contact: int, node: str, channel: str, *, sent: datetime | None,
                cost: str | None, status: str = "sent", events: tuple[str, ...] = (), step: int = 0) -> int:
        mid = self._id(OutboxMessage, key=f"run:{run}:{node}:{step}", run_id=run, flow_id=flow[0], node_id=node,
                       contact_id=contact, channel=channel, status=status, payload={},
                       cost=Decimal(cost) if cost is not None else None, sent_at=sent, created_at=sent or D0)
        for i, ev in enumerate(events):
            self._id(MessageEvent, outbox_id=mid, contact_id=contact, status=ev, at=(sent or D0) + timedelta(minutes=i + 1))
        return mid

    def broadcast(self, contact: int, channel: str, sent: datetime, events: tuple[str, ...] = ()) -> int:
        """A sent message outside any journey run (a campaign)."""
        self.n += 1
        mid = self._id(OutboxMessage, key=f"bc:{self.prefix}{self.n}", contact_id=contact, channel=channel, status="sent",
                       payload={}, cost=Decimal("0.01"), sent_at=sent, created_at=sent)
        for ev in events:
            self._id(MessageEvent, outbox_id=mid, contact_id=contact, status=ev, at=sent + timedelta(hours=1))
        return mid

    def order(self, contact: int, placed: datetime, amount: str, status: str = "paid", refunded: str = "0") -> int:
        from kaskad.segments import order_stats

        self.n += 1
        oid = self._id(Order, external_id=f"{self.prefix}{self.n}", contact_id=contact, status=status, amount=Decimal(amount),
                       refunded_amount=Decimal(refunded), currency="EUR", placed_at=placed, attributes={})
        order_stats.refresh(self.s, [contact])  # as the orders API keeps the per-contact summary RFM reads
        return oid

    def event(self, contact: int, name: str, when: datetime, **props) -> int:
        return self._id(Event, contact_id=contact, name=name, occurred_at=when, properties=props)

    # -- loyalty: what an award node and a checkout leave behind ---------------------------

    def award_code(self, run: int, node: str, contact: int, code: str, discount: str, reservation_status="confirmed"):
        self._id(Operation, key=f"run:{run}:{node}", kind="award:promo_code", contact_id=contact,
                 result={"code": code}, created_at=D0)
        cid = self._id(LoyaltyCode, code=code, kind="promo", contact_id=contact, percent=Decimal(10), max_uses=1,
                       uses=1, valid_from=D0, created_at=D0, details={})
        res = self._id(Reservation, key=f"res-{code}", contact_id=contact, status=reservation_status, quote={},
                       net=Decimal(100), created_at=D0)
        self._id(CodeUse, code_id=cid, contact_id=contact, reservation_id=res, status="used",
                 amount=Decimal(discount), created_at=D0)

    def award_points(self, run: int, node: str, contact: int, points: int, spent: int, put_back: int = 0):
        op = self._id(Operation, key=f"run:{run}:{node}", kind="award:points", contact_id=contact, result={}, created_at=D0)
        lot = self._id(PointLot, contact_id=contact, amount=Decimal(points), remaining=Decimal(points - spent + put_back),
                       reason="award", available_at=D0, created_at=D0)
        self._id(LedgerEntry, contact_id=contact, lot_id=lot, operation_id=op, kind="earn", amount=Decimal(points),
                 reason="award", created_at=D0)
        checkout = self._id(Operation, key=f"redeem:{run}", kind="redeem", contact_id=contact, result={}, created_at=D0)
        self._id(LedgerEntry, contact_id=contact, lot_id=lot, operation_id=checkout, kind="spend", amount=-Decimal(spent),
                 reason="checkout", created_at=D0)
        if put_back:
            self._id(LedgerEntry, contact_id=contact, lot_id=lot, operation_id=checkout, kind="reverse_spend",
                     amount=Decimal(put_back), reason="refund", created_at=D0)
