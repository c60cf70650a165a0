"""Web push against a local push service that verifies VAPID and decrypts like a browser."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select

from kaskad.channels import OutboundMessage, Recipient
from kaskad.store.engine import transaction
from kaskad.store.models import Consent, Contact, MessageEvent, OutboxMessage
from kaskad.testing.fakes.push_service import FakePushService
from kaskad.webpush.models import PushSubscription
from kaskad_channels.webpush import WebPushConfig, WebPushMessage, vapid

DOC = (Path(__file__).parents[2] / "docs" / "webpush.md").read_text()
SHOP = "https://shop.example"
SUBSCRIBE_KEY = "shop-backend-secret"


@pytest.fixture
def push_service():
    with FakePushService() as service:
        yield service


@pytest.fixture
def channel(runtime):
    key = vapid.generate()
    channel = runtime.registry.channels["webpush"]
    channel.configure(
        WebPushConfig(vapid_private_key=vapid.private_raw(key), allowed_origins=[SHOP], subscribe_key=SUBSCRIBE_KEY, subject="mailto:crm@shop.example")
    )
    assert channel.runtime is runtime  # the runtime binds its channels when it is made
    return channel


def _subscribe(api, browser, **extra):
    return api.client.post(
        "/webpush/subscribe",
        json={"subscription": browser.subscription(), **extra},
        headers={"Origin": SHOP, "Content-Type": "text/plain"},
    )


def _outbox(runtime, contact_external_id: str, key: str) -> Recipient:
    with transaction(runtime.sessions) as session:
        contact = session.scalar(select(Contact).where(Contact.external_id == contact_external_id))
        session.add(OutboxMessage(key=key, contact_id=contact.id, channel="webpush", status="sending", payload={}))
        return Recipient(contact_id=contact.id, external_id=contact.external_id)


def _send(channel, recipient, key, **content):
    message = OutboundMessage(key=key, recipient=recipient, address=recipient.external_id, content=content)
    return asyncio.run(channel.send_batch([message]))[0]


def test_push_is_encrypted_signed_and_tracked(runtime, api, channel, push_service):
    push_service.vapid_public_key = channel.application_server_key
    assert api.client.get("/webpush/key").json() == {"applicationServerKey": channel.application_server_key}

    browser = push_service.new_subscription()
    answer = _subscribe(api, browser).json()
    assert answer["contact"].startswith("anon-") and answer["anonymous_token"]
    assert _subscribe(api, browser, anonymous_token=answer["anonymous_token"]).json()["contact"] == answer["contact"]

    recipient = _outbox(runtime, answer["contact"], "run1:send:0")
    result = _send(channel, recipient, "run1:send:0", title="Sale", body="20% off today", url="https://shop.example/sale", ttl=3600, urgency="high")
    assert result.status == "sent", result

    (push,) = push_service.received
    assert push_service.rejected == []
    payload = push.json()  # decrypted with the browser's private key by the push service
    assert payload["title"] == "Sale" and payload["body"] == "20% off today"
    assert push.headers["ttl"] == "3600" and push.headers["urgency"] == "high"
    assert push.vapid_claims["aud"] == push_service.origin and push.vapid_claims["sub"] == "mailto:crm@shop.example"
    assert push.vapid_public_key == channel.application_server_key

    base = runtime.settings.public_url
    assert api.client.post(payload["receipt"].removeprefix(base)).status_code == 204
    click = api.client.get(payload["url"].removeprefix(base), follow_redirects=False)
    assert click.status_code == 302 and click.headers["location"] == "https://shop.example/sale"
    api.client.get(payload["url"].removeprefix(base), follow_redirects=False)  # a second click is no new event
    with runtime.sessions() as session:
        statuses = session.scalars(select(MessageEvent.status).order_by(MessageEvent.id)).all()
        assert statuses == ["delivered", "clicked"]
        consent = session.scalar(select(Consent).where(Consent.channel == "webpush"))
        assert consent.status == "granted"
    assert api.client.get("/webpush/c/forged.token", follow_redirects=False).status_code == 404


def test_gone_subscription_is_removed_and_busy_service_retried(runtime, api, channel, push_service):
    browser = push_service.new_subscription()
    contact = _subscribe(api, browser).json()["contact"]
    recipient = _outbox(runtime, contact, "k-busy")

    push_service.fail_next.append(503)
    busy = _send(channel, recipient, "k-busy", title="Hi")
    assert busy.status == "retry" and busy.retry_after == 5.0

    browser.gone = True
    gone = _send(channel, recipient, "k-busy", title="Hi")
    assert gone.status == "failed" and "expired" in gone.error
    with runtime.sessions() as session:
        assert session.scalars(select(PushSubscription)).all() == []
    assert _send(channel, recipient, "k-busy", title="Hi").error == "the contact has no push subscription"


def test_known_customer_is_signed_and_anonymous_visitor_merges(runtime, api, channel, push_service):
    browser = push_service.new_subscription()
    anon = _subscribe(api, browser).json()

    assert _subscribe(api, browser, external_id="cust-42", signature="00" * 32).status_code == 403
    other_site = api.client.post("/webpush/subscribe", json={"subscription": browser.subscription()}, headers={"Origin": "https://evil.example"})
    assert other_site.status_code == 403

    signature = _doc_block("python")["push_signature"](SUBSCRIBE_KEY, "cust-42")
    known = _subscribe(api, browser, external_id="cust-42", signature=signature, anonymous_token=anon["anonymous_token"])
    assert known.status_code == 200 and known.json() == {"contact": "cust-42"}
    assert known.headers["access-control-allow-origin"] == SHOP
    with runtime.sessions() as session:
        sub = session.scalar(select(PushSubscription))
        owner = session.get(Contact, sub.contact_id)
        assert owner.external_id == "cust-42"
        leftover = session.scalar(select(Contact).where(Contact.external_id == anon["contact"]))
        assert leftover.attributes["merged_into"] == "cust-42"
    # An old anonymous token now follows the merge instead of making a new visitor.
    again = _subscribe(api, browser, anonymous_token=anon["anonymous_token"]).json()
    assert again == {"contact": "cust-42"}


def test_integrator_merges_an_anonymous_visitor(runtime, api, channel, push_service):
    anon = _subscribe(api, push_service.new_subscription()).json()["contact"]
    with transaction(runtime.sessions) as session:
        session.add(Contact(external_id="cust-7", attributes={}, tags=[]))
    resp = api.post("/api/v1/webpush/merge", role="integrator", json={"anonymous_id": anon, "external_id": "cust-7"})
    assert resp.status_code == 200 and resp.json() == {"merged": True}
    with runtime.sessions() as session:
        sub = session.scalar(select(PushSubscription))
        assert session.get(Contact, sub.contact_id).external_id == "cust-7"
    assert api.post("/api/v1/webpush/merge", role="marketer", json={"anonymous_id": anon, "external_id": "cust-7"}).status_code == 403


def test_scripts_are_served(api, channel):
    sw = api.client.get("/webpush/sw.js")
    assert sw.status_code == 200 and "notificationclick" in sw.text and sw.headers["content-type"].startswith("text/javascript")
    assert "KaskadPush" in api.client.get("/webpush/kaskad-push.js").text


def test_keys_command(tmp_path, monkeypatch, capsys):
    from kaskad.cli import main

    monkeypatch.setenv("KASKAD_HOME", str(tmp_path))
    assert main(["webpush", "keys", "--show-private"]) == 0
    out = capsys.readouterr().out
    public = out.split("applicationServerKey (public): ")[1].split()[0]
    private = out.split("KASKAD_WEBPUSH_VAPID_PRIVATE_KEY=")[1].split()[0]
    assert vapid.application_server_key(vapid.load(private)) == public
    assert main(["webpush", "keys"]) == 0  # a second run keeps the key
    assert public in capsys.readouterr().out


def _doc_block(lang: str):
    code = textwrap.dedent(DOC.split(f"```{lang}\n")[1].split("```")[0])
    if lang == "json":
        return json.loads(code)
    namespace: dict = {}
    exec(code, namespace)
    return namespace


def test_documented_message_is_valid():
    import msgspec

    message = msgspec.convert(_doc_block("json"), WebPushMessage)
    assert message.urgency == "high" and message.ttl == 3600
