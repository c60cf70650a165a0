"""Email to a real SMTP server (aiosmtpd); SMS and WhatsApp to local stand-ins that check each request."""

import asyncio
import email
from decimal import Decimal
from email import policy

import pytest

from kaskad.channels import OutboundMessage, Recipient
from kaskad.channels.settings import config_from_env
from kaskad.plugins.manager import load_registry
from kaskad.testing.fakes.sms_providers import FakeSmsRu, FakeTwilio
from kaskad.testing.fakes.smtp import SmtpSink
from kaskad.testing.fakes.whatsapp_cloud import FakeWhatsAppCloud
from kaskad.testing.servers import free_port
from kaskad_channels.sms.segments import count_segments


def msg(key, address, content, **recipient):
    return OutboundMessage(key=key, recipient=Recipient(contact_id=1, external_id="c1", **recipient), address=address, content=content)


def channel(name, **env):
    ch = load_registry().channels[name]
    prefix = f"KASKAD_{name.upper()}_"
    ch.configure(config_from_env(ch, {prefix + k.upper(): v for k, v in env.items()}))
    return ch


@pytest.fixture
def smtp():
    with SmtpSink(auth=("shop", "s3cret")) as sink:
        yield sink.port, sink


def test_email_arrives_as_multipart_text_and_html_over_one_authenticated_connection(smtp):
    port, inbox = smtp
    ch = channel("email", host="127.0.0.1", port=str(port), starttls="false", username="shop", password="s3cret",
                 from_address="hello@pizzeria.example", from_name="Pizzeria")
    content = {"subject": "15% back, Anna", "html": "<p>Hi Anna,</p><p>see you &amp; soon</p>"}
    results = asyncio.run(ch.send_batch([msg("r1:mail", "anna@example.com", content), msg("r2:mail", "ivan@example.com", content)]))
    assert [r.status for r in results] == ["sent", "sent"]
    assert len(inbox.messages) == 2
    mail_from, rcpts, raw, authenticated = inbox.messages[0]
    assert (mail_from, rcpts, authenticated) == ("hello@pizzeria.example", ["anna@example.com"], True)
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == "15% back, Anna" and parsed["From"] == "Pizzeria <hello@pizzeria.example>"
    assert parsed["Message-ID"] == results[0].provider_message_id and parsed["X-Kaskad-Key"] == "r1:mail"
    assert parsed.get_body(("html",)).get_content().strip() == content["html"]
    assert parsed.get_body(("plain",)).get_content().replace("\r\n", "\n") == "Hi Anna,\nsee you & soon\n"


def test_email_wrong_password_and_unreachable_server(smtp):
    port, _ = smtp
    bad = channel("email", host="127.0.0.1", port=str(port), starttls="false", username="shop", password="nope",
                  from_address="a@b.example")
    r = asyncio.run(bad.send_batch([msg("k", "x@example.com", {"subject": "s", "html": "h"})]))
    assert r[0].status == "retry" and "login refused" in r[0].error and "535" in r[0].error
    down = channel("email", host="127.0.0.1", port=str(free_port()), starttls="false", from_address="a@b.example")
    r = asyncio.run(down.send_batch([msg("k", "x@example.com", {"subject": "s", "html": "h"})]))
    assert r[0].status == "retry" and "connect" in r[0].error
    unconfigured = load_registry().channels["email"]
    r = asyncio.run(unconfigured.send_batch([msg("k", "x@example.com", {"subject": "s", "html": "h"})]))
    assert r[0].status == "failed" and "KASKAD_EMAIL_HOST" in r[0].error


def test_sms_through_twilio_with_basic_auth_and_form_body():
    with FakeTwilio() as twilio:
        ch = channel("sms", provider="twilio", base_url=twilio.url, account_sid=twilio.account_sid,
                     auth_token=twilio.auth_token, from_number="+15005550006")
        results = asyncio.run(ch.send_batch([msg("r1:gift", "8 916 123-45-67", {"text": "Ваш подарок: GIFT-1234"})]))
        assert results[0].status == "failed"  # no country code: refused before the provider is called
        assert twilio.requests == []
        results = asyncio.run(ch.send_batch([msg("r1:gift", "+79161234567", {"text": "Ваш подарок: GIFT-1234"})]))
        assert results[0].status == "sent" and results[0].provider_message_id.startswith("SM")
        assert twilio.sent == [{"To": "+79161234567", "From": "+15005550006", "Body": "Ваш подарок: GIFT-1234"}]


