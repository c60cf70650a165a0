"""Unsubscribe (RFC 8058), open pixel and click tracking: send to a real SMTP server, follow
the links found in what arrived through the API, check message_events and consent."""

import asyncio
import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from kaskad import clock
from kaskad.channels import OutboundMessage, Recipient
from kaskad.channels.settings import config_from_env
from kaskad.delivery import links
from kaskad.delivery.policy import filter_sends
from kaskad.store.engine import transaction
from kaskad.store.models import Consent, Contact, MessageEvent, OutboxMessage
from kaskad.testing.fakes.smtp import SmtpSink

HTML = (
    '<html><body><p>Hi {name},</p><p><a href="https://shop.example/menu?a=1&amp;b=2">our menu</a> · '
    '<a href="mailto:chef@shop.example">write</a> · <a href="#top">top</a></p>'
    '<p><a href="{unsubscribe}">unsubscribe</a></p></body></html>'
)


@pytest.fixture
def sink():
    with SmtpSink() as s:
        yield s


def setup_contact(runtime, key="run:7:mail", topic=None):
    """A contact with email consent and the outbox row the engine would have written."""
    with transaction(runtime.sessions) as s:
        c = Contact(external_id="anna", email="anna@example.com", attributes={}, tags=[])
        s.add(c)
        s.flush()
        s.add(Consent(contact_id=c.id, channel="email", topic="*", status="granted", source="signup"))
        s.add(OutboxMessage(key=key, contact_id=c.id, channel="email", status="sending"))
        return c.id


def send(runtime, sink, contact_id, key="run:7:mail", topic=None, **env):
    ch = runtime.registry.channels["email"]
    settings = {"KASKAD_EMAIL_HOST": "127.0.0.1", "KASKAD_EMAIL_PORT": str(sink.port), "KASKAD_EMAIL_STARTTLS": "false",
                "KASKAD_EMAIL_FROM_ADDRESS": "hello@pizzeria.example"}
    settings.update({f"KASKAD_EMAIL_{k.upper()}": v for k, v in env.items()})
    ch.configure(config_from_env(ch, settings))
    # What the engine does: the template context gets ``links``, then the channel sends.
    ctx = links.message_links(runtime.settings, key, contact_id, "email", topic)
    html = HTML.format(name="Anna", unsubscribe=ctx["unsubscribe"])
    msg = OutboundMessage(key=key, recipient=Recipient(contact_id=contact_id, external_id="anna"),
                          address="anna@example.com", content={"subject": "Menu", "html": html}, topic=topic)
    (result,) = asyncio.run(ch.send_batch([msg]))
    assert result.status == "sent", result.error
    return sink.parsed()[-1]


def path_of(url, runtime):
    assert url.startswith(runtime.settings.public_url + "/")
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def events(runtime):
    with runtime.sessions() as s:
        return sorted((e.status, e.detail.get("url")) for e in s.scalars(select(MessageEvent)))


def consent(runtime, contact_id, topic="*"):
    with runtime.sessions() as s:
        return s.scalar(select(Consent.status).where(Consent.contact_id == contact_id, Consent.channel == "email", Consent.topic == topic))


