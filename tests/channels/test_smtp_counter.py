"""The benchmarks' lean SMTP sink is a real SMTP server: whole messages, in order, pipelined or not."""

import asyncio
import re

import aiosmtplib

from kaskad.channels import OutboundMessage, Recipient
from kaskad.channels.settings import config_from_env
from kaskad.plugins.manager import load_registry
from kaskad.testing.fakes.smtp_counter import start_counting_smtp
from kaskad.testing.servers import free_port


def _strip(raw: bytes) -> bytes:
    return re.sub(rb"=_kaskad_[0-9a-f]+", b"B", re.sub(rb"Date: [^\r]*\r\n", b"", raw))


def test_the_email_channel_delivers_whole_messages_to_it():
    port, got = free_port(), []
    ch = load_registry().channels["email"]
    ch.configure(config_from_env(ch, {"KASKAD_EMAIL_HOST": "127.0.0.1", "KASKAD_EMAIL_PORT": str(port),
                                      "KASKAD_EMAIL_STARTTLS": "false", "KASKAD_EMAIL_FROM_ADDRESS": "hello@pizzeria.example",
                                      "KASKAD_EMAIL_POOL_SIZE": "3"}))
    msgs = [OutboundMessage(key=f"run:{i}:mail", recipient=Recipient(contact_id=i, external_id=f"c{i}"), address=f"g{i}@example.com",
                            content={"subject": f"Hi {i}", "html": "<p>" + "x" * 3000 + "</p>", "text": f".{i}\n..\n.\n"})
            for i in range(40)]

    async def run():
        server = await start_counting_smtp(port, lambda sender, rcpts, data: got.append((sender, list(rcpts), data)))
        try:
            results = await ch.send_batch(msgs)
            assert ch._pool()._idle[0][0].pipelining  # it says PIPELINING, so the channel pipelines
            await ch.aclose()
            return results, [ch.build(m).data for m in msgs]
        finally:
            server.close()

    results, composed = asyncio.run(run())
    assert [r.status for r in results] == ["sent"] * 40
    assert sorted((s, r) for s, r, _ in got) == sorted(("hello@pizzeria.example", [f"g{i}@example.com"]) for i in range(40))
    assert sorted(_strip(d) for *_, d in got) == sorted(_strip(c) for c in composed)  # dot-unstuffed, nothing lost


def test_commands_out_of_sequence_are_refused_and_a_plain_client_is_served():
    port, got = free_port(), []

    async def run():
        server = await start_counting_smtp(port, lambda *m: got.append(m))
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert (await reader.readline()).startswith(b"220 ")
            # pipelined, with mistakes: replies come back in order, one per command
            writer.write(b"MAIL FROM:<a@x>\r\nEHLO me\r\nDATA\r\nRCPT TO:<b@x>\r\nMAIL FROM:<a@x>\r\nMAIL FROM:<a@x>\r\n"
                         b"RCPT TO:<b@x>\r\nFROB\r\nDATA\r\n")
            codes = []
            while len(codes) < 9:
                line = await reader.readline()
                if line[3:4] == b" ":
                    codes.append(int(line[:3]))
            assert codes == [503, 250, 503, 503, 250, 503, 250, 500, 354]
            writer.write(b"Subject: hi\r\n\r\n..dot\r\nbody\r\n.\r\nQUIT\r\n")
            assert (await reader.readline()).startswith(b"250 ") and (await reader.readline()).startswith(b"221 ")
            assert await reader.read() == b""  # closed after QUIT
            writer.close()
            # aiosmtplib's one-command-at-a-time client
            await aiosmtplib.send(b"Subject: two\r\n\r\nhello\r\n", sender="c@x", recipients=["d@x", "e@x"],
                                  hostname="127.0.0.1", port=port, start_tls=False)
        finally:
            server.close()

    asyncio.run(run())
    assert got == [("a@x", ["b@x"], b"Subject: hi\r\n\r\n.dot\r\nbody\r\n"), ("c@x", ["d@x", "e@x"], b"Subject: two\r\n\r\nhello\r\n")]