def test_twilio_errors_are_retried_or_failed():
    with FakeTwilio() as twilio:
        ch = channel("sms", provider="twilio", base_url=twilio.url, account_sid=twilio.account_sid,
                     auth_token="wrong", from_number="+15005550006")
        r = asyncio.run(ch.send_batch([msg("k", "+79161234567", {"text": "x"})]))
        assert r[0].status == "failed" and "Twilio 401" in r[0].error
        ch.config.auth_token = twilio.auth_token
        twilio.script = [(429, {"code": 20429, "message": "Too Many Requests"}), (503, {"message": "busy"})]
        r = asyncio.run(ch.send_batch([msg("a", "+79161234567", {"text": "x"}), msg("b", "+79161234567", {"text": "y"})]))
        assert [x.status for x in r] == ["retry", "retry"] and "Too Many Requests" in r[0].error


def test_sms_through_smsru():
    with FakeSmsRu() as smsru:
        ch = channel("sms", provider="smsru", base_url=smsru.url, api_id=smsru.api_id, sender="Pizzeria")
        r = asyncio.run(ch.send_batch([msg("k", "+79161234567", {"text": "Скидка 20% до пятницы"})]))
        assert r[0].status == "sent" and r[0].provider_message_id == "000000-1"
        assert smsru.sent[0]["to"] == "79161234567" and smsru.sent[0]["from"] == "Pizzeria"
        ch.config.api_id = "wrong"
        r = asyncio.run(ch.send_batch([msg("k", "+79161234567", {"text": "x"})]))
        assert r[0].status == "failed" and "api_id" in r[0].error


@pytest.mark.parametrize("text,segments", [
    ("", 0), ("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3),
    ("€" * 80, 1), ("€" * 81, 2),  # extension characters take two septets
    ("я" * 70, 1), ("я" * 71, 2), ("я" * 134, 2), ("я" * 135, 3),  # Cyrillic: UCS-2
    ("Hi 😀", 1), ("😀" * 35, 1), ("😀" * 36, 2),  # emoji: two UTF-16 units each
])
def test_segment_counting(text, segments):
    assert count_segments(text) == segments


def test_sms_cost_follows_segments():
    ch = channel("sms", price_per_segment="4.50")
    assert ch.cost(msg("k", "+7", {"text": "a" * 200})) == Decimal("9.00")
    assert ch.cost(msg("k", "+7", {"text": "я" * 200})) == Decimal("13.50")  # Cyrillic costs more segments


def test_whatsapp_template_message_shape_and_auth():
    with FakeWhatsAppCloud() as wa:
        ch = channel("whatsapp", base_url=wa.url, phone_number_id=wa.phone_number_id, access_token=wa.access_token)
        r = asyncio.run(ch.send_batch([msg("r1:review", "+79161234567",
                                           {"template": "ask_review", "language": "ru", "parameters": ["Анна"]})]))
        assert r[0].status == "sent" and r[0].provider_message_id.startswith("wamid.")
        assert wa.sent == [{"messaging_product": "whatsapp", "recipient_type": "individual", "to": "79161234567",
                            "type": "template", "template": {"name": "ask_review", "language": {"code": "ru"},
                            "components": [{"type": "body", "parameters": [{"type": "text", "text": "Анна"}]}]}}]


def test_whatsapp_errors():
    with FakeWhatsAppCloud() as wa:
        ch = channel("whatsapp", base_url=wa.url, phone_number_id=wa.phone_number_id, access_token=wa.access_token)
        text = {"text": "Thanks for your order!"}
        r = asyncio.run(ch.send_batch([msg("a", "+79161234567", text)]))
        assert r[0].status == "failed" and "131047" in r[0].error  # outside the customer-service window
        wa.open_windows.add("79161234567")
        assert asyncio.run(ch.send_batch([msg("b", "+79161234567", text)]))[0].status == "sent"
        wa.script = [FakeWhatsAppCloud.error(130429, "Rate limit hit")]
        r = asyncio.run(ch.send_batch([msg("c", "+79161234567", text)]))
        assert r[0].status == "retry" and r[0].retry_after
        r = asyncio.run(ch.send_batch([msg("d", "+79161234567", {"template": "nope"})]))
        assert r[0].status == "failed" and "132001" in r[0].error
        r = asyncio.run(ch.send_batch([msg("e", "+79161234567", {"template": "ask_review", "text": "x"})]))
        assert r[0].status == "failed" and "not both" in r[0].error
        ch.config.access_token = "stale"
        r = asyncio.run(ch.send_batch([msg("f", "+79161234567", text)]))
        assert r[0].status == "failed" and "190" in r[0].error


def test_channel_settings_from_environment_are_checked():
    ch = load_registry().channels["email"]
    assert config_from_env(ch, {}) is None
    cfg = config_from_env(ch, {"KASKAD_EMAIL_HOST": "smtp.example", "KASKAD_EMAIL_PORT": "465", "KASKAD_EMAIL_USE_TLS": "true"})
    assert (cfg.host, cfg.port, cfg.use_tls) == ("smtp.example", 465, True)
    assert config_from_env(ch, {"KASKAD_EMAIL_PORT": "not-a-port"}) is None  # logged, defaults kept
