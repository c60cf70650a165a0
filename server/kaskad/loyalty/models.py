"""Loyalty tables: accounts (the lock point), lots, the append-only ledger,
operations (idempotency), codes and their uses, checkout reservations, the program."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kaskad.store.models import Base, _now
from kaskad.store.types import BigIntPK, JSONDoc, Money


class LoyaltyAccount(Base):
    """One per contact. Every balance change locks this row first (``FOR UPDATE``)."""

    __tablename__ = "loyalty_accounts"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), unique=True)
    tier: Mapped[str | None] = mapped_column(String(64))
    tier_since: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=_now())


class PointLot(Base):
    """Points earned together, with their own pending period and expiry."""

    __tablename__ = "loyalty_lots"
    __table_args__ = (
        CheckConstraint("remaining >= 0", name="remaining_not_negative"),
        Index("ix_loyalty_lots_contact_expiry", "contact_id", "expires_at"),
        Index("ix_loyalty_lots_expiry", "expires_at"),
    )
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    amount: Mapped[Decimal] = mapped_column(Money)
    remaining: Mapped[Decimal] = mapped_column(Money)
    reason: Mapped[str] = mapped_column(String(120))
    available_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    warned_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class LedgerEntry(Base):
    """One signed movement of points on one lot. Never updated, never deleted."""

    __tablename__ = "loyalty_entries"
    __table_args__ = (Index("ix_loyalty_entries_contact", "contact_id", "id"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    # No foreign keys on the rows a redeem writes (here, operations, code uses, reservations):
    # each value comes from a row the same transaction locked or wrote, contacts and
    # operations are never deleted, and the checks cost much of PostgreSQL's time per redeem
    # (migrations 0014 and 0017). Queries join entries to their operation by the index.
    contact_id: Mapped[int] = mapped_column(BigIntPK)
    lot_id: Mapped[int] = mapped_column(BigIntPK, index=True)
    operation_id: Mapped[int] = mapped_column(BigIntPK, index=True)
    # earn | spend | expire | reverse_earn | reverse_spend
    kind: Mapped[str] = mapped_column(String(24))
    amount: Mapped[Decimal] = mapped_column(Money)
    reason: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime]


class Operation(Base):
    """A caller's operation under its idempotency key; a repeat returns ``result``."""

    __tablename__ = "loyalty_operations"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    contact_id: Mapped[int | None] = mapped_column(BigIntPK, index=True)  # no foreign key: see LedgerEntry
    result: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    created_at: Mapped[datetime]


class LoyaltyCode(Base):
    """A promo code, a personal melting discount, a gift card, a referral code or a cashback offer."""

    __tablename__ = "loyalty_codes"
    __table_args__ = (Index("ix_loyalty_codes_contact_kind", "contact_id", "kind"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    code: Mapped[str] = mapped_column(String(120), unique=True)
    # promo | melting | gift_card | referral | cashback
    kind: Mapped[str] = mapped_column(String(24))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    batch: Mapped[str | None] = mapped_column(String(120), index=True)
    percent: Mapped[Decimal | None] = mapped_column(Money)
    balance: Mapped[Decimal | None] = mapped_column(Money)
    max_uses: Mapped[int | None]
    uses: Mapped[int] = mapped_column(default=0)
    per_customer_limit: Mapped[int | None]
    combinable: Mapped[bool] = mapped_column(default=True)
    min_order: Mapped[Decimal | None] = mapped_column(Money)
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime | None]
    #: melting discount: [{"percent", "from", "until"}]; referral: reward rules.
    details: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    #: melting discount: how many step-boundary events were written.
    steps_announced: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]


class CodeUse(Base):
    __tablename__ = "loyalty_code_uses"
    __table_args__ = (Index("ix_loyalty_code_uses_code_contact", "code_id", "contact_id"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    # no foreign keys: see LedgerEntry
    code_id: Mapped[int] = mapped_column(BigIntPK)
    contact_id: Mapped[int | None] = mapped_column(BigIntPK)
    reservation_id: Mapped[int] = mapped_column(BigIntPK, index=True)
    status: Mapped[str] = mapped_column(String(16))  # reserved | used | released
    amount: Mapped[Decimal] = mapped_column(Money)
    created_at: Mapped[datetime]


class Reservation(Base):
    """A redeemed checkout: the stored quote, and what it spent and earned."""

    __tablename__ = "loyalty_reservations"
    __table_args__ = (UniqueConstraint("key"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    key: Mapped[str] = mapped_column(String(300))
    contact_id: Mapped[int | None] = mapped_column(BigIntPK, index=True)  # no foreign key: see LedgerEntry
    order_ref: Mapped[str | None] = mapped_column(String(200), index=True)
    # reserved | confirmed | cancelled | refunded | partially_refunded
    status: Mapped[str] = mapped_column(String(24))
    quote: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    net: Mapped[Decimal] = mapped_column(Money)
    points_spent: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    points_earned: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    earn_lot_id: Mapped[int | None]
    refunded_amount: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    points_restored: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    points_reversed: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    gift_restored: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    created_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]


class Program(Base):
    """The loyalty program's rules (one row, id 1): accrual, tiers, stacking."""

    __tablename__ = "loyalty_program"
    id: Mapped[int] = mapped_column(primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    updated_at: Mapped[datetime]
