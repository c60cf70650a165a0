"""Helpers for loyalty tests: contacts, and the ledger invariants every test can check."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from kaskad.loyalty.ledger import points_balance
from kaskad.loyalty.models import LedgerEntry, PointLot
from kaskad.store.engine import transaction
from kaskad.store.models import Contact


def contact(sessions, external_id: str) -> int:
    with transaction(sessions) as session:
        row = Contact(external_id=external_id)
        session.add(row)
        session.flush()
        return row.id


def check_invariants(session, contact_id: int) -> Decimal:
    """Every lot equals the sum of its entries, none is negative, and the balance is the
    sum of the live lots. Returns the balance."""
    lots = session.scalars(select(PointLot).where(PointLot.contact_id == contact_id)).all()
    for lot in lots:
        total = session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(LedgerEntry.lot_id == lot.id))
        assert Decimal(total) == lot.remaining, f"lot {lot.id}: entries sum to {total}, remaining {lot.remaining}"
        assert lot.remaining >= 0
        assert lot.remaining <= lot.amount
    kinds = set(session.scalars(select(LedgerEntry.kind).where(LedgerEntry.contact_id == contact_id)).all())
    assert kinds <= {"earn", "spend", "expire", "reverse_earn", "reverse_spend"}
    balance = points_balance(session, contact_id)
    assert balance >= 0
    return balance
