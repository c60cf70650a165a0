"""Recording what providers report about sent messages.

A ``bounced`` event whose ``detail["permanent"]`` is true (a hard bounce: the
address does not exist) also revokes the contact's consent for that channel
(topic ``*``, source ``hard-bounce``), so nothing is sent to the dead address
again; a soft bounce changes nothing but the message's status.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kaskad import clock
from kaskad.channels import DeliveryEvent
from kaskad.delivery.engagement import revoke_consent
from kaskad.store.dialect import insert_for
from kaskad.store.models import MessageEvent, OutboxMessage

#: Statuses that change the outbox row's own status (engagement does not).
OUTBOX_STATUS = {"delivered": "delivered", "failed": "failed", "bounced": "failed"}


def record_delivery_events(session: Session, channel: str, events: list[DeliveryEvent]) -> int:
    """Store the first of each status per message; returns how many were new. Unknown messages are ignored."""
    if not events:
        return 0
    ids = {e.provider_message_id for e in events if e.provider_message_id}
    keys = {e.outbox_key for e in events if e.outbox_key}
    rows = session.execute(
        select(OutboxMessage.id, OutboxMessage.contact_id, OutboxMessage.provider_message_id, OutboxMessage.key).where(
            OutboxMessage.channel == channel,
            OutboxMessage.provider_message_id.in_(ids) | OutboxMessage.key.in_(keys),
        )
    ).all()
    by_provider = {r.provider_message_id: r for r in rows if r.provider_message_id}
    by_key = {r.key: r for r in rows}
    now = clock.now()
    new = 0
    for e in events:
        row = (by_provider.get(e.provider_message_id) if e.provider_message_id else None) or by_key.get(e.outbox_key)
        if row is None:
            continue
        stmt = insert_for(session, MessageEvent).values(
            outbox_id=row.id, contact_id=row.contact_id, status=e.status, at=e.at or now, detail=e.detail
        ).on_conflict_do_nothing(index_elements=["outbox_id", "status"]).returning(MessageEvent.id)
        new += len(session.execute(stmt).all())
        if e.status in OUTBOX_STATUS:
            if e.status == "bounced" and e.detail.get("permanent"):
                revoke_consent(session, row.contact_id, channel, "*", source="hard-bounce")
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row.id, OutboxMessage.status.in_(["sent", "delivered"]))
                .values(status=OUTBOX_STATUS[e.status])
            )
    return new
