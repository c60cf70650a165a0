"""A pool of persistent SMTP connections, reused across batches.

Opening an SMTP session (TCP, greeting, EHLO, STARTTLS, AUTH) costs more than
sending a message over it; a worker keeps up to ``size`` sessions open and
sends a batch over several of them at once. A connection that broke, or that
sat idle long enough for the server to drop it (checked with NOOP), is
replaced transparently.

Sessions (aiosmtplib opens them) belong to the event loop that opened them, so the
email channel keeps one pool per running loop (a worker that keeps its loop
keeps its connections).
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable

import aiosmtplib

from kaskad_channels.email.session import SmtpSession

#: Errors that mean "this connection is gone", not "this message was refused".
BROKEN = (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPConnectError, aiosmtplib.SMTPTimeoutError, ConnectionError, OSError)


class SmtpPool:
    def __init__(self, connect: Callable[[], Awaitable[SmtpSession]], size: int, idle_check: float = 30.0) -> None:
        self._connect = connect
        self.size = size
        #: Connections idle for longer than this are checked with NOOP before reuse.
        self.idle_check = idle_check
        self._idle: list[tuple[SmtpSession, float]] = []
        self._open = 0
        self._slot = asyncio.Condition()
        #: How many SMTP sessions this pool has opened (for tests and benchmarks).
        self.opened = 0

    async def acquire(self) -> SmtpSession:
        """An open, logged-in connection; waits while ``size`` are in use. Raises when it cannot connect."""
        while True:
            async with self._slot:
                while not self._idle and self._open >= self.size:
                    await self._slot.wait()
                if self._idle:
                    conn, used = self._idle.pop()
                else:
                    self._open += 1
                    conn = None
            if conn is None:
                try:
                    conn = await self._connect()
                except BaseException:
                    await self._forget()
                    raise
                self.opened += 1
                return conn
            if conn.is_connected and (time.monotonic() - used < self.idle_check or await _answers(conn)):
                return conn
            conn.close()
            await self._forget()

    async def release(self, conn: SmtpSession, broken: bool = False) -> None:
        """Give a connection back; a broken one is closed and its slot freed."""
        if broken or not conn.is_connected:
            conn.close()
            await self._forget()
            return
        async with self._slot:
            self._idle.append((conn, time.monotonic()))
            self._slot.notify()

    async def _forget(self) -> None:
        async with self._slot:
            self._open -= 1
            self._slot.notify()

    async def close(self) -> None:
        """QUIT every idle connection (connections in use are closed when released)."""
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            try:
                await conn.quit()
            except (aiosmtplib.SMTPException, OSError):
                conn.close()
            self._open -= 1

    def abandon(self) -> None:
        """Drop idle connections without talking to the server (their loop may be gone)."""
        for conn, _ in self._idle:
            try:
                conn.close()
            except RuntimeError:  # the event loop is already closed
                pass
        self._open -= len(self._idle)
        self._idle = []


async def _answers(conn: SmtpSession) -> bool:
    try:
        await conn.noop()
        return True
    except (aiosmtplib.SMTPException, OSError):
        return False
