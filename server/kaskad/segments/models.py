"""Tables of the segments area (migration ``0011_segments``)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from kaskad.store.models import Base, Order
from kaskad.store.types import Money

# Windowed order conditions ("2 orders in the last 30 days") read a range of placed_at.
ORDERS_PLACED_AT = Index("ix_orders_placed_at", Order.placed_at)


class ContactOrderStats(Base):
    """Per-contact order summary, kept in step with ``orders`` by :mod:`kaskad.segments.order_stats`.

    Counts only orders that are not cancelled or refunded; ``spend`` is net of
    ``refunded_amount``. A contact without such orders has no row.
    """

    __tablename__ = "contact_order_stats"
    __table_args__ = (Index("ix_contact_order_stats_last_at", "last_at"),)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    orders: Mapped[int]
    spend: Mapped[Decimal] = mapped_column(Money)
    first_at: Mapped[datetime]
    last_at: Mapped[datetime]
