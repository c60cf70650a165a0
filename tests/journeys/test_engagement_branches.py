"""A journey talks to real servers: email to aiosmtpd, WhatsApp and SMS to the provider stand-ins;
the open pixel and a signed WhatsApp status webhook then decide which port later branches take."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest

from kaskad import clock
from kaskad.engine.enroll import enroll
from kaskad.store.engine import transaction
from kaskad.testing.fakes.sms_providers import FakeTwilio
from kaskad.testing.fakes.smtp import SmtpSink
from kaskad.testing.fakes.whatsapp_cloud import FakeWhatsAppCloud
from kaskad_channels.sms.channel import twilio_signature

from ..engine.helpers import T0, flow_doc, publish, runs
from .channels import APP_SECRET, add_people, configure, events, local_path, ports, sent_by, whatsapp_status

PEOPLE = {
    "ann": {"email": "ann@example.com", "phone": "+79161110001", "attributes": {"first_name": "Ann"}},
    "bob": {"email": "bob@example.com", "phone": "+79161110002", "attributes": {"first_name": "Bob"}},
    "cat": {"email": "cat@example.com", "phone": "+79161110003", "attributes": {"first_name": "Cat"}},
}

FLOW = flow_doc("offer-branches", [
    {"id": "mail", "kind": "send", "channel": "email", "topic": "offers", "message": {
        "subject": "{{ contact.attributes.first_name }}, 20% off this weekend",
        "html": '<p>Hi {{ contact.attributes.first_name }},</p><p><a href="https://shop.example/weekend">See the offer</a></p>'
                '<p><a href="{{ links.unsubscribe }}">Unsubscribe</a></p>'}, "next": "day"},
    {"id": "day", "kind": "wait", "for": "P1D", "next": "opened"},
    {"id": "opened", "kind": "branch", "cases": [
        {"when": {"kind": "engagement", "node": "mail", "status": "opened"}, "next": "end"}], "else": "wa"},
    {"id": "wa", "kind": "send", "channel": "whatsapp", "topic": "offers", "message": {
        "template": "gift_offer", "language": "en", "parameters": ["{{ contact.attributes.first_name }}", "20%"]}, "next": "hour"},
    {"id": "hour", "kind": "wait", "for": "PT6H", "next": "read"},
    {"id": "read", "kind": "branch", "cases": [
        {"when": {"kind": "engagement", "node": "wa", "status": "opened"}, "next": "end"}], "else": "sms"},
    {"id": "sms", "kind": "send", "channel": "sms", "topic": "offers",
     "message": {"text": "{{ contact.attributes.first_name }}: 20% off this weekend, shop.example/weekend"}, "next": "end"},
    {"id": "end", "kind": "exit"},
])


@pytest.fixture
def providers(runtime):
    with SmtpSink() as smtp, FakeTwilio() as twilio, FakeWhatsAppCloud() as wa:
        configure(runtime, "email", host="127.0.0.1", port=str(smtp.port), starttls="false",
                  from_address="offers@shop.example", from_name="Shop", unsubscribe_mailto="unsubscribe@shop.example")
        configure(runtime, "sms", provider="twilio", base_url=twilio.url, account_sid=twilio.account_sid,
                  auth_token=twilio.auth_token, from_number="+15005550006", price_per_segment="0.0079")
        configure(runtime, "whatsapp", base_url=wa.url, phone_number_id=wa.phone_number_id,
                  access_token=wa.access_token, app_secret=APP_SECRET, price_per_message="0.0147")
        yield smtp, twilio, wa



def test_sends_for_real_and_engagement_moves_the_branches(runtime, api, providers, engine):
    smtp, twilio, wa = providers
    client = api.client
    with clock.travel(T0) as now:
        publish(runtime, FLOW)
        ids = add_people(runtime, PEOPLE, consent=("email", "whatsapp", "sms"))
        name = {v: k for k, v in ids.items()}
        with transaction(runtime.sessions) as s:
            assert enroll(s, runtime, "offer-branches", list(ids.values())).enrolled == 3
        engine.drain()

        # Three emails arrived at the SMTP server, each rendered for its contact, with RFC 8058 headers.
        mails = {m["To"]: m for m in smtp.parsed()}
        assert sorted(mails) == ["ann@example.com", "bob@example.com", "cat@example.com"]
        emails = sent_by(runtime, "email")
        assert {name[c]: r.status for c, r in emails.items()} == {"ann": "sent", "bob": "sent", "cat": "sent"}
        for ext, person in PEOPLE.items():
            mail = mails[person["email"]]
            row = emails[ids[ext]]
            assert mail["Subject"] == f"{person['attributes']['first_name']}, 20% off this weekend"
            assert mail["From"] == "Shop <offers@shop.example>"
            assert mail["X-Kaskad-Key"] == row.key == f"run:{row.run_id}:mail" and mail["Message-ID"] == row.provider_message_id
            assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            https, mailto = re.findall(r"<([^>]+)>", mail["List-Unsubscribe"])
            assert mailto.startswith("mailto:unsubscribe@shop.example")
            html = mail.get_body(("html",)).get_content()
            assert f"Hi {person['attributes']['first_name']}," in html
            assert f'href="{https}"' in html  # the body's unsubscribe link is the signed header link
            assert "Hi " + person["attributes"]["first_name"] in mail.get_body(("plain",)).get_content()
        assert twilio.sent == [] and wa.sent == []  # nothing else before the wait is over

        # Ann opens her email: the signed open pixel in what arrived records the open.
        (pixel,) = re.findall(r'<img src="([^"]+)"', mails["ann@example.com"].get_body(("html",)).get_content())
        assert client.get(local_path(runtime, pixel)).status_code == 200
        # A pixel with a damaged signature records nothing.
        assert client.get(local_path(runtime, pixel)[:-3] + "AAA").status_code in (400, 403)
        assert events(runtime) == [("email", "opened", ids["ann"])]

        now[0] = T0 + timedelta(days=1, minutes=1)
        engine.drain()
        assert {name[c]: p for c, p in ports(runtime, "opened").items()} == {"ann": "case:0", "bob": "else", "cat": "else"}

        # WhatsApp went only to Bob and Cat, as the approved template with their parameters.
        assert sorted(m["to"] for m in wa.sent) == ["79161110002", "79161110003"]
        for m in wa.sent:
            first = "Bob" if m["to"].endswith("2") else "Cat"
            assert m["type"] == "template" and m["template"] == {"name": "gift_offer", "language": {"code": "en"},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": first}, {"type": "text", "text": "20%"}]}]}
        wa_rows = sent_by(runtime, "whatsapp")
        assert set(wa_rows) == {ids["bob"], ids["cat"]}
        assert all(r.status == "sent" and r.cost == Decimal("0.0147") for r in wa_rows.values())

        # Bob reads it: WhatsApp's signed status webhook. An unsigned or forged one is refused and stores nothing.
        bob_wamid = wa_rows[ids["bob"]].provider_message_id
        body, headers = whatsapp_status(bob_wamid, "read", "79161110002")
        assert client.post("/hooks/whatsapp", content=body, headers={"Content-Type": "application/json"}).status_code == 403
        forged_body, forged = whatsapp_status(wa_rows[ids["cat"]].provider_message_id, "read", "79161110003", secret="guess")
        assert client.post("/hooks/whatsapp", content=forged_body, headers=forged).status_code == 403
        r = client.post("/hooks/whatsapp", content=body, headers=headers)
        assert r.status_code == 200 and r.json() == {"received": 1, "recorded": 1}
        assert events(runtime) == [("email", "opened", ids["ann"]), ("whatsapp", "opened", ids["bob"])]

        now[0] = T0 + timedelta(days=1, hours=6, minutes=2)
        engine.drain()
        assert {name[c]: p for c, p in ports(runtime, "read").items()} == {"bob": "case:0", "cat": "else"}

        # The SMS reached only Cat, through Twilio, with her text; its cost follows the segments.
        assert twilio.sent == [{"To": "+79161110003", "From": "+15005550006", "Body": "Cat: 20% off this weekend, shop.example/weekend"}]
        (sms,) = sent_by(runtime, "sms").values()
        assert sms.contact_id == ids["cat"] and sms.cost == Decimal("0.0079") and sms.provider_message_id.startswith("SM")

        # Twilio's status callback, signed over the public URL and the form, marks it delivered.
        form = {"MessageSid": sms.provider_message_id, "MessageStatus": "delivered", "To": "+79161110003"}
        url = runtime.settings.public_url + "/hooks/sms"
        sig = twilio_signature(twilio.auth_token, url, form)
        typ = {"Content-Type": "application/x-www-form-urlencoded"}
        assert client.post("/hooks/sms", content=urlencode(form), headers={**typ, "X-Twilio-Signature": "x" + sig}).status_code == 403
        assert client.post("/hooks/sms", content=urlencode(form), headers={**typ, "X-Twilio-Signature": sig}).status_code == 200
        assert ("sms", "delivered", ids["cat"]) in events(runtime)

    assert {name[r.contact_id]: r.status for r in runs(runtime)} == {"ann": "exited", "bob": "exited", "cat": "exited"}
    assert len(smtp.messages) == 3 and len(wa.sent) == 2 and len(twilio.sent) == 1  # nothing sent twice
    stats = api.get("/api/v1/flows/offer-branches/stats", role="marketer").json()
    assert stats["exited"] == 3 and stats["failed"] == 0
    assert stats["nodes"]["opened"]["ports"] == {"case:0": 1, "else": 2}
    assert stats["nodes"]["read"]["ports"] == {"case:0": 1, "else": 1}
    assert stats["nodes"]["sms"]["entered"] == 1
