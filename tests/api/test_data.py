"""Contacts, events and orders through the API, on SQLite and PostgreSQL."""

from decimal import Decimal

from sqlalchemy import func, select

from kaskad.store.models import Consent, Contact, Event, MessageEvent, Order, OrderItem, OutboxMessage


def _count(runtime, model, *where):
    with runtime.sessions() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_contacts_upsert_creates_then_patches_attributes(api):
    r = api.post("/api/v1/contacts", role="integrator", json={"contacts": [
        {"external_id": "c1", "email": "ann@example.com", "phone": "8 (916) 123-45-67", "phone_region": "RU",
         "timezone": "Europe/Moscow", "attributes": {"city": "Moscow", "first_name": "Ann"}, "tags": ["vip"]},
    ]})
    assert r.status_code == 200 and r.json() == {"created": 1, "updated": 0, "errors": []}
    r = api.post("/api/v1/contacts", role="integrator", json={"contacts": [
        {"external_id": "c1", "attributes": {"city": None, "tier": "gold"}}]})
    assert r.json() == {"created": 0, "updated": 1, "errors": []}
    c = api.get("/api/v1/contacts/c1", role="marketer").json()
    assert c["attributes"] == {"first_name": "Ann", "tier": "gold"}  # patched, city removed by null
    assert c["phone"] == "+79161234567" and c["email"] == "ann@example.com" and c["tags"] == ["vip"]


def test_bad_items_are_reported_by_index_and_good_ones_stored(api, runtime):
    r = api.post("/api/v1/contacts", role="integrator", json={"contacts": [
        {"external_id": "ok1"},
        {"external_id": "bad-email", "email": "not-an-email"},
        {"external_id": "bad-tz", "timezone": "Mars/Olympus"},
        {"external_id": "bad-phone", "phone": "12"},
        {"external_id": 5},
        {"external_id": "x", "colour": "red"},
        {"external_id": "ok2"},
    ]})
    body = r.json()
    assert r.status_code == 200 and body["created"] == 2
    assert [(e["index"], e["field"]) for e in body["errors"]] == [
        (1, "email"), (2, "timezone"), (3, "phone"), (4, "external_id"), (5, None)]
    assert "colour" in body["errors"][4]["message"]
    assert _count(runtime, Contact) == 2


def test_consents_are_stored_and_updated(api, runtime):
    api.post("/api/v1/contacts", role="integrator", json={"contacts": [{"external_id": "c", "consents": [
        {"channel": "email", "status": "granted"}, {"channel": "sms", "topic": "promo", "status": "granted"}]}]})
    api.post("/api/v1/contacts", role="integrator", json={"contacts": [{"external_id": "c", "consents": [
        {"channel": "sms", "topic": "promo", "status": "revoked", "source": "call-centre"}]}]})
    consents = api.get("/api/v1/contacts/c").json()["consents"]
    assert [(k["channel"], k["topic"], k["status"]) for k in consents] == [("email", "*", "granted"), ("sms", "promo", "revoked")]
    assert _count(runtime, Consent) == 2


def test_events_are_idempotent_on_id_and_create_unknown_contacts(api, runtime):
    batch = {"events": [
        {"contact": "new-1", "name": "cart_updated", "id": "ev-1", "time": "2026-01-05T10:00:00+03:00",
         "properties": {"cart_id": "k1", "total": 1999}},
        {"contact": "new-1", "name": "viewed_product", "id": "ev-2"},
        {"contact": "new-2", "name": "signed_up"},
    ]}
    assert api.post("/api/v1/events", role="integrator", json=batch).json() == {"stored": 3, "duplicates": 0, "errors": []}
    again = api.post("/api/v1/events", role="integrator", json={"events": batch["events"][:2]}).json()
    assert again == {"stored": 0, "duplicates": 2, "errors": []}
    assert _count(runtime, Event) == 3 and _count(runtime, Contact) == 2
    assert _count(runtime, Event, Event.dispatched_at.is_(None)) == 3  # waiting for the engine's dispatcher


