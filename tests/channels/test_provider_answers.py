"""Every adapter against bad provider answers: 4xx fail (the message is wrong, retrying will not
help), 429 / 5xx / throttling codes / timeouts / an unreachable provider are retried."""

import asyncio

import pytest

from kaskad.channels import OutboundMessage, Recipient
from kaskad.channels.settings import config_from_env
from kaskad.plugins.manager import load_registry
from kaskad.testing.fakes.sms_providers import FakeSmsRu, FakeTwilio
from kaskad.testing.fakes.whatsapp_cloud import FakeWhatsAppCloud
from kaskad.testing.servers import free_port

PHONE = "+79161234567"


def channel(name, **env):
    ch = load_registry().channels[name]
    ch.configure(config_from_env(ch, {f"KASKAD_{name.upper()}_{k.upper()}": v for k, v in env.items()}))
    return ch


def send(ch, content):
    msg = OutboundMessage(key="run:1:n", recipient=Recipient(contact_id=1, external_id="c1"), address=PHONE, content=content)
    (result,) = asyncio.run(ch.send_batch([msg]))
    return result


def twilio(fake, **env):
    return channel("sms", provider="twilio", base_url=fake.url, account_sid=fake.account_sid, auth_token=fake.auth_token,
                   from_number="+15005550006", **env)


def whatsapp(fake, **env):
    return channel("whatsapp", base_url=fake.url, phone_number_id=fake.phone_number_id, access_token=fake.access_token, **env)


TWILIO = [
    ((400, {"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400}), "failed", "21211"),
    ((400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400}), "failed", "unsubscribed"),
    ((404, {"code": 20404, "message": "The requested resource was not found", "status": 404}), "failed", "404"),
    ((429, {"code": 20429, "message": "Too Many Requests", "status": 429}, {"Retry-After": "7"}), "retry", "Too Many"),
    ((500, {"message": "Internal Server Error"}), "retry", "500"),
    ((503, b"<html>Service Unavailable</html>"), "retry", "503"),
]


@pytest.mark.parametrize("answer,status,says", TWILIO, ids=lambda v: str(v[0]) if isinstance(v, tuple) else None)
def test_twilio_answers(answer, status, says):
    with FakeTwilio() as fake:
        fake.script = [answer]
        r = send(twilio(fake), {"text": "hi"})
        assert (r.status, says in r.error) == (status, True), r
        if answer[0] == 429:
            assert r.retry_after == 7.0


SMSRU = [
    ((200, {"status": "OK", "status_code": 100, "sms": {"79161234567": {"status": "ERROR", "status_code": 207,
                                                                       "status_text": "На этот номер нельзя отправлять"}}}), "failed", "207"),
    ((200, {"status": "ERROR", "status_code": 201, "status_text": "Не хватает средств"}), "failed", "201"),
    ((200, {"status": "ERROR", "status_code": 220, "status_text": "Сервис временно недоступен"}), "retry", "220"),
    ((429, {"status": "ERROR"}), "retry", "429"),
    ((502, b"Bad Gateway"), "retry", "502"),
]


@pytest.mark.parametrize("answer,status,says", SMSRU, ids=[str(a[0][1].get("status_code", a[0][0])) if isinstance(a[0][1], dict) else str(a[0][0]) for a in SMSRU])
def test_smsru_answers(answer, status, says):
    with FakeSmsRu() as fake:
        fake.script = [answer]
        r = send(channel("sms", provider="smsru", base_url=fake.url, api_id=fake.api_id), {"text": "hi"})
        assert (r.status, says in r.error) == (status, True), r


WHATSAPP = [
    (FakeWhatsAppCloud.error(131026, "Message undeliverable"), "failed", "131026"),
    (FakeWhatsAppCloud.error(132000, "Number of parameters does not match"), "failed", "132000"),
    (FakeWhatsAppCloud.error(190, "Invalid OAuth access token.", 401), "failed", "190"),
    (FakeWhatsAppCloud.error(130429, "Rate limit hit"), "retry", "130429"),
    (FakeWhatsAppCloud.error(131056, "(Business Account, Consumer Account) pair rate limit hit"), "retry", "131056"),
    (FakeWhatsAppCloud.error(80007, "Rate limit issues", 429), "retry", "80007"),
    (FakeWhatsAppCloud.error(131000, "Something went wrong", 500), "retry", "131000"),
    ((503, b"upstream connect error"), "retry", "503"),
]


@pytest.mark.parametrize("answer,status,says", WHATSAPP, ids=[w[2] for w in WHATSAPP])
def test_whatsapp_answers(answer, status, says):
    with FakeWhatsAppCloud() as fake:
        fake.script = [answer]
        r = send(whatsapp(fake), {"template": "ask_review", "parameters": ["Anna"]})
        assert (r.status, says in r.error) == (status, True), r


@pytest.mark.parametrize("make", [
    lambda f: channel("sms", provider="twilio", base_url=f.url, account_sid="AC1", auth_token="t", from_number="+15005550006", timeout="0.2"),
    lambda f: channel("sms", provider="smsru", base_url=f.url, api_id="x", timeout="0.2"),
    lambda f: whatsapp(f, timeout="0.2"),
], ids=["twilio", "smsru", "whatsapp"])
def test_a_provider_that_does_not_answer_in_time_means_retry(make):
    with FakeWhatsAppCloud() as fake:  # any slow HTTP server will do
        fake.stall = 1.0
        ch = make(fake)
        content = {"template": "ask_review", "parameters": ["Anna"]} if ch.name == "whatsapp" else {"text": "hi"}
        r = send(ch, content)
        assert r.status == "retry" and "in time" in r.error


def test_an_unreachable_provider_means_retry():
    down = f"http://127.0.0.1:{free_port()}"
    for ch, content in [
        (channel("sms", provider="twilio", base_url=down, account_sid="AC1", auth_token="t", from_number="+15005550006"), {"text": "hi"}),
        (channel("sms", provider="smsru", base_url=down, api_id="x"), {"text": "hi"}),
        (channel("whatsapp", base_url=down, phone_number_id="1", access_token="t"), {"text": "hi"}),
    ]:
        r = send(ch, content)
        assert r.status == "retry" and "unreachable" in r.error, (ch.name, r)
