"""Google Wallet against a local stand-in of the OAuth token endpoint and the walletobjects REST API."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from kaskad import clock
from kaskad.channels import OutboundMessage, Recipient
from kaskad.store.engine import transaction
from kaskad.store.models import Contact, Event, OutboxMessage
from kaskad.testing.fakes.google_wallet import FakeGoogleWallet
from kaskad.testing.fakes.wallet_certs import make_wallet_credentials
from kaskad.wallet import jws
from kaskad.wallet.jobs import sync_wallet_balances
from kaskad_channels.wallet import WalletConfig

SHOP = "https://shop.example"


@pytest.fixture
def google_api(tmp_path):
    fake = FakeGoogleWallet(issuer_id="", service_account_email="", public_key=None).start()
    creds = make_wallet_credentials(tmp_path / "creds", token_url=fake.token_url)
    fake.issuer_id, fake.service_account_email, fake.public_key = creds.google_issuer_id, creds.google_email, creds.google_key.public_key()
    fake.creds = creds
    yield fake
    fake.stop()


@pytest.fixture
def balances():
    return {}


@pytest.fixture
def wallet(runtime, google_api, balances):
    creds = google_api.creds
    channel = runtime.registry.channels["wallet"]
    channel.configure(
        WalletConfig(
            organization_name="Coffee Club", program_name="Coffee Club card",
            google_issuer_id=creds.google_issuer_id, google_service_account_file=str(creds.google_service_account),
            google_base_url=google_api.base_url, google_origins=[SHOP],
        )
    )
    channel.bind(runtime)
    channel.balance_provider = lambda session, contact_id: balances.get(contact_id, (Decimal(0), None))
    return channel


def test_card_object_save_link_points_and_message(runtime, api, wallet, google_api, balances):
    with transaction(runtime.sessions) as session:
        contact = Contact(external_id="guest-9", attributes={"first_name": "Grace", "last_name": "Hopper"}, tags=[])
        session.add(contact)
        session.flush()
        contact_id = contact.id
    balances[contact_id] = (Decimal(120), "Silver")
    card = api.post("/api/v1/wallet/cards", json={"external_id": "guest-9"}).json()
    assert card["apple_url"] is None and card["google_url"]

    resp = api.client.get(card["google_url"].removeprefix(runtime.settings.public_url), follow_redirects=False)
    assert resp.status_code == 302, resp.text
    link = resp.headers["location"]
    assert link.startswith("https://pay.google.com/gp/v/save/")
    header, claims = jws.verify(link.rsplit("/", 1)[1], google_api.creds.google_key.public_key())
    object_id = f"{google_api.issuer_id}.{card['serial_number']}"
    class_id = f"{google_api.issuer_id}.loyalty"
    assert header["alg"] == "RS256"
    assert claims["aud"] == "google" and claims["typ"] == "savetowallet" and claims["iss"] == google_api.creds.google_email
    assert claims["origins"] == [SHOP]
    assert claims["payload"] == {"loyaltyObjects": [{"id": object_id, "classId": class_id}]}

    assert [code for code, _ in google_api.errors] == [404]  # the class lookup before it is created
    klass = google_api.classes[class_id]
    assert klass["issuerName"] == "Coffee Club" and klass["programLogo"]["sourceUri"]["uri"] == f"{runtime.settings.public_url}/wallet/logo.png"
    assert api.client.get("/wallet/logo.png").headers["content-type"] == "image/png"
    obj = google_api.objects[object_id]
    assert obj["classId"] == class_id and obj["state"] == "ACTIVE" and obj["accountName"] == "Grace Hopper"
    assert obj["barcode"] == {"type": "QR_CODE", "value": card["card_number"], "alternateText": card["card_number"]}
    assert obj["loyaltyPoints"]["balance"] == {"int": 120}
    assert obj["textModulesData"] == [{"id": "tier", "header": "Tier", "body": "Silver"}]

    # The ledger moves: the job PATCHes loyaltyPoints.
    balances[contact_id] = (Decimal("350.5"), "Gold")
    with transaction(runtime.sessions) as session:
        session.add(Event(contact_id=contact_id, name="tier_changed", occurred_at=clock.now(), properties={}))
    assert sync_wallet_balances(runtime, None) == 1
    obj = google_api.objects[object_id]
    assert obj["loyaltyPoints"]["balance"] == {"double": 350.5} and obj["textModulesData"][0]["body"] == "Gold"
    assert ("PATCH", f"/walletobjects/v1/loyaltyObject/{object_id}") in [(m, p) for m, p, _ in google_api.requests]

    # A message: addMessage with TEXT_AND_NOTIFY, so the holder gets a notification.
    with transaction(runtime.sessions) as session:
        session.add(OutboxMessage(key="run3:card:0", contact_id=contact_id, channel="wallet", status="sending", payload={}))
    message = OutboundMessage(key="run3:card:0", recipient=Recipient(contact_id=contact_id, external_id="guest-9"),
                              address="guest-9", content={"text": "Free dessert with any coffee today"})
    (result,) = asyncio.run(wallet.send_batch([message]))
    assert result.status == "sent", result
    (sent,) = google_api.objects[object_id]["messages"]
    assert sent["messageType"] == "TEXT_AND_NOTIFY" and sent["body"] == "Free dessert with any coffee today"
    assert sent["displayInterval"]["start"]["date"]

    # Opening the link again updates the existing object (409 → PATCH) and still redirects.
    again = api.client.get(card["google_url"].removeprefix(runtime.settings.public_url), follow_redirects=False)
    assert again.status_code == 302
    assert [code for code, _ in google_api.errors] == [404, 409]
    assert len(google_api.tokens) == 1  # one OAuth token, reused


def test_token_exchange_refuses_a_foreign_key(runtime, api, wallet, google_api, tmp_path):
    other = make_wallet_credentials(tmp_path / "other", token_url=google_api.token_url)
    google_api.public_key = other.google_key.public_key()  # the stand-in now trusts another key
    with transaction(runtime.sessions) as session:
        session.add(Contact(external_id="guest-1", attributes={}, tags=[]))
    card = api.post("/api/v1/wallet/cards", json={"external_id": "guest-1"}).json()
    resp = api.client.get(card["google_url"].removeprefix(runtime.settings.public_url), follow_redirects=False)
    assert resp.status_code == 502 and "token exchange failed" in resp.json()["detail"]
    assert google_api.errors and google_api.errors[0][0] == 400 and "Invalid JWT Signature" in google_api.errors[0][1]
    assert google_api.objects == {}
