"""Pooled SMTP connections: reused across batches, several in parallel, replaced when they break;
refusals, 4xx, an unreachable or silent server give the right result per message."""

import asyncio
import re
import socket

import aiosmtplib
import pytest

from kaskad.channels import OutboundMessage, Recipient
from kaskad.channels.settings import config_from_env
from kaskad.plugins.manager import load_registry
from kaskad.testing.fakes.smtp import SmtpSink
from kaskad.testing.servers import free_port


def email_channel(port, **env):
    ch = load_registry().channels["email"]
    settings = {"host": "127.0.0.1", "port": str(port), "starttls": "false", "from_address": "hello@pizzeria.example", **env}
    ch.configure(config_from_env(ch, {f"KASKAD_EMAIL_{k.upper()}": v for k, v in settings.items()}))
    return ch


def batch(n, start=0, to=lambda i: f"guest{i}@example.com"):
    return [OutboundMessage(key=f"run:{i}:mail", recipient=Recipient(contact_id=i, external_id=f"c{i}"), address=to(i),
                            content={"subject": f"Hi {i}", "html": f"<p>{i}</p>"}) for i in range(start, start + n)]


def test_connections_are_reused_across_batches_and_used_in_parallel():
    with SmtpSink(auth=("shop", "s3cret")) as sink:
        ch = email_channel(sink.port, pool_size="3", username="shop", password="s3cret")

        async def run():
            first = await ch.send_batch(batch(30))
            second = await ch.send_batch(batch(30, start=30))
            pool = ch._pool()
            await ch.aclose()
            return first + second, pool.opened

        results, opened = asyncio.run(run())
        assert [r.status for r in results] == ["sent"] * 60
        assert [r.key for r in results] == [f"run:{i}:mail" for i in range(60)]  # input order kept
        assert opened == 3 and sink.connections == 3  # three sessions carried both batches
        assert sorted(rcpt[0] for _, rcpt, _, _ in sink.messages) == sorted(f"guest{i}@example.com" for i in range(60))
        assert all(authenticated for *_, authenticated in sink.messages)


def test_a_dropped_connection_is_replaced_and_the_message_sent_once():
    port = free_port()
    sink = SmtpSink(port=port).start()
    ch = email_channel(port, pool_size="1")

    async def run():
        before = await ch.send_batch(batch(2))
        sink.stop()  # the server goes away, taking the pooled connection with it
        again = SmtpSink(port=port).start()
        try:
            after = await ch.send_batch(batch(2, start=2))
        finally:
            await ch.aclose()
            again.stop()
        return before, after, again

    before, after, again = asyncio.run(run())
    assert [r.status for r in before + after] == ["sent"] * 4
    assert sorted(r[1][0] for r in again.messages) == ["guest2@example.com", "guest3@example.com"]


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-command-at-a-time"])
def test_refused_and_deferred_recipients_do_not_stop_the_batch(pipelining):
    refuse = {"gone@example.com": "550 5.1.1 no such user", "full@example.com": "452 4.2.2 mailbox full"}
    with SmtpSink(refuse=refuse, pipelining=pipelining) as sink:
        ch = email_channel(sink.port)
        names = ["a@example.com", "gone@example.com", "full@example.com", "b@example.com"]
        results = asyncio.run(ch.send_batch(batch(4, to=lambda i: names[i])))
        assert [r.status for r in results] == ["sent", "failed", "retry", "sent"]
        assert "550" in results[1].error and "452" in results[2].error
        assert [r[1] for r in sink.messages] == [["a@example.com"], ["b@example.com"]]


def test_an_unreachable_or_silent_server_means_retry_for_every_message():
    ch = email_channel(free_port())
    results = asyncio.run(ch.send_batch(batch(3)))
    assert {r.status for r in results} == {"retry"} and "connect" in results[0].error
    # A server that accepts the connection and never greets: the timeout turns into a retry.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        ch = email_channel(silent.getsockname()[1], timeout="0.3")
        results = asyncio.run(ch.send_batch(batch(2)))
    assert {r.status for r in results} == {"retry"}


@pytest.mark.parametrize("size", ["0", "101", "x"])
def test_pool_size_is_checked(size):
    ch = load_registry().channels["email"]
    assert config_from_env(ch, {"KASKAD_EMAIL_HOST": "h", "KASKAD_EMAIL_POOL_SIZE": size}) is None


