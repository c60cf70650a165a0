"""Bounces: real DSN samples (Postfix, Exim) built around a message that really went through
SMTP, POSTed to /hooks/email; the original message is found by the Message-ID we set."""

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from kaskad.channels import OutboundMessage, Recipient
from kaskad.channels.settings import config_from_env
from kaskad.store.engine import transaction
from kaskad.store.models import Consent, Contact, MessageEvent, OutboxMessage
from kaskad.testing.fakes.smtp import SmtpSink
from kaskad_channels.email.dsn import NotADsn, parse_dsn

SAMPLES = Path(__file__).parent / "dsn"
SECRET = "bounce-s3cret"
KEY = "run:41:mail"


@pytest.fixture
def sent(runtime):
    """A contact, the outbox row, and the raw message as it arrived at the SMTP server."""
    with transaction(runtime.sessions) as s:
        c = Contact(external_id="ivan", email="gone@example.com", attributes={}, tags=[])
        s.add(c)
        s.flush()
        s.add(Consent(contact_id=c.id, channel="email", topic="*", status="granted"))
        s.add(OutboxMessage(key=KEY, contact_id=c.id, channel="email", status="sending"))
        cid = c.id
    ch = runtime.registry.channels["email"]
    with SmtpSink() as sink:
        ch.configure(config_from_env(ch, {"KASKAD_EMAIL_HOST": "127.0.0.1", "KASKAD_EMAIL_PORT": str(sink.port),
                                          "KASKAD_EMAIL_STARTTLS": "false", "KASKAD_EMAIL_FROM_ADDRESS": "hello@pizzeria.example",
                                          "KASKAD_EMAIL_BOUNCE_SECRET": SECRET}))
        msg = OutboundMessage(key=KEY, recipient=Recipient(contact_id=cid, external_id="ivan"), address="gone@example.com",
                              content={"subject": "Menu", "html": "<p>Hi</p>"})
        (result,) = asyncio.run(ch.send_batch([msg]))
        raw = sink.messages[0][2]
    # What the engine does with a sent result; the worker may also die before this (see below).
    with transaction(runtime.sessions) as s:
        row = s.scalar(select(OutboxMessage).where(OutboxMessage.key == KEY))
        row.status, row.provider_message_id = "sent", result.provider_message_id
    return cid, raw, result.provider_message_id


def dsn(name, raw, recipient="gone@example.com", drop_key_header=False):
    headers_raw, _, _ = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    if drop_key_header:
        headers_raw = b"\n".join(line for line in headers_raw.split(b"\n") if not line.startswith(b"X-Kaskad-Key"))
    message_id = next(line for line in headers_raw.split(b"\n") if line.lower().startswith(b"message-id")).split(b":", 1)[1].strip()
    text = (SAMPLES / name).read_bytes()
    return (text.replace(b"{recipient}", recipient.encode()).replace(b"{headers}", headers_raw)
            .replace(b"{original}", raw.replace(b"\r\n", b"\n")).replace(b"{message_id}", message_id))


def state(runtime, cid):
    with runtime.sessions() as s:
        ev = [(e.status, e.detail.get("status"), e.detail.get("permanent")) for e in s.scalars(select(MessageEvent))]
        outbox = s.scalar(select(OutboxMessage.status).where(OutboxMessage.key == KEY))
        consent = s.scalar(select(Consent.status).where(Consent.contact_id == cid, Consent.channel == "email"))
        return ev, outbox, consent


def post(client, body, secret=SECRET):
    headers = {"content-type": "message/rfc822"}
    if secret is not None:
        headers["x-kaskad-bounce-secret"] = secret
    return client.post("/hooks/email", content=body, headers=headers)


def test_a_hard_bounce_marks_the_message_and_revokes_email_consent(runtime, client, sent):
    cid, raw, _ = sent
    body = dsn("postfix-user-unknown.eml", raw)
    r = post(client, body)
    assert r.status_code == 200 and r.json() == {"received": 1, "recorded": 1}
    assert state(runtime, cid) == ([("bounced", "5.1.1", True)], "failed", "revoked")
    with runtime.sessions() as s:
        assert s.scalar(select(Consent.source).where(Consent.contact_id == cid)) == "hard-bounce"
    assert post(client, body).json()["recorded"] == 0  # the MTA re-posting the same report


def test_a_soft_bounce_keeps_consent(runtime, client, sent):
    cid, raw, _ = sent
    assert post(client, dsn("exim-mailbox-full.eml", raw)).status_code == 200
    assert state(runtime, cid) == ([("bounced", "4.2.2", False)], "failed", "granted")


def test_a_delay_warning_records_nothing(runtime, client, sent):
    cid, raw, _ = sent
    assert post(client, dsn("delayed.eml", raw)).json() == {"received": 0, "recorded": 0}
    assert state(runtime, cid) == ([], "sent", "granted")


def test_matched_by_message_id_alone_when_the_worker_died_before_storing_it(runtime, client, sent):
    cid, raw, _ = sent
    with transaction(runtime.sessions) as s:  # as if the send happened but its result was never written
        s.scalar(select(OutboxMessage).where(OutboxMessage.key == KEY)).provider_message_id = None
    assert post(client, dsn("postfix-user-unknown.eml", raw, drop_key_header=True)).json()["recorded"] == 1
    assert state(runtime, cid)[0] == [("bounced", "5.1.1", True)]


@pytest.mark.parametrize("secret", [None, "wrong", ""])
def test_unauthenticated_or_malformed_reports_store_nothing(runtime, client, sent, secret):
    cid, raw, _ = sent
    assert post(client, dsn("postfix-user-unknown.eml", raw), secret=secret).status_code == 403
    r = post(client, raw)  # an ordinary message, not a report
    assert r.status_code == 403 and "delivery status" in r.json()["detail"]
    assert state(runtime, cid) == ([], "sent", "granted")


def test_parse_dsn_reads_the_samples():
    raw = b"Message-ID: <kaskad.run.9.mail@pizzeria.example>\nSubject: x\n\nbody\n"
    d = parse_dsn(dsn("postfix-user-unknown.eml", raw))
    assert (d.reporting_mta, d.message_id, d.outbox_key) == ("mx.pizzeria.example", "<kaskad.run.9.mail@pizzeria.example>", "run:9:mail")
    (r,) = d.recipients
    assert (r.recipient, r.action, r.status, r.permanent, r.remote_mta) == ("gone@example.com", "failed", "5.1.1", True, "mx.example.com")
    assert r.diagnostic.startswith("550 5.1.1 <gone@example.com>: Recipient address rejected")
    d = parse_dsn(dsn("exim-mailbox-full.eml", raw))
    assert d.outbox_key == "run:9:mail" and not d.recipients[0].permanent
    with pytest.raises(NotADsn, match="multipart/report"):
        parse_dsn(raw)
