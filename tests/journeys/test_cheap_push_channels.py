"""One offer through wallet cards (Apple and Google), web push and SMS in one journey: the push channels cost nothing
per message, the SMS costs its segments (issue #8)."""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from kaskad.engine.enroll import enroll
from kaskad.store.engine import transaction
from kaskad.store.models import OutboxMessage
from kaskad.testing.fakes.apns import FakeAPNs
from kaskad.testing.fakes.push_service import FakePushService
from kaskad.testing.fakes.sms_providers import FakeTwilio
from kaskad_channels.wallet import WalletConfig
from kaskad_channels.webpush import WebPushConfig, vapid

from ..channels.test_wallet_apple import PUSH_TOKEN, Device, _unzip
from ..channels.test_wallet_google import google_api  # noqa: F401  (the Google Wallet stand-in with credentials)
from ..engine.helpers import flow_doc, publish, runs
from .channels import add_people, configure, local_path, sent_by

SHOP = "https://shop.example"
SUBSCRIBE_KEY = "shop-backend-secret"
OFFER = "Free dessert with any coffee this weekend"
PEOPLE = {
    "ann": {"phone": "+79161110001", "attributes": {"first_name": "Ann"}},
    "bob": {"phone": "+79161110002", "attributes": {"first_name": "Bob"}},
}

FLOW = flow_doc("dessert-offer", [
    {"id": "card", "kind": "send", "channel": "wallet", "message": {"text": OFFER}, "next": "push"},
    {"id": "push", "kind": "send", "channel": "webpush",
     "message": {"title": "{{ contact.attributes.first_name }}, a treat for you", "body": OFFER, "url": "https://shop.example/dessert"},
     "next": "sms"},
    {"id": "sms", "kind": "send", "channel": "sms", "message": {"text": "{{ contact.attributes.first_name }}: " + OFFER}, "next": "end"},
    {"id": "end", "kind": "exit"},
])


@pytest.fixture
def providers(runtime, google_api):  # noqa: F811  (the imported fixture)
    google = google_api
    creds = google.creds
    with FakePushService() as push, FakeTwilio() as twilio, FakeAPNs(
        topic=creds.pass_type_id, tls_certificate=str(creds.tls_certificate), tls_key=str(creds.tls_key),
        team_id=creds.team_id, key_id=creds.apns_key_id, public_key=creds.apns_private_key.public_key(),
    ) as apns:
        wallet = runtime.registry.channels["wallet"]
        wallet.configure(WalletConfig(
            organization_name="Coffee Club", program_name="Coffee Club card",
            pass_type_id=creds.pass_type_id, team_id=creds.team_id,
            pass_certificate=str(creds.pass_certificate), pass_key=str(creds.pass_key), wwdr_certificate=str(creds.wwdr),
            apns_url=apns.url, apns_key=str(creds.apns_key), apns_key_id=creds.apns_key_id, apns_ca_file=str(creds.root_ca),
            google_issuer_id=google.creds.google_issuer_id, google_service_account_file=str(google.creds.google_service_account),
            google_base_url=google.base_url, google_origins=[SHOP]))
        wallet.balance_provider = lambda session, contact_id: (Decimal(40), "Silver")
        webpush = runtime.registry.channels["webpush"]
        webpush.configure(WebPushConfig(vapid_private_key=vapid.private_raw(vapid.generate()), allowed_origins=[SHOP],
                                        subscribe_key=SUBSCRIBE_KEY, subject="mailto:crm@shop.example"))
        push.vapid_public_key = webpush.application_server_key
        configure(runtime, "sms", provider="twilio", base_url=twilio.url, account_sid=twilio.account_sid,
                  auth_token=twilio.auth_token, from_number="+15005550006", price_per_segment="0.0079")
        yield google, apns, push, twilio



def google_card(api, runtime, external_id: str) -> str:
    """Issue the contact's card and open its "Add to Google Wallet" link (creates the Google object)."""
    card = api.post("/api/v1/wallet/cards", role="integrator", json={"external_id": external_id}).json()
    assert api.client.get(local_path(runtime, card["google_url"]), follow_redirects=False).status_code == 302
    return card["serial_number"]