def test_starttls_then_login_and_a_certificate_that_does_not_verify():
    with SmtpSink(auth=("shop", "s3cret"), starttls=True) as sink:
        ch = email_channel(sink.port, starttls="true", validate_certs="false", username="shop", password="s3cret")
        results = asyncio.run(ch.send_batch(batch(2)))
        assert [r.status for r in results] == ["sent", "sent"] and all(m[3] for m in sink.messages)
        # Without STARTTLS the server refuses the mail; with validation the self-signed certificate fails.
        plain = asyncio.run(email_channel(sink.port, starttls="false").send_batch(batch(1)))
        assert plain[0].status == "retry" and "530" in plain[0].error  # a settings problem: fixable, so retried
        strict = asyncio.run(email_channel(sink.port, starttls="true", username="shop", password="s3cret").send_batch(batch(1)))
        assert strict[0].status == "retry" and "connect" in strict[0].error
        assert len(sink.messages) == 2


def test_a_pool_is_kept_per_event_loop_and_dropped_with_its_loop():
    with SmtpSink() as sink:
        ch = email_channel(sink.port)
        for start in (0, 1, 2):  # a caller that runs each batch in a fresh loop
            assert asyncio.run(ch.send_batch(batch(1, start=start)))[0].status == "sent"
        assert len(ch._pools) == 1 and sink.connections == 3


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-command-at-a-time"])
def test_what_arrives_is_what_was_composed_lines_starting_with_a_dot_included(pipelining):
    text = ".starts with a dot\n..and two\n.\nend\n"
    with SmtpSink(pipelining=pipelining) as sink:
        ch = email_channel(sink.port, pool_size="2")
        msgs = [OutboundMessage(key=f"run:{i}:mail", recipient=Recipient(contact_id=i, external_id=f"c{i}"),
                                address=f"guest{i}@example.com", content={"subject": "Dots", "html": "<p>.</p>", "text": text})
                for i in range(5)]

        async def run():
            composed = [ch.build(m).data for m in msgs]
            results = await ch.send_batch(msgs)
            await ch.aclose()
            return composed, results

        composed, results = asyncio.run(run())
        assert [r.status for r in results] == ["sent"] * 5
        received = sorted(raw for _, _, raw, _ in sink.messages)
        # aiosmtpd undoes the dot-stuffing: the bytes are what the channel composed (but for Date and the boundary)
        strip = lambda raw: re.sub(rb"=_kaskad_[0-9a-f]+", b"B", re.sub(rb"Date: [^\r]*\r\n", b"", raw))
        assert sorted(strip(r) for r in received) == sorted(strip(c) for c in composed)
        assert all(m.get_body(("plain",)).get_content().splitlines() == text.splitlines() for m in sink.parsed())


def test_an_address_smtp_cannot_carry_fails_that_message_only():
    with SmtpSink() as sink:
        ch = email_channel(sink.port)
        results = asyncio.run(ch.send_batch(batch(3, to=lambda i: ["a@example.com", "b@exa mple.com", "c@example.com"][i])))
        assert [r.status for r in results] == ["sent", "failed", "sent"]
        assert [r[1] for r in sink.messages] == [["a@example.com"], ["c@example.com"]]


def test_an_envelope_sent_ahead_and_not_used_is_abandoned_without_delivering_anything():
    """With pipelining the next message's MAIL/RCPT/DATA travel with this content; if that message
    never follows, the session is dropped rather than ending DATA with an empty message."""
    with SmtpSink(refuse={"gone@example.com": "550 5.1.1 no such user"}) as sink:
        ch = email_channel(sink.port, pool_size="1")
        mail = b"Subject: one\r\n\r\nhello\r\n"

        async def run():
            session = await ch._connect()
            assert session.pipelining
            # the envelope sent ahead is refused: its message fails, the session goes on
            await session.sendmail("hello@pizzeria.example", "a@example.com", mail, then=("hello@pizzeria.example", "gone@example.com"))
            with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
                await session.sendmail("hello@pizzeria.example", "gone@example.com", mail, then=("hello@pizzeria.example", "c@example.com"))
            await session.sendmail("hello@pizzeria.example", "b@example.com", mail, then=("hello@pizzeria.example", "c@example.com"))
            # c@ was accepted and its DATA answered 354, but something else comes next
            with pytest.raises(aiosmtplib.SMTPServerDisconnected):
                await session.noop()
            assert not session.is_connected

        asyncio.run(run())
        assert [rcpt for _, rcpt, _, _ in sink.messages] == [["a@example.com"], ["b@example.com"]]
