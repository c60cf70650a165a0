"""Emails per second from one box to a local SMTP sink: pooled connections vs one per message.

Starts an aiosmtpd sink (counting only) in its own process on a loopback port,
then sends N rendered messages through the email channel exactly as a worker
does (List-Unsubscribe headers, click rewriting, open pixel, signed links) in
batches, and prints what the sink received per second. For comparison it also
sends with a new SMTP connection per message.

    .venv/bin/python bench/email_delivery.py [--messages 10000] [--batch 500] [--pool 8] [--baseline 2000]
"""

from __future__ import annotations

import os
import sys

# This file is named like the standard library's ``email`` package; keep bench/ off the path.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse
import asyncio
import multiprocessing
import tempfile
import time
from pathlib import Path

import aiosmtplib

from kaskad.channels import OutboundMessage, Recipient
from kaskad.channels.settings import config_from_env
from kaskad.config import Settings
from kaskad.plugins.manager import load_registry
from kaskad.testing.servers import free_port, wait_port

HTML = """<html><body><h1>Hi {{name}},</h1><p>This week: <a href="https://shop.example/menu">the menu</a>,
<a href="https://shop.example/deals?utm_source=kaskad">deals</a>.</p>{{ body }}</body></html>"""


def sink(port: int, counter) -> None:
    from kaskad.testing.fakes.smtp import SmtpSink

    class Counting(SmtpSink):
        async def handle_DATA(self, server, session, envelope):
            with counter.get_lock():
                counter.value += 1
            return "250 OK"

    Counting(keep=False, port=port).start()
    while True:
        time.sleep(3600)


def messages(n: int, start: int = 0) -> list[OutboundMessage]:
    body = "<p>" + "Lorem ipsum dolor sit amet. " * 40 + "</p>"
    return [
        OutboundMessage(
            key=f"run:{i}:mail", recipient=Recipient(contact_id=i, external_id=f"c{i}"), address=f"guest{i}@example.com",
            content={"subject": f"Your week, guest {i}", "html": HTML.replace("{{name}}", f"guest {i}").replace("{{ body }}", body)},
        )
        for i in range(start, start + n)
    ]


async def pooled(channel, n: int, batch: int) -> None:
    for start in range(0, n, batch):
        results = await channel.send_batch(messages(min(batch, n - start), start))
        bad = [r for r in results if r.status != "sent"]
        if bad:
            raise SystemExit(f"{len(bad)} not sent: {bad[0].error}")
    await channel.aclose()


async def one_connection_each(channel, n: int, concurrency: int) -> None:
    todo = messages(n)
    gate = asyncio.Semaphore(concurrency)

    async def one(m: OutboundMessage) -> None:
        async with gate:
            mail = channel.build(m)
            await aiosmtplib.send(mail.data, sender=mail.sender, recipients=[mail.recipient], hostname="127.0.0.1",
                                  port=channel.config.port, start_tls=False)

    await asyncio.gather(*(one(m) for m in todo))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(label: str, counter, n: int, coro, sink_pid: int) -> float:
    before = counter.value
    t0, cpu0, sink0 = time.perf_counter(), time.process_time(), cpu_seconds(sink_pid)
    asyncio.run(coro)
    elapsed = time.perf_counter() - t0
    cpu, sink_cpu = time.process_time() - cpu0, cpu_seconds(sink_pid) - sink0
    got = counter.value - before
    if got != n:
        raise SystemExit(f"{label}: the sink received {got} of {n}")
    rate = n / elapsed
    # CPU per email does not depend on what else the machine is doing; wall-clock rates do.
    print(f"{label:<42} {n:>6} emails in {elapsed:6.2f} s = {rate:6.0f} emails/s"
          f"  (CPU per email: sender {cpu / n * 1000:.2f} ms, sink {sink_cpu / n * 1000:.2f} ms;"
          f" CPU-bound with one core each: {n / max(cpu, sink_cpu, 1e-9):.0f}/s)")
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--pool", type=int, default=8)
    ap.add_argument("--baseline", type=int, default=2_000, help="messages for the connection-per-message run (0: skip)")
    args = ap.parse_args()

    port = free_port()
    counter = multiprocessing.Value("l", 0)
    proc = multiprocessing.Process(target=sink, args=(port, counter), daemon=True)
    proc.start()
    try:
        wait_port(port)
        home = Path(tempfile.mkdtemp(prefix="kaskad-bench-email-"))
        channel = load_registry().channels["email"]
        channel.settings = Settings(home=home, secret_key="bench", public_url="https://kaskad.example")
        env = {"KASKAD_EMAIL_HOST": "127.0.0.1", "KASKAD_EMAIL_PORT": str(port), "KASKAD_EMAIL_STARTTLS": "false",
               "KASKAD_EMAIL_FROM_ADDRESS": "hello@pizzeria.example", "KASKAD_EMAIL_POOL_SIZE": str(args.pool)}
        channel.configure(config_from_env(channel, env))
        measure("warm-up", counter, 200, pooled(channel, 200, 200), proc.pid)
        rate = measure(f"pooled ({args.pool} connections, batches of {args.batch})", counter, args.messages,
                       pooled(channel, args.messages, args.batch), proc.pid)
        print(f"pooled: {rate:.0f} emails/s")
        if args.baseline:
            base = measure("a new connection per message (8 at once)", counter, args.baseline,
                           one_connection_each(channel, args.baseline, 8), proc.pid)
            print(f"pooled / connection per message: {rate / base:.1f}x")
        print(f"(load average now: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores)")
    finally:
        proc.terminate()
        proc.join()


if __name__ == "__main__":
    main()
