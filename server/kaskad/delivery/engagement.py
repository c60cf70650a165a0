"""Engagement observed by Kaskad itself (an open pixel, a click, a notification shown, an
unsubscribe link) into ``message_events``, and the consent changes it implies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kaskad import clock
from kaskad.store.dialect import insert_for
from kaskad.store.models import Consent, Contact, MessageEvent, OutboxMessage


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


def revoke_consent(session: Session, contact_id: int, channel: str, topic: str, source: str) -> bool:
    """Revoke ``contact_id``'s consent for ``channel``/``topic`` (``*`` = the whole channel).

    True when this changed something; a consent already revoked keeps its
    original time and source (a second click is a no-op).
    """
    stmt = insert_for(session, Consent).values(
        contact_id=contact_id, channel=channel, topic=topic, status="revoked", source=source, updated_at=clock.now()
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["contact_id", "channel", "topic"],
        set_={"status": stmt.excluded.status, "source": stmt.excluded.source, "updated_at": stmt.excluded.updated_at},
        where=Consent.status != "revoked",
    ).returning(Consent.id)
    return bool(session.execute(stmt).all())


def unsubscribe(session: Session, outbox_key: str, contact_id: int, channel: str, topic: str, source: str = "unsubscribe-link") -> bool:
    """Revoke consent and record ``unsubscribed`` on the message (if it is still in the outbox).

    The contact must exist; the message is matched by key *and* contact, so a
    token cannot mark another contact's message. True when consent changed.
    """
    if session.get(Contact, contact_id) is None:
        return False
    changed = revoke_consent(session, contact_id, channel, topic, source)
    owner = session.scalar(select(OutboxMessage.contact_id).where(OutboxMessage.key == outbox_key))
    if owner == contact_id:
        record(session, outbox_key, "unsubscribed", detail={"channel": channel, "topic": topic, "source": source})
    return changed
