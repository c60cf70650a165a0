"""flows/cascade-offer.json end to end: email to everyone, WhatsApp a day later only to those who
neither opened nor clicked nor ordered, SMS a day after that only to those still silent."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from kaskad import clock
from kaskad.engine.enroll import enroll
from kaskad.store.engine import transaction
from kaskad.testing.fakes.sms_providers import FakeSmsRu
from kaskad.testing.fakes.smtp import SmtpSink
from kaskad.testing.fakes.whatsapp_cloud import FakeWhatsAppCloud

from ..engine.helpers import T0, outbox, publish, runs
from .channels import APP_SECRET, add_people, configure, events, local_path, sent_by, whatsapp_status

FLOW = Path(__file__).parents[2] / "flows" / "cascade-offer.json"
PEOPLE = {
    "ann": {"email": "ann@example.com", "phone": "+79161110001", "attributes": {"first_name": "Ann"}},  # clicks the email
    "bob": {"email": "bob@example.com", "phone": "+79161110002", "attributes": {"first_name": "Bob"}},  # reads WhatsApp
    "cat": {"email": "cat@example.com", "phone": "+79161110003", "attributes": {"first_name": "Cat"}},  # silent
    "dan": {"email": "dan@example.com", "phone": "+79161110004", "attributes": {"first_name": "Dan"}},  # orders
}


@pytest.fixture
def providers(runtime):
    with SmtpSink() as smtp, FakeSmsRu() as smsru, FakeWhatsAppCloud(templates={"weekend_offer": 2}) as wa:
        configure(runtime, "email", host="127.0.0.1", port=str(smtp.port), starttls="false", from_address="offers@shop.example")
        configure(runtime, "sms", provider="smsru", base_url=smsru.url, api_id=smsru.api_id, sender="Shop", price_per_segment="4.50")
        configure(runtime, "whatsapp", base_url=wa.url, phone_number_id=wa.phone_number_id,
                  access_token=wa.access_token, app_secret=APP_SECRET, price_per_message="3.20")
        yield smtp, smsru, wa



def test_the_dear_channels_reach_only_the_remainder(runtime, api, providers, engine):
    smtp, smsru, wa = providers
    doc = json.loads(FLOW.read_text())
    doc["entry"] = {"kind": "api"}  # the shipped flow enrolls a segment; the cascade itself is unchanged
    with clock.travel(T0) as now:
        publish(runtime, doc)
        ids = add_people(runtime, PEOPLE, consent=("email", "whatsapp", "sms"))
        name = {v: k for k, v in ids.items()}
        with transaction(runtime.sessions) as s:
            assert enroll(s, runtime, "cascade-offer", list(ids.values())).enrolled == 4
        engine.drain()

        # Step 0: email to all four, personalised, with the topic's unsubscribe link.
        mails = {m["To"]: m for m in smtp.parsed()}
        assert sorted(mails) == sorted(p["email"] for p in PEOPLE.values())
        assert mails["ann@example.com"]["Subject"] == "Ann, 20% off this weekend"
        assert mails["ann@example.com"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert wa.sent == [] and smsru.sent == []

        # Ann clicks the offer link (a click is an open); Dan orders — the flow's goal.
        html = mails["ann@example.com"].get_body(("html",)).get_content()
        (offer,) = [h.replace("&amp;", "&") for h in re.findall(r'href="([^"]+)"', html) if "/t/c/" in h]
        r = api.client.get(local_path(runtime, offer), follow_redirects=False)
        assert r.status_code == 302 and r.headers["location"] == "https://shop.example/weekend"
        now[0] = T0 + timedelta(hours=2)
        r = api.post("/api/v1/events", role="integrator", json={"events": [
            {"contact": "dan", "name": "order_placed", "time": now[0].isoformat(), "properties": {"total": 80}}]})
        assert r.status_code == 200 and not r.json()["errors"], r.text
        engine.drain()
        assert runs(runtime, contact_id=ids["dan"])[0].status == "converted"

        # A day later: WhatsApp, the approved template, only to Bob and Cat.
        now[0] = T0 + timedelta(days=1, minutes=1)
        engine.drain()
        assert sorted(m["to"] for m in wa.sent) == ["79161110002", "79161110003"]
        bob = [m for m in wa.sent if m["to"] == "79161110002"][0]
        assert bob["template"]["name"] == "weekend_offer" and bob["template"]["language"] == {"code": "en"}
        assert [p["text"] for p in bob["template"]["components"][0]["parameters"]] == ["Bob", "20%"]
        assert smsru.sent == []

        # Bob reads it (WhatsApp's signed status webhook).
        now[0] = T0 + timedelta(days=1, hours=3)
        wamid = sent_by(runtime, "whatsapp")[ids["bob"]].provider_message_id
        body, headers = whatsapp_status(wamid, "read", "79161110002")
        assert api.client.post("/hooks/whatsapp", content=body, headers=headers).json() == {"received": 1, "recorded": 1}

        # Another day: the SMS reaches only Cat, through SMS.ru.
        now[0] = T0 + timedelta(days=2, minutes=2)
        engine.drain()
        assert [(m["to"], m["from"], m["msg"]) for m in smsru.sent] == [
            ("79161110003", "Shop", "20% off this weekend only: shop.example/weekend Reply STOP to opt out")]

        now[0] = T0 + timedelta(days=5)
        engine.drain()

    # Who received what, from the outbox: keys run:<run>:offer, :1 (WhatsApp), :2 (SMS).
    got = {}
    for row in outbox(runtime):
        got.setdefault(name[row.contact_id], []).append((row.channel, row.status, row.key.rsplit(":", 1)[-1]))
    assert got == {
        "ann": [("email", "sent", "offer")],
        "bob": [("email", "sent", "offer"), ("whatsapp", "sent", "1")],
        "cat": [("email", "sent", "offer"), ("whatsapp", "sent", "1"), ("sms", "sent", "2")],
        "dan": [("email", "sent", "offer")],
    }
    costs = {(name[r.contact_id], r.channel): r.cost for r in outbox(runtime)}
    assert costs[("cat", "sms")] == Decimal("4.50") and costs[("bob", "whatsapp")] == Decimal("3.20")
    assert {name[r.contact_id]: r.status for r in runs(runtime)} == {"ann": "exited", "bob": "exited", "cat": "exited", "dan": "converted"}
    assert ("email", "clicked", ids["ann"]) in events(runtime) and ("whatsapp", "opened", ids["bob"]) in events(runtime)
    assert len(smtp.messages) == 4 and len(wa.sent) == 2 and len(smsru.sent) == 1  # nothing sent twice
