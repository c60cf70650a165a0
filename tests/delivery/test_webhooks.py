"""Provider webhooks: verified, recorded once, and rejected (storing nothing) when unsigned or malformed."""

import hashlib
import hmac
import json
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from kaskad.channels.settings import config_from_env
from kaskad.store.engine import transaction
from kaskad.store.models import Contact, MessageEvent, OutboxMessage
from kaskad_channels.sms.channel import twilio_signature

TOKEN = "twilio-auth-token"
SECRET = "meta-app-secret"


@pytest.fixture
def hooks(runtime, client):
    chs = runtime.registry.channels
    chs["sms"].configure(config_from_env(chs["sms"], {"KASKAD_SMS_AUTH_TOKEN": TOKEN, "KASKAD_SMS_ACCOUNT_SID": "AC1"}))
    chs["whatsapp"].configure(config_from_env(chs["whatsapp"], {
        "KASKAD_WHATSAPP_APP_SECRET": SECRET, "KASKAD_WHATSAPP_VERIFY_TOKEN": "let-me-in"}))
    with transaction(runtime.sessions) as s:
        c = Contact(external_id="c", phone="+79161234567", attributes={}, tags=[])
        s.add(c)
        s.flush()
        s.add_all([
            OutboxMessage(key="r1:sms", contact_id=c.id, channel="sms", status="sent", provider_message_id="SM1"),
            OutboxMessage(key="r1:wa", contact_id=c.id, channel="whatsapp", status="sent", provider_message_id="wamid.A"),
        ])
    return client


def events(runtime):
    with runtime.sessions() as s:
        return sorted(s.execute(select(OutboxMessage.key, MessageEvent.status).join(OutboxMessage)).all())


def outbox_status(runtime, key):
    with runtime.sessions() as s:
        return s.scalar(select(OutboxMessage.status).where(OutboxMessage.key == key))


def twilio_post(client, runtime, params, signature=None):
    url = runtime.settings.public_url + "/hooks/sms"
    sig = signature if signature is not None else twilio_signature(TOKEN, url, params)
    return client.post("/hooks/sms", content=urlencode(params),
                       headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig})


def test_twilio_status_callback_is_verified_and_recorded_once(hooks, runtime):
    params = {"MessageSid": "SM1", "MessageStatus": "delivered", "AccountSid": "AC1", "To": "+79161234567"}
    for _ in range(2):
        r = twilio_post(hooks, runtime, params)
        assert r.status_code == 200, r.text
    assert events(runtime) == [("r1:sms", "delivered")]
    assert outbox_status(runtime, "r1:sms") == "delivered"


def test_unsigned_or_forged_twilio_callbacks_store_nothing(hooks, runtime):
    params = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    assert twilio_post(hooks, runtime, params, signature="").status_code == 403
    r = twilio_post(hooks, runtime, params, signature=twilio_signature("wrong", runtime.settings.public_url + "/hooks/sms", params))
    assert r.status_code == 403 and "does not match" in r.json()["detail"]
    forged = dict(params, MessageStatus="failed")  # signature of other parameters
    sig = twilio_signature(TOKEN, runtime.settings.public_url + "/hooks/sms", params)
    assert twilio_post(hooks, runtime, forged, signature=sig).status_code == 403
    assert events(runtime) == [] and outbox_status(runtime, "r1:sms") == "sent"


def wa_post(client, body: bytes, secret=SECRET):
    sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return client.post("/hooks/whatsapp", content=body, headers={"Content-Type": "application/json", "X-Hub-Signature-256": sig})


def wa_body(*statuses, messages=()):
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"phone_number_id": "1055512345"},
        "statuses": [{"id": i, "status": st, "timestamp": "1764000000", "recipient_id": "79161234567"} for i, st in statuses],
        "messages": list(messages)}}]}]}).encode()


def test_whatsapp_statuses_and_replies(hooks, runtime):
    r = wa_post(hooks, wa_body(("wamid.A", "sent"), ("wamid.A", "delivered"), ("wamid.A", "read"), ("wamid.UNKNOWN", "read"),
                               messages=[{"from": "79161234567", "id": "wamid.IN", "type": "text", "context": {"id": "wamid.A"}}]))
    assert r.status_code == 200 and r.json() == {"received": 4, "recorded": 3}
    assert events(runtime) == [("r1:wa", "delivered"), ("r1:wa", "opened"), ("r1:wa", "replied")]


def test_whatsapp_bad_signature_or_body_is_rejected(hooks, runtime):
    assert wa_post(hooks, wa_body(("wamid.A", "read")), secret="nope").status_code == 403
    assert hooks.post("/hooks/whatsapp", content=wa_body(("wamid.A", "read"))).status_code == 403
    assert wa_post(hooks, b'{"entry": 5}').status_code == 403
    assert events(runtime) == []


def test_whatsapp_subscription_handshake(hooks):
    ok = hooks.get("/hooks/whatsapp", params={"hub.mode": "subscribe", "hub.verify_token": "let-me-in", "hub.challenge": "1158201444"})
    assert ok.status_code == 200 and ok.text == "1158201444"
    bad = hooks.get("/hooks/whatsapp", params={"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"})
    assert bad.status_code == 403


def test_channels_without_webhooks_and_unknown_channels(hooks):
    assert hooks.post("/hooks/email", content=b"{}").status_code == 403
    assert hooks.post("/hooks/nope", content=b"{}").status_code == 404
