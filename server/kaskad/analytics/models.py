"""Materialised analytics tables, rebuilt by :mod:`kaskad.analytics.jobs`.

The raw tables (runs, steps, outbox, message events, orders) are the truth; these
hold small per-day sums of them so that a dashboard reads a few hundred rows
instead of scanning millions. Every journey figure is filed under the day its run
*entered* the flow (a cohort), so a day's rates compare like with like.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from kaskad.store.models import Base
from kaskad.store.types import Money


class _Counters:
    """The message and conversion counters shared by flow and node rows."""

    sent: Mapped[int] = mapped_column(default=0)
    delivered: Mapped[int] = mapped_column(default=0)
    opened: Mapped[int] = mapped_column(default=0)
    clicked: Mapped[int] = mapped_column(default=0)
    bounced: Mapped[int] = mapped_column(default=0)
    unsubscribed: Mapped[int] = mapped_column(default=0)
    converted: Mapped[int] = mapped_column(default=0)
    orders: Mapped[int] = mapped_column(default=0)
    revenue: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    message_cost: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    loyalty_cost: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))


class FlowDay(_Counters, Base):
    """One flow, one entry day, one split path (``""`` outside splits), treated or holdout."""

    __tablename__ = "analytics_flow_days"
    flow_id: Mapped[int] = mapped_column(ForeignKey("flows.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    path: Mapped[str] = mapped_column(String(120), primary_key=True)
    holdout: Mapped[bool] = mapped_column(primary_key=True)
    entered: Mapped[int] = mapped_column(default=0)
    #: runs with at least one paid order inside the window (the repeat-purchase rate's numerator)
    purchasers: Mapped[int] = mapped_column(default=0)
    #: sum over runs of (revenue of the run)²: with ``revenue`` and ``entered`` it gives the variance
    revenue_sq: Mapped[float] = mapped_column(Float, default=0.0)


class NodeDay(_Counters, Base):
    """One node of one flow, runs that entered on ``day``. ``channel`` ``""`` is the node as a
    whole (reached, conversions after reaching it); a send node also has a row per channel
    with its messages and the conversions credited to them by last touch."""

    __tablename__ = "analytics_node_days"
    flow_id: Mapped[int] = mapped_column(ForeignKey("flows.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    node_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    reached: Mapped[int] = mapped_column(default=0)


class BasePeriod(Base):
    """The base and its buying in one day, week (starting Monday) or month."""

    __tablename__ = "analytics_base_periods"
    grain: Mapped[str] = mapped_column(String(8), primary_key=True)  # day | week | month
    period: Mapped[date] = mapped_column(Date, primary_key=True)
    contacts: Mapped[int] = mapped_column(default=0)  # the base at the period's end
    new_contacts: Mapped[int] = mapped_column(default=0)
    orders: Mapped[int] = mapped_column(default=0)
    revenue: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    buyers: Mapped[int] = mapped_column(default=0)
    new_customers: Mapped[int] = mapped_column(default=0)  # first paid order in this period


class Cohort(Base):
    """Customers whose first paid order fell in ``cohort`` (a month) and what they spent
    ``age`` months later (0 = the first month)."""

    __tablename__ = "analytics_cohorts"
    cohort: Mapped[date] = mapped_column(Date, primary_key=True)
    age: Mapped[int] = mapped_column(primary_key=True)
    customers: Mapped[int] = mapped_column(default=0)
    buyers: Mapped[int] = mapped_column(default=0)
    revenue: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))


class Snapshot(Base):
    """A figure that only exists as of a moment (RFM segment sizes, churned customers),
    kept once a day so that it can be shown over time."""

    __tablename__ = "analytics_snapshots"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # rfm | base
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(default=0)


class Fatigue(Base):
    """Contacts who got ``received`` messages of ``channel`` in ``week`` (5 = five or more),
    and how many of them unsubscribed from a message of that week."""

    __tablename__ = "analytics_fatigue"
    week: Mapped[date] = mapped_column(Date, primary_key=True)
    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    received: Mapped[int] = mapped_column(primary_key=True)
    contacts: Mapped[int] = mapped_column(default=0)
    unsubscribed: Mapped[int] = mapped_column(default=0)


class Refresh(Base):
    """When each part was last rebuilt (shown with the figures as ``refreshed_at``)."""

    __tablename__ = "analytics_refreshes"
    part: Mapped[str] = mapped_column(String(32), primary_key=True)
    at: Mapped[datetime]
