"""Wallet passes, the Apple devices that hold them, and their registrations."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, ForeignKey, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from kaskad.store.models import Base
from kaskad.store.types import BigIntPK, Money


class WalletPass(Base):
    """One loyalty card per contact, shown as an Apple pass and/or a Google Wallet object.

    ``updated_at`` changes whenever what the card shows changes; it is the
    PassKit "updated since" tag and the pass's Last-Modified. ``last_event_id``
    is the newest points/tier event already reflected on the card.
    """

    __tablename__ = "wallet_passes"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), unique=True)
    serial_number: Mapped[str] = mapped_column(String(64), unique=True)
    auth_token: Mapped[str] = mapped_column(String(64))
    card_number: Mapped[str] = mapped_column(String(64), unique=True)
    points: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    tier: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)
    message_key: Mapped[str | None] = mapped_column(String(300))
    last_event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    google_object_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime]

    @property
    def update_tag(self) -> str:
        """The PassKit ``lastUpdated`` tag: the change time in microseconds."""
        return str(int(self.updated_at.timestamp() * 1_000_000))


class WalletDevice(Base):
    """An Apple device (deviceLibraryIdentifier) and its APNs push token."""

    __tablename__ = "wallet_devices"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    device_library_id: Mapped[str] = mapped_column(String(200), unique=True)
    push_token: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class WalletRegistration(Base):
    """A device asked to be told (by APNs) when a pass changes."""

    __tablename__ = "wallet_registrations"
    __table_args__ = (UniqueConstraint("device_id", "pass_id"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("wallet_devices.id", ondelete="CASCADE"))
    pass_id: Mapped[int] = mapped_column(ForeignKey("wallet_passes.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
