"""Contacts, events and orders: the integrator's data API.

``POST /contacts``, ``POST /events`` and ``POST /orders`` take up to
``max_batch`` items (10,000 by default) and answer with what was stored and
an ``errors`` list of bad items by index; ``GET /contacts/{external_id}``
shows a contact with its consents, orders, events and journeys;
``DELETE /contacts/{external_id}`` erases its personal data.
"""

from __future__ import annotations

from typing import Any

from litestar import delete, get, post
from litestar.exceptions import HTTPException, NotFoundException
from sqlalchemy import func, select

from kaskad.api.auth import ANY_ROLE, INTEGRATOR
from kaskad.ingest.batch import BatchRejected, as_json, decode_batch
from kaskad.ingest.contacts import ContactIn, erase_contact, upsert_contacts
from kaskad.ingest.events import EventIn, store_events
from kaskad.ingest.orders import OrderIn, store_orders
from kaskad.runtime import Runtime
from kaskad.store.engine import transaction
from kaskad.store.models import Consent, Contact, Event, Flow, FlowVersion, JourneyRun, Order, RunStep


def _ingest(runtime: Runtime, body: bytes, key: str, item_type, store, names: tuple[str, str]) -> dict[str, Any]:
    """Decode a bulk body, store its good items in one transaction, report the bad ones by index."""
    try:
        items, errors = decode_batch(body, key, item_type, runtime.settings.max_batch)
    except BatchRejected as exc:
        raise HTTPException(status_code=exc.status_code, detail=str(exc)) from None
    with transaction(runtime.sessions) as session:
        first, second, more = store(session, items)
    errors = sorted(errors + more, key=lambda e: e.index)
    return {names[0]: first, names[1]: second, "errors": as_json(errors)}


@post("/contacts", guards=[INTEGRATOR], sync_to_thread=True, status_code=200)
def post_contacts(runtime: Runtime, body: bytes) -> dict[str, Any]:
    """Create or update contacts by ``external_id`` (attributes are patched key by key)."""
    return _ingest(runtime, body, "contacts", ContactIn, upsert_contacts, ("created", "updated"))


@post("/events", guards=[INTEGRATOR], sync_to_thread=True, status_code=200)
def post_events(runtime: Runtime, body: bytes) -> dict[str, Any]:
    """Store events; an event whose ``id`` was seen before is skipped."""
    return _ingest(runtime, body, "events", EventIn, store_events, ("stored", "duplicates"))


@post("/orders", guards=[INTEGRATOR], sync_to_thread=True, status_code=200)
def post_orders(runtime: Runtime, body: bytes) -> dict[str, Any]:
    """Store orders; re-sending an order with a new status updates it and emits that status's event once."""
    return _ingest(runtime, body, "orders", OrderIn, store_orders, ("created", "updated"))


def _iso(dt):
    return dt.isoformat() if dt is not None else None


@get("/contacts/{external_id:str}", guards=[ANY_ROLE], sync_to_thread=True)
def get_contact(runtime: Runtime, external_id: str) -> dict[str, Any]:
    """A contact with consents, an orders summary, recent events and its journeys with their steps."""
    with runtime.sessions() as s:
        c = s.scalar(select(Contact).where(Contact.external_id == external_id))
        if c is None:
            raise NotFoundException(f"no contact with external_id {external_id!r}")
        consents = s.scalars(select(Consent).where(Consent.contact_id == c.id).order_by(Consent.channel, Consent.topic))
        spend = s.execute(
            select(
                func.count(Order.id),
                func.coalesce(func.sum(Order.amount - Order.refunded_amount), 0),
                func.max(Order.placed_at),
            ).where(Order.contact_id == c.id, Order.status.notin_(["cancelled", "placed"]))
        ).one()
        events = s.execute(
            select(Event.name, Event.occurred_at, Event.properties)
            .where(Event.contact_id == c.id)
            .order_by(Event.occurred_at.desc(), Event.id.desc())
            .limit(50)
        ).all()
        runs = s.execute(
            select(JourneyRun, Flow.key, FlowVersion.version)
            .join(Flow, Flow.id == JourneyRun.flow_id)
            .join(FlowVersion, FlowVersion.id == JourneyRun.flow_version_id)
            .where(JourneyRun.contact_id == c.id)
            .order_by(JourneyRun.entered_at.desc(), JourneyRun.id.desc())
            .limit(100)
        ).all()
        steps: dict[int, list[dict]] = {}
        if runs:
            for st in s.scalars(
                select(RunStep).where(RunStep.run_id.in_([r[0].id for r in runs])).order_by(RunStep.at, RunStep.id)
            ):
                steps.setdefault(st.run_id, []).append(
                    {"node": st.node_id, "port": st.port, "outcome": st.outcome, "detail": st.detail, "at": _iso(st.at)}
                )
        return {
            "external_id": c.external_id,
            "email": c.email,
            "phone": c.phone,
            "timezone": c.timezone,
            "attributes": c.attributes,
            "tags": c.tags,
            "created_at": _iso(c.created_at),
            "updated_at": _iso(c.updated_at),
            "erased": c.erased_at is not None,
            "consents": [
                {"channel": k.channel, "topic": k.topic, "status": k.status, "source": k.source, "updated_at": _iso(k.updated_at)}
                for k in consents
            ],
            "orders": {"count": spend[0], "spent": str(spend[1]), "last_order_at": _iso(spend[2])},
            "events": [{"name": e.name, "time": _iso(e.occurred_at), "properties": e.properties} for e in events],
            "journeys": [
                {
                    "flow": key,
                    "version": version,
                    "node": run.node_id,
                    "status": run.status,
                    "entered_at": _iso(run.entered_at),
                    "finished_at": _iso(run.finished_at),
                    "error": run.error,
                    "steps": steps.get(run.id, []),
                }
                for run, key, version in runs
            ],
        }


@delete("/contacts/{external_id:str}", guards=[INTEGRATOR], sync_to_thread=True, status_code=200)
def delete_contact(runtime: Runtime, external_id: str) -> dict[str, Any]:
    """Erase a contact's personal data (GDPR): history stays, anonymised."""
    with transaction(runtime.sessions) as session:
        found = erase_contact(session, external_id)
    if not found:
        raise NotFoundException(f"no contact with external_id {external_id!r} (already erased, or never stored)")
    return {"erased": True}


routes = [post_contacts, post_events, post_orders, get_contact, delete_contact]