def test_one_click_unsubscribe_from_the_header_revokes_consent_once(runtime, client, sink):
    cid = setup_contact(runtime)
    mail = send(runtime, sink, cid, unsubscribe_mailto="unsubscribe@pizzeria.example")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = re.findall(r"<([^>]+)>", mail["List-Unsubscribe"])
    assert mailto == "mailto:unsubscribe@pizzeria.example?subject=unsubscribe"
    url = path_of(https, runtime)

    page = client.get(url)  # a mail scanner or a person opening the link: nothing changes yet
    assert page.status_code == 200 and "<form method=\"post\">" in page.text and "email messages" in page.text
    assert consent(runtime, cid) == "granted" and events(runtime) == []

    # RFC 8058: the mailbox POSTs this body to the HTTPS URI.
    r = client.post(url, content=b"List-Unsubscribe=One-Click", headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and "Unsubscribed" in r.text
    assert consent(runtime, cid) == "revoked" and events(runtime) == [("unsubscribed", None)]
    assert client.post(url).status_code == 200  # idempotent
    assert events(runtime) == [("unsubscribed", None)]
    with runtime.sessions() as s:
        assert s.scalar(select(Consent.source).where(Consent.contact_id == cid)) == "unsubscribe-link"
        # the engine's next send to this contact is refused
        assert filter_sends(s, runtime, channel="email", topic=None, contact_ids=[cid], now=clock.now())[cid].reason == "unsubscribed"


def test_the_body_link_unsubscribes_from_the_topic_only(runtime, client, sink):
    cid = setup_contact(runtime)
    mail = send(runtime, sink, cid, topic="promo")
    body = mail.get_body(("html",)).get_content()
    (href,) = [h for h in re.findall(r'href="([^"]+)"', body) if "/u/" in h]  # not rewritten for click tracking
    assert href == re.findall(r"<([^>]+)>", mail["List-Unsubscribe"])[0]
    page = client.get(path_of(href, runtime))
    assert "about “promo”" in page.text
    assert client.post(path_of(href, runtime)).status_code == 200
    assert consent(runtime, cid, "promo") == "revoked" and consent(runtime, cid) == "granted"
    with runtime.sessions() as s:
        assert filter_sends(s, runtime, channel="email", topic="promo", contact_ids=[cid], now=clock.now())[cid].action == "skip"
        assert filter_sends(s, runtime, channel="email", topic="news", contact_ids=[cid], now=clock.now())[cid].action == "allow"


def test_forged_or_damaged_unsubscribe_links_change_nothing(runtime, client, sink):
    cid = setup_contact(runtime)
    mail = send(runtime, sink, cid)
    url = path_of(re.findall(r"<([^>]+)>", mail["List-Unsubscribe"])[0], runtime)
    token = url.removeprefix("/u/")
    other = links.unsubscribe_token(b"another server's key", "run:7:mail", cid, "email", None)
    body, _, mac = token.partition(".")
    someone_else = links.unsubscribe_token(runtime.settings.signing_key, "run:7:mail", cid + 1, "email", None)
    tampered = someone_else.partition(".")[0] + "." + mac  # another contact's payload with our signature
    for bad in (other, tampered):
        assert client.get(f"/u/{bad}").status_code == 403
        assert client.post(f"/u/{bad}").status_code == 403
    for damaged in ("nonsense", body + ".", "." + mac, body + ".!!"):
        assert client.post(f"/u/{damaged}").status_code == 400
    assert consent(runtime, cid) == "granted" and events(runtime) == []


def test_clicks_and_opens_are_recorded_once_and_never_redirect_elsewhere(runtime, client, sink):
    cid = setup_contact(runtime)
    mail = send(runtime, sink, cid)
    body = mail.get_body(("html",)).get_content()
    hrefs = re.findall(r'href="([^"]+)"', body)
    tracked = [h for h in hrefs if "/t/c/" in h]
    assert len(tracked) == 1
    assert "mailto:chef@shop.example" in hrefs and "#top" in hrefs
    click = path_of(tracked[0].replace("&amp;", "&"), runtime)
    r = client.get(click, follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "https://shop.example/menu?a=1&b=2"
    assert client.get(click, follow_redirects=False).status_code == 302
    assert events(runtime) == [("clicked", "https://shop.example/menu?a=1&b=2")]

    token = click.split("?")[0]
    assert client.get(token + "?u=https%3A%2F%2Fevil.example%2F", follow_redirects=False).status_code == 403
    assert client.get(token, follow_redirects=False).status_code == 400  # no u at all
    forged = links.click_url(runtime.settings.public_url, b"wrong key", "run:7:mail", "https://evil.example/")
    assert client.get(path_of(forged, runtime), follow_redirects=False).status_code == 403

    (pixel,) = re.findall(r'<img src="([^"]+)"', body)
    r = client.get(path_of(pixel, runtime))
    assert r.status_code == 200 and r.headers["content-type"] == "image/gif" and r.content.startswith(b"GIF89a")
    client.get(path_of(pixel, runtime))
    assert client.get(path_of(pixel, runtime).replace("/t/o/", "/t/o/x")).status_code in (400, 403)
    assert events(runtime) == [("clicked", "https://shop.example/menu?a=1&b=2"), ("opened", None)]
    with runtime.sessions() as s:
        assert set(s.scalars(select(MessageEvent.contact_id))) == {cid}


def test_tracking_can_be_turned_off(runtime, sink):
    cid = setup_contact(runtime)
    mail = send(runtime, sink, cid, track_opens="false", track_clicks="false")
    body = mail.get_body(("html",)).get_content()
    assert "/t/" not in body and 'href="https://shop.example/menu?a=1&amp;b=2"' in body
    assert mail["List-Unsubscribe"]  # an unsubscribe link is never optional


def test_message_id_carries_the_outbox_key():
    from kaskad_channels.email.headers import key_from_message_id, message_id

    for key in ("run:12:mail", "run:12:mail:2", "r1:mail", "odd key/with.dots:ü"):
        mid = message_id(key, "pizzeria.example")
        assert re.fullmatch(r"<[A-Za-z0-9_.=\-]+@pizzeria\.example>", mid), mid
        assert key_from_message_id(mid) == key
    assert key_from_message_id("<CAF1234@mail.gmail.com>") is None
