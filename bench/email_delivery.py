"""Emails per second from one worker box to a local SMTP sink: pooled connections vs one per message.

Starts an SMTP sink in its own process on a loopback port, then sends N
rendered messages through the email channel exactly as a worker does
(List-Unsubscribe headers, click rewriting, open pixel, signed links) in
batches, from ``--processes`` sender processes at once (``kaskad worker``
starts one Dramatiq process per core, each with its own pool), and prints what
the sink received per second and the CPU each email cost the senders and the
sink. For comparison it also sends with a new SMTP connection per message
(one process, as before).

The sink (``--sink``): ``lean`` (default) is kaskad.testing.fakes.smtp_counter,
a real SMTP server that reads DATA in blocks as a compiled MTA does; ``aiosmtpd``
is the test suite's aiosmtpd server (counting only), which reads DATA line by
line and costs more CPU per message than the sender. Both run on uvloop and
receive every message whole; the output names the one used.

    .venv/bin/python bench/email_delivery.py [--messages 20000] [--batch 500] [--pool 8] [--processes 2]
                                             [--sink lean|aiosmtpd] [--baseline 2000]
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
import queue
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


def sink(kind: str, port: int, counter) -> None:
    import uvloop

    def count(*_) -> None:
        with counter.get_lock():
            counter.value += 1

    if kind == "lean":
        from kaskad.testing.fakes.smtp_counter import start_counting_smtp

        async def serve() -> None:
            await start_counting_smtp(port, count)
            await asyncio.Event().wait()

        uvloop.run(serve())
    else:
        from kaskad.testing.fakes.smtp import SmtpSink

        class Counting(SmtpSink):
            async def handle_DATA(self, server, session, envelope):
                count()
                return "250 OK"

        Counting(keep=False, port=port, loop=uvloop.new_event_loop()).start()
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def email_channel(port: int, pool: int):
    channel = load_registry().channels["email"]
    channel.settings = Settings(home=Path(tempfile.mkdtemp(prefix="kaskad-bench-email-")), secret_key="bench",
                                public_url="https://kaskad.example")
    env = {"KASKAD_EMAIL_HOST": "127.0.0.1", "KASKAD_EMAIL_PORT": str(port), "KASKAD_EMAIL_STARTTLS": "false",
           "KASKAD_EMAIL_FROM_ADDRESS": "hello@pizzeria.example", "KASKAD_EMAIL_POOL_SIZE": str(pool)}
    channel.configure(config_from_env(channel, env))
    return channel


def sender(port: int, pool: int, start: int, n: int, batch: int, go, report) -> None:
    """One worker process: warm its pool up, wait for the start, send ``n`` messages, report its CPU."""

    async def run() -> float:
        channel = email_channel(port, pool)
        for i in range(0, 200 * pool, 200):  # open the pool's sessions and warm the code paths up
            assert all(r.status == "sent" for r in await channel.send_batch(messages(200, 10**9 + start + i)))
        report.put("ready")
        await asyncio.get_running_loop().run_in_executor(None, go.wait)
        cpu0 = time.process_time()
        for s in range(start, start + n, batch):
            results = await channel.send_batch(messages(min(batch, start + n - s), s))
            bad = [r for r in results if r.status != "sent"]
            if bad:
                raise SystemExit(f"{len(bad)} not sent: {bad[0].error}")
        cpu = time.process_time() - cpu0
        await channel.aclose()
        return cpu

    report.put(asyncio.run(run()))


def pooled_from_processes(port: int, sink_pid: int, counter, args) -> float:
    ctx = multiprocessing.get_context("fork")
    go, report = ctx.Event(), ctx.Queue()
    share = [args.messages // args.processes + (i < args.messages % args.processes) for i in range(args.processes)]
    starts = [sum(share[:i]) for i in range(args.processes)]
    procs = [ctx.Process(target=sender, args=(port, args.pool, starts[i], share[i], args.batch, go, report))
             for i in range(args.processes)]
    for p in procs:
        p.start()
    if collect(report, procs) != ["ready"] * len(procs):
        raise SystemExit("a sender did not start")
    before, sink0 = counter.value, cpu_seconds(sink_pid)
    t0 = time.perf_counter()
    go.set()
    cpus = collect(report, procs)
    elapsed = time.perf_counter() - t0
    sink_cpu = cpu_seconds(sink_pid) - sink0
    for p in procs:
        p.join()
    return report_line(f"pooled ({args.processes} processes x {args.pool} connections, batches of {args.batch})",
                       args.messages, counter.value - before, elapsed, sum(cpus), sink_cpu)


def collect(report, procs) -> list:
    """One report from each sender process; stops the others if one of them fails."""
    got = []
    while len(got) < len(procs):
        try:
            got.append(report.get(timeout=1))
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in procs):
                for p in procs:
                    p.terminate()
                raise SystemExit("a sender process failed (its error is above)") from None
    return got


async def one_connection_each(channel, n: int, concurrency: int) -> None:
    todo = messages(n)
    gate = asyncio.Semaphore(concurrency)

    async def one(m: OutboundMessage) -> None:
        async with gate:
            mail = channel.build(m)
            await aiosmtplib.send(mail.data, sender=mail.sender, recipients=[mail.recipient], hostname="127.0.0.1",
                                  port=channel.config.port, start_tls=False)

    await asyncio.gather(*(one(m) for m in todo))


def report_line(label: str, n: int, got: int, elapsed: float, cpu: float, sink_cpu: float) -> float:
    if got != n:
        raise SystemExit(f"{label}: the sink received {got} of {n}")
    rate = n / elapsed
    # CPU per email does not depend on what else the machine is doing; wall-clock rates do. With the box
    # to itself, the cores it has carry at most cores / (CPU per email of sender + sink) emails a second.
    per = (cpu + sink_cpu) / n
    print(f"{label:<58} {n:>6} emails in {elapsed:6.2f} s = {rate:6.0f} emails/s"
          f"  (CPU per email: senders {cpu / n * 1000:.3f} ms + sink {sink_cpu / n * 1000:.3f} ms"
          f" = {per * 1000:.3f} ms; CPU-bound on {os.cpu_count()} idle cores: {os.cpu_count() / per:.0f}/s)")
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--pool", type=int, default=8, help="SMTP connections per sender process")
    ap.add_argument("--processes", type=int, default=2, help="sender processes, as kaskad worker starts one per core")
    ap.add_argument("--sink", choices=["lean", "aiosmtpd"], default="lean")
    ap.add_argument("--baseline", type=int, default=2_000, help="messages for the connection-per-message run (0: skip)")
    args = ap.parse_args()

    port = free_port()
    counter = multiprocessing.Value("l", 0)
    proc = multiprocessing.Process(target=sink, args=(args.sink, port, counter), daemon=True)
    proc.start()
    try:
        wait_port(port)
        print(f"sink: {'kaskad.testing.fakes.smtp_counter (lean SMTP server)' if args.sink == 'lean' else 'aiosmtpd'}"
              f" on uvloop, in its own process; load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        rate = pooled_from_processes(port, proc.pid, counter, args)
        print(f"pooled: {rate:.0f} emails/s")
        if args.baseline:
            channel = email_channel(port, args.pool)
            before, t0, cpu0, sink0 = counter.value, time.perf_counter(), time.process_time(), cpu_seconds(proc.pid)
            asyncio.run(one_connection_each(channel, args.baseline, 8))
            base = report_line("a new connection per message (1 process, 8 at once)", args.baseline,
                               counter.value - before, time.perf_counter() - t0, time.process_time() - cpu0,
                               cpu_seconds(proc.pid) - sink0)
            print(f"pooled / connection per message: {rate / base:.1f}x")
        print(f"(load average now: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores)")
    finally:
        proc.terminate()
        proc.join()


if __name__ == "__main__":
    main()
