"""Push subscriptions: one browser (PushSubscription) of one contact."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from kaskad.store.models import Base
from kaskad.store.types import BigIntPK


class PushSubscription(Base):
    """A browser's PushSubscription. The endpoint is unique: re-subscribing moves it, never duplicates it.

    Deleted when the push service answers 404 or 410 (the subscription expired or the user revoked it).
    """

    __tablename__ = "push_subscriptions"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    endpoint: Mapped[str] = mapped_column(String(1000), unique=True)
    p256dh: Mapped[str] = mapped_column(String(200))
    auth: Mapped[str] = mapped_column(String(100))
    user_agent: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_sent_at: Mapped[datetime | None]