def apple_card(api, runtime, external_id: str) -> Device:
    """Issue the contact's card, download the .pkpass and register an iPhone for it (PassKit web service)."""
    card = api.post("/api/v1/wallet/cards", role="integrator", json={"external_id": external_id}).json()
    data = json.loads(_unzip(api.client.get(local_path(runtime, card["apple_url"])).content)["pass.json"])
    device = Device(api.client, local_path(runtime, data["webServiceURL"]), data["passTypeIdentifier"],
                    data["serialNumber"], data["authenticationToken"])
    assert device.register().status_code == 201
    assert device.updated_serials() == [card["serial_number"]] and device.fetch()["points"] == 40
    return device


def subscribe(api, push, external_id: str) -> None:
    """The shop's page subscribes the logged-in customer's browser, signed by the shop's backend."""
    signature = hmac.new(SUBSCRIBE_KEY.encode(), external_id.encode(), hashlib.sha256).hexdigest()
    r = api.client.post("/webpush/subscribe", headers={"Origin": SHOP, "Content-Type": "text/plain"},
                        json={"subscription": push.new_subscription().subscription(), "external_id": external_id, "signature": signature})
    assert r.status_code == 200 and r.json() == {"contact": external_id}, r.text


def test_one_offer_by_wallet_push_and_sms_with_costs(runtime, api, providers, engine):
    google, apns, push, twilio = providers
    # Real time, no clock travel: Google's token endpoint (the stand-in too) refuses JWTs not issued now.
    publish(runtime, FLOW)
    ids = add_people(runtime, PEOPLE, consent=("wallet", "webpush", "sms"))
    name = {v: k for k, v in ids.items()}
    iphone = apple_card(api, runtime, "ann")  # Ann keeps her card in Apple Wallet, Bob in Google Wallet
    bob_serial = google_card(api, runtime, "bob")
    for ext in PEOPLE:
        subscribe(api, push, ext)
    with transaction(runtime.sessions) as s:
        assert enroll(s, runtime, "dessert-offer", list(ids.values())).enrolled == 2
    engine.drain()

    assert {name[r.contact_id]: r.status for r in runs(runtime)} == {"ann": "exited", "bob": "exited"}
    # Apple Wallet: APNs tells Ann's iPhone, which lists the updated serial and fetches the pass with the message.
    (note,) = apns.received
    assert apns.rejected == [] and note.token == PUSH_TOKEN and note.headers["apns-topic"] == google.creds.pass_type_id
    assert iphone.updated_serials() == [iphone.serial] and iphone.fetch()["message"] == OFFER
    # Google Wallet: the message was added to Bob's object, so it notifies.
    (message,) = google.objects[f"{google.issuer_id}.{bob_serial}"]["messages"]
    assert message["messageType"] == "TEXT_AND_NOTIFY" and message["body"] == OFFER
    # Web push: what the push service decrypted with each browser's key, VAPID-signed by us.
    assert push.rejected == [] and len(push.received) == 2
    titles = sorted(p.json()["title"] for p in push.received)
    assert titles == ["Ann, a treat for you", "Bob, a treat for you"]
    assert all(p.json()["body"] == OFFER and p.vapid_claims["sub"] == "mailto:crm@shop.example" for p in push.received)
    # SMS through Twilio.
    assert sorted((m["To"], m["Body"]) for m in twilio.sent) == [("+79161110001", "Ann: " + OFFER), ("+79161110002", "Bob: " + OFFER)]

    # Per-message cost: nothing for the wallet card and the push, the segment price for the SMS.
    for channel, price in (("wallet", Decimal(0)), ("webpush", Decimal(0)), ("sms", Decimal("0.0079"))):
        rows = sent_by(runtime, channel)
        assert set(rows) == set(ids.values())
        assert all(r.status == "sent" and r.cost == price for r in rows.values()), (channel, [(r.status, r.cost, r.error) for r in rows.values()])
    with runtime.sessions() as s:
        by_channel = dict(s.execute(select(OutboxMessage.channel, func.sum(OutboxMessage.cost))
                                    .where(OutboxMessage.status == "sent").group_by(OutboxMessage.channel)).all())
    assert {k: Decimal(v) for k, v in by_channel.items()} == {"wallet": 0, "webpush": 0, "sms": Decimal("0.0158")}
