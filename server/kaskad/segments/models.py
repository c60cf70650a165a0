"""Tables of the segments area (migration ``0011_segments``)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Date, ForeignKey, Index, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kaskad.store.models import Base, Contact, Order
from kaskad.store.types import BigIntPK, Money

# Windowed order conditions ("2 orders in the last 30 days") read a range of placed_at.
ORDERS_PLACED_AT = Index("ix_orders_placed_at", Order.placed_at)
# Membership tracking re-evaluates contacts whose record changed since its last pass.
CONTACTS_UPDATED_AT = Index("ix_contacts_updated_at", Contact.updated_at)


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


class SegmentDefinition(Base):
    """A stored segment; ``current_version`` is the version queries use."""

    __tablename__ = "segment_definitions"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    current_version: Mapped[int]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SegmentVersion(Base):
    """One saved version of a segment (canonical JSON); versions are never changed."""

    __tablename__ = "segment_versions"
    __table_args__ = (UniqueConstraint("segment_id", "version"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segment_definitions.id", ondelete="CASCADE"))
    version: Mapped[int]
    document: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    created_by: Mapped[str | None] = mapped_column(String(120))


class RfmSnapshot(Base):
    """A contact's RFM scores on one day (one snapshot per day, replaced while the day lasts).

    History, written a million rows at a time: no foreign key and no index beyond the
    primary key, whose ``taken_on`` prefix is what every read uses.
    """

    __tablename__ = "rfm_snapshots"
    taken_on: Mapped[date] = mapped_column(Date, primary_key=True)
    contact_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    r: Mapped[int] = mapped_column(SmallInteger)
    f: Mapped[int] = mapped_column(SmallInteger)
    m: Mapped[int] = mapped_column(SmallInteger)
    segment: Mapped[str] = mapped_column(String(32))


class SegmentMembership(Base):
    """A contact is in a segment since ``entered_at`` (the row goes when they leave)."""

    __tablename__ = "segment_memberships"
    __table_args__ = (Index("ix_segment_memberships_contact", "contact_id"),)
    segment: Mapped[str] = mapped_column(String(120), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    entered_at: Mapped[datetime]


class SegmentsState(Base):
    """Small named state of the segments jobs: cursors over events, times of the last full pass."""

    __tablename__ = "segments_state"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    number: Mapped[int | None] = mapped_column(BigInteger)
    at: Mapped[datetime | None]