def test_event_errors_by_index(api, runtime):
    r = api.post("/api/v1/events", role="integrator", json={"events": [
        {"contact": "a", "name": "ok"},
        {"contact": "a", "name": "has spaces"},
        {"contact": "a", "name": "x", "time": "2026-01-01T00:00:00"},
        {"contact": "a", "name": "x", "time": "2999-01-01T00:00:00Z"},
        {"contact": "", "name": "x"},
    ]}).json()
    assert r["stored"] == 1
    assert [(e["index"], e["field"]) for e in r["errors"]] == [(1, "name"), (2, "time"), (3, "time"), (4, "contact")]
    assert "timezone" in r["errors"][1]["message"] and "future" in r["errors"][2]["message"]


def _order(status="paid", **kw):
    o = {"id": "o-1", "contact": "buyer", "status": status, "currency": "RUB", "placed_at": "2026-10-01T12:00:00Z",
         "items": [{"sku": "pizza-1", "category": "pizza", "quantity": 2, "price": "450.50"},
                   {"sku": "cola", "category": "drinks", "quantity": "1", "price": 99}]}
    o.update(kw)
    return o


def test_orders_store_items_exact_money_and_emit_events_once(api, runtime):
    r = api.post("/api/v1/orders", role="integrator", json={"orders": [_order()]})
    assert r.json() == {"created": 1, "updated": 0, "errors": []}
    with runtime.sessions() as s:
        order = s.scalar(select(Order))
        assert order.amount == Decimal("1000.00")  # 2 × 450.50 + 99, exact
        assert s.scalar(select(func.count()).select_from(OrderItem)) == 2
        names = sorted(s.scalars(select(Event.name)))
    assert names == ["order_paid", "order_placed"]
    # Re-sent unchanged: nothing new. Refunded: one refund event, once.
    api.post("/api/v1/orders", role="integrator", json={"orders": [_order()]})
    for _ in range(2):
        r = api.post("/api/v1/orders", role="integrator", json={"orders": [_order("refunded")]})
    assert _count(runtime, Event, Event.name == "order_refunded") == 1
    assert _count(runtime, Event) == 3
    contact = api.get("/api/v1/contacts/buyer").json()
    assert contact["orders"]["count"] == 1 and float(contact["orders"]["spent"]) == 0


def test_partial_refunds_each_emit_an_event(api, runtime):
    api.post("/api/v1/orders", role="integrator", json={"orders": [_order()]})
    api.post("/api/v1/orders", role="integrator", json={"orders": [_order("partially_refunded", refunded_amount="99")]})
    api.post("/api/v1/orders", role="integrator", json={"orders": [_order("partially_refunded", refunded_amount="199")]})
    assert _count(runtime, Event, Event.name == "order_refunded") == 2
    assert float(api.get("/api/v1/contacts/buyer").json()["orders"]["spent"]) == 801


def test_order_errors_by_index(api, runtime):
    r = api.post("/api/v1/orders", role="integrator", json={"orders": [
        _order(id="a", amount="5"),
        _order(id="b", items=[{"sku": "x", "quantity": 0, "price": 1}]),
        _order(id="c", currency="rub"),
        _order(id="d", status="partially_refunded"),
        _order(id="e", refunded_amount="5000"),
        _order(id="ok"),
    ]}).json()
    assert r["created"] == 1
    assert [(e["index"], e["field"]) for e in r["errors"]] == [
        (0, "amount"), (1, "items[0].quantity"), (2, "currency"), (3, "refunded_amount"), (4, "refunded_amount")]
    assert _count(runtime, Order) == 1


