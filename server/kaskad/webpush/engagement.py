"""Engagement a channel observes itself (a notification shown, a click) into ``message_events``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kaskad import clock
from kaskad.store.models import MessageEvent, OutboxMessage


def record(session: Session, outbox_key: str, status: str, at: datetime | None = None, detail: dict[str, Any] | None = None) -> bool:
    """Record the first ``status`` of the outbox message ``outbox_key``; False if unknown or already recorded."""
    row = session.execute(
        select(OutboxMessage.id, OutboxMessage.contact_id).where(OutboxMessage.key == outbox_key)
    ).first()
    if row is None:
        return False
    exists = session.scalar(
        select(MessageEvent.id).where(MessageEvent.outbox_id == row.id, MessageEvent.status == status)
    )
    if exists is not None:
        return False
    try:
        with session.begin_nested():
            session.add(
                MessageEvent(outbox_id=row.id, contact_id=row.contact_id, status=status, at=at or clock.now(), detail=detail or {})
            )
    except IntegrityError:  # a concurrent duplicate: the first one stands
        return False
    return True
