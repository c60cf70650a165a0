"""An open, logged-in SMTP session that sends mail transactions, pipelined when the server allows.

aiosmtplib opens the session (TCP or implicit TLS, greeting, EHLO, STARTTLS,
AUTH); then :class:`SmtpSession` takes the transport over and carries the
transactions. aiosmtplib's protocol waits for one reply per command, so a
message costs four round trips (MAIL, RCPT, DATA, the content). With the
PIPELINING extension (RFC 2920), which every mainstream MTA offers, MAIL, RCPT
and DATA go out in one write, and since content may open a pipelined group,
the next message's MAIL, RCPT and DATA go out with this message's content:
one round trip per message, a quarter of the system calls and event-loop
wake-ups on both ends. A server that does not offer PIPELINING gets the
commands one at a time, as before.

Failures raise aiosmtplib's exception types, so callers tell "this message
was refused" (:class:`aiosmtplib.SMTPResponseException` and subclasses) from
"this connection is gone" (:class:`aiosmtplib.SMTPServerDisconnected`,
:class:`aiosmtplib.SMTPTimeoutError`) exactly as with aiosmtplib itself.
"""

from __future__ import annotations

import asyncio
from collections import deque

import aiosmtplib
from aiosmtplib import SMTPResponse

#: A reply longer than this is not an SMTP server talking (RFC 5321 allows 512 per line).
_MAX_REPLY = 64 * 1024


def dot_stuff(data: bytes) -> bytes:
    """The DATA content for ``data`` (CRLF lines): leading dots doubled, ending ``CRLF . CRLF``."""
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    data = data.replace(b"\r\n.", b"\r\n..")
    if data.startswith(b"."):
        data = b"." + data
    return data + b".\r\n"


def _valid_address(value: str) -> bool:
    return value.isascii() and value.isprintable() and not any(ch in value for ch in " <>")


def _check_address(value: str) -> None:
    if not _valid_address(value):
        raise ValueError(f"not an SMTP address: {value!r}")


def _envelope(sender: str, recipient: str) -> bytes:
    return f"MAIL FROM:<{sender}>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode()


def _refusal(sender: str, recipient: str, mail, rcpt, data_start) -> Exception | None:
    """The error for a transaction whose envelope the server refused; None when it waits for content."""
    if mail.code != 250:
        return aiosmtplib.SMTPSenderRefused(mail.code, mail.message, sender)
    if not 200 <= rcpt.code < 300:
        return aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(rcpt.code, rcpt.message, recipient)])
    if data_start.code != 354:
        return aiosmtplib.SMTPDataError(data_start.code, data_start.message)
    return None