def test_whole_body_errors_store_nothing(api, runtime):
    for body, status, words in [
        (b"{nope", 400, "not valid JSON"),
        (b"[]", 400, "must be a JSON object"),
        (b'{"contacts": {}}', 400, "must be a list"),
        (b'{"contacts": [], "extra": 1}', 400, "unknown top-level key"),
        (b"", 400, "empty"),
    ]:
        r = api.post("/api/v1/contacts", role="integrator", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == status and words in r.json()["detail"], (body, r.text)
    assert _count(runtime, Contact) == 0


def test_ten_thousand_items_are_accepted_and_more_is_413_with_nothing_stored(api, runtime):
    big = {"events": [{"contact": f"c{i % 500}", "name": "viewed", "id": f"e{i}"} for i in range(10_000)]}
    r = api.post("/api/v1/events", role="integrator", json=big)
    assert r.status_code == 200 and r.json()["stored"] == 10_000
    over = {"events": [{"contact": "c", "name": "viewed"}] * (runtime.settings.max_batch + 1)}
    r = api.post("/api/v1/events", role="integrator", json=over)
    assert r.status_code == 413 and "split the batch" in r.json()["detail"]
    assert _count(runtime, Event) == 10_000


def test_roles(api):
    assert api.post("/api/v1/contacts", role="marketer", json={"contacts": []}).status_code == 403
    assert api.post("/api/v1/events", role="marketer", json={"events": []}).status_code == 403
    assert api.post("/api/v1/contacts", role="integrator", json={"contacts": []}).status_code == 200
    api.post("/api/v1/contacts", role="integrator", json={"contacts": [{"external_id": "r"}]})
    assert api.get("/api/v1/contacts/r", role="marketer").status_code == 200
    assert api.delete("/api/v1/contacts/r", role="marketer").status_code == 403


def test_erasure_removes_personal_data_everywhere_and_is_idempotent(api, runtime):
    from kaskad.store.engine import transaction

    api.post("/api/v1/contacts", role="integrator", json={"contacts": [{
        "external_id": "gdpr", "email": "x@example.com", "phone": "+79161234567", "timezone": "Europe/Moscow",
        "attributes": {"first_name": "X"}, "tags": ["t"], "consents": [{"channel": "email", "status": "granted"}]}]})
    api.post("/api/v1/events", role="integrator", json={"events": [{"contact": "gdpr", "name": "viewed", "properties": {"ip": "1.2.3.4"}}]})
    api.post("/api/v1/orders", role="integrator", json={"orders": [_order(contact="gdpr")]})
    with transaction(runtime.sessions) as s:
        cid = s.scalar(select(Contact.id).where(Contact.external_id == "gdpr"))
        msg = OutboxMessage(key="k1", contact_id=cid, channel="email", status="sent", payload={"to": "x@example.com"})
        s.add(msg)
        s.flush()
        s.add(MessageEvent(outbox_id=msg.id, contact_id=cid, status="opened", at=order_time(), detail={"ua": "X"}))
    assert api.delete("/api/v1/contacts/gdpr").json() == {"erased": True}
    with runtime.sessions() as s:
        c = s.get(Contact, cid)
        assert c.external_id.startswith("erased:") and "gdpr" not in c.external_id
        assert (c.email, c.phone, c.timezone, c.attributes, c.tags) == (None, None, None, {}, [])
        assert c.erased_at is not None
        assert s.scalar(select(func.count()).select_from(Consent)) == 0
        assert all(p == {} for p in s.scalars(select(Event.properties).where(Event.contact_id == cid)))
        assert s.scalar(select(OutboxMessage.payload)) == {}
        assert s.scalar(select(MessageEvent.detail)) == {}
        assert s.scalar(select(func.count()).select_from(Order).where(Order.contact_id == cid)) == 1  # accounting stays
    assert api.delete("/api/v1/contacts/gdpr").status_code == 404
    assert api.get("/api/v1/contacts/gdpr").status_code == 404


def order_time():
    from datetime import datetime, timezone

    return datetime(2026, 10, 2, tzinfo=timezone.utc)


def test_contact_shows_its_journeys_with_steps(api, runtime):
    from kaskad.store.engine import transaction
    from kaskad.store.models import Flow, FlowVersion, JourneyRun, RunStep

    api.post("/api/v1/contacts", role="integrator", json={"contacts": [{"external_id": "j"}]})
    with transaction(runtime.sessions) as s:
        cid = s.scalar(select(Contact.id).where(Contact.external_id == "j"))
        f = Flow(key="welcome", name="Welcome")
        s.add(f)
        s.flush()
        v = FlowVersion(flow_id=f.id, version=1, status="published", document="{}")
        s.add(v)
        s.flush()
        run = JourneyRun(flow_id=f.id, flow_version_id=v.id, contact_id=cid, node_id="wait", status="waiting")
        s.add(run)
        s.flush()
        s.add(RunStep(run_id=run.id, flow_version_id=v.id, node_id="mail", port="next", outcome="passed"))
    journeys = api.get("/api/v1/contacts/j").json()["journeys"]
    assert len(journeys) == 1
    j = journeys[0]
    assert (j["flow"], j["version"], j["node"], j["status"]) == ("welcome", 1, "wait", "waiting")
    assert [(st["node"], st["port"], st["outcome"]) for st in j["steps"]] == [("mail", "next", "passed")]