class SmtpSession(asyncio.Protocol):
    """One SMTP connection after login; not safe for two transactions at once (the pool lends it to one sender)."""

    def __init__(self, smtp: aiosmtplib.SMTP, timeout: float) -> None:
        self.timeout = timeout
        self.pipelining = smtp.supports_extension("pipelining")
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray()
        self._replies: deque[SMTPResponse] = deque()
        self._waiter: asyncio.Future | None = None
        self._lost: Exception | None = None
        #: The (sender, recipient) whose MAIL, RCPT and DATA were written with the last content.
        self._sent_ahead: tuple[str, str] | None = None
        transport = smtp.transport
        if transport is None or transport.is_closing():
            raise aiosmtplib.SMTPServerDisconnected("the connection closed before it could be used")
        # From here on this object receives what the server says; the aiosmtplib
        # client has finished its part and is not used again.
        transport.set_protocol(self)
        self._transport = transport

    # asyncio.Protocol
    def data_received(self, data: bytes) -> None:
        self._buffer += data
        try:
            while (reply := self._parse_one()) is not None:
                self._replies.append(reply)
            if len(self._buffer) > _MAX_REPLY:
                raise aiosmtplib.SMTPResponseException(-1, "the server's reply is too long")
        except aiosmtplib.SMTPResponseException as exc:  # not an SMTP server talking: the session is unusable
            self._fail(aiosmtplib.SMTPServerDisconnected(f"SMTP protocol error: {exc.message}"))
            self._transport.close()
            return
        if self._replies and self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def eof_received(self) -> bool:
        self._fail(aiosmtplib.SMTPServerDisconnected("the server closed the connection"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        error = aiosmtplib.SMTPServerDisconnected("connection lost")
        error.__cause__ = exc
        self._fail(error)

    def _fail(self, exc: Exception) -> None:
        if self._lost is None:
            self._lost = exc
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(self._lost)

    def _parse_one(self) -> SMTPResponse | None:
        """The first complete reply in the buffer (``250-…`` lines continue it), removed; None if incomplete."""
        offset, lines = 0, []
        while True:
            end = self._buffer.find(b"\n", offset)
            if end == -1:
                return None
            line = bytes(self._buffer[offset:end + 1])
            offset = end + 1
            try:
                code = int(line[:3])
            except ValueError:
                raise aiosmtplib.SMTPResponseException(-1, f"malformed SMTP reply: {line[:80]!r}") from None
            lines.append(line[4:].strip(b" \t\r\n"))
            if line[3:4] != b"-":
                del self._buffer[:offset]
                return SMTPResponse(code, b"\n".join(lines).decode("utf-8", "surrogateescape"))

    @property
    def is_connected(self) -> bool:
        return self._lost is None and not self._transport.is_closing()

    def _write(self, data: bytes) -> None:
        if not self.is_connected:
            raise self._lost or aiosmtplib.SMTPServerDisconnected("connection lost")
        self._transport.write(data)

    async def _reply(self) -> SMTPResponse:
        if not self._replies:
            if self._lost is not None:
                raise self._lost
            self._waiter = self._loop.create_future()
            timer = self._loop.call_later(self.timeout, self._timed_out, self._waiter)
            try:
                await self._waiter
            finally:
                timer.cancel()
                self._waiter = None
        reply = self._replies.popleft()
        if reply.code == 421:  # the server is shutting this session down (RFC 5321 3.8)
            self._transport.close()
            raise aiosmtplib.SMTPServerDisconnected(f"421 {reply.message}")
        return reply

    def _timed_out(self, waiter: asyncio.Future) -> None:
        if not waiter.done():
            # A reply we gave up on would be read as the answer to the next command: drop the session.
            self._fail(aiosmtplib.SMTPReadTimeoutError("timed out waiting for the server's reply"))
            self._transport.close()

    async def sendmail(self, sender: str, recipient: str, data: bytes, then: tuple[str, str] | None = None) -> None:
        """One transaction: ``data`` (a whole message, CRLF lines) from ``sender`` to ``recipient``.

        ``then`` is the (sender, recipient) of the transaction the caller sends next on this
        session: when pipelining, its MAIL, RCPT and DATA go out with this content, so each
        message costs one round trip; the next call must then be for exactly that envelope
        (any other call first settles it).

        Raises :class:`aiosmtplib.SMTPSenderRefused`, :class:`aiosmtplib.SMTPRecipientsRefused`
        or :class:`aiosmtplib.SMTPDataError` when the server refuses it (the session stays
        usable), ValueError for an address SMTP cannot carry, and the disconnect / timeout
        errors when the session is gone.
        """
        _check_address(sender)
        _check_address(recipient)
        if self._sent_ahead is not None and self._sent_ahead != (sender, recipient):
            await self._settle()
        if self._sent_ahead is not None:
            self._sent_ahead = None
            mail, rcpt, data_start = await self._reply(), await self._reply(), await self._reply()
        elif self.pipelining:
            self._write(_envelope(sender, recipient))
            mail, rcpt, data_start = await self._reply(), await self._reply(), await self._reply()
        else:
            data_start = rcpt = None
            self._write(f"MAIL FROM:<{sender}>\r\n".encode())
            mail = await self._reply()
            if mail.code == 250:
                self._write(f"RCPT TO:<{recipient}>\r\n".encode())
                rcpt = await self._reply()
                if 200 <= rcpt.code < 300:
                    self._write(b"DATA\r\n")
                    data_start = await self._reply()
        refused = _refusal(sender, recipient, mail, rcpt, data_start)
        if refused is not None:
            await self._end_refused(data_start)
            raise refused
        content = dot_stuff(data)
        if then is not None and self.pipelining and _valid_address(then[0]) and _valid_address(then[1]):
            # RFC 2920 3.1: content may open a group, so the next envelope rides along.
            content += _envelope(*then)
            self._sent_ahead = then
        self._write(content)
        done = await self._reply()
        if done.code != 250:
            raise aiosmtplib.SMTPDataError(done.code, done.message)

    async def _end_refused(self, data_start: SMTPResponse | None) -> None:
        if data_start is not None and data_start.code == 354:
            # RFC 2920: a server that accepted DATA after refusing the envelope waits for
            # content; end it empty (it is not delivered: there is no valid recipient).
            self._write(b".\r\n")
            await self._reply()
        self._write(b"RSET\r\n")
        await self._reply()

    async def _settle(self) -> None:
        """Read the replies to an envelope sent ahead that is not going to be used."""
        if self._sent_ahead is None:
            return
        self._sent_ahead = None
        _mail, _rcpt, data_start = await self._reply(), await self._reply(), await self._reply()
        if data_start.code == 354:
            # The server waits for content, and "." alone would deliver an empty message to an
            # accepted recipient: SMTP has no way to abort DATA but dropping the connection.
            self.close()
            raise aiosmtplib.SMTPServerDisconnected("closed to abandon a transaction sent ahead")
        await self._end_refused(data_start)

    async def noop(self) -> None:
        await self._settle()
        self._write(b"NOOP\r\n")
        reply = await self._reply()
        if reply.code != 250:
            raise aiosmtplib.SMTPResponseException(reply.code, reply.message)

    async def quit(self) -> None:
        try:
            await self._settle()
            self._write(b"QUIT\r\n")
            await self._reply()
        except (aiosmtplib.SMTPException, OSError):
            pass
        finally:
            self.close()

    def close(self) -> None:
        self._transport.close()
