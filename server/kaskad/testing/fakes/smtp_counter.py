"""A lean SMTP server that receives whole messages and counts them: the sink for email benchmarks.

Why not :class:`kaskad.testing.fakes.smtp.SmtpSink` (aiosmtpd)? aiosmtpd is
written to be checked, not to be fast: it reads DATA one line at a time, logs
each line and parses every address with the standard library's header parser,
which costs more CPU per message (about 0.6 ms) than the sender. On a 2-core
box the sink then decides the figure, and a benchmark of the sender measures
aiosmtpd. A real receiving MTA (Postfix, a provider's MX) is compiled code and
reads DATA in blocks; this server does the same in a few bytes operations per
message, so what a benchmark shows is what the sender can do.

It is still a real SMTP server (RFC 5321), not a socket that swallows bytes:
the greeting, EHLO/HELO, MAIL, RCPT, DATA with the whole content read up to
``CRLF.CRLF`` and dot-unstuffed, RSET, NOOP, QUIT, replies in order for
pipelined commands (RFC 2920, advertised), 503 for commands out of sequence,
500 for unknown ones or over-long lines, 552 over ``max_size``. A message is
counted when its content has arrived, just before the 250 that acknowledges it.
Tests that look at what arrived use :class:`SmtpSink`.

    server = await start_counting_smtp(port, on_message=lambda sender, rcpts, data: ...)
"""

from __future__ import annotations

import asyncio
from typing import Callable

#: RFC 5321 4.5.3.1.4: a command line is at most 512 octets; some clients send longer MAIL lines.
MAX_LINE = 2048


class CountingSmtpProtocol(asyncio.Protocol):
    def __init__(self, on_message: Callable[[str, list[str], bytes], None], hostname: str, max_size: int) -> None:
        self.on_message, self.hostname, self.max_size = on_message, hostname, max_size
        self._buffer = bytearray()
        self._greeted = False
        self._in_data = False
        self._scanned = 0  # where the search for the end of DATA resumes
        self._sender: str | None = None
        self._recipients: list[str] = []
        self._closing = False  # close once the replies so far are written

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(f"220 {self.hostname} ESMTP kaskad counting sink\r\n".encode())

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        replies: list[bytes] = []
        while self._buffer and not self._closing:
            if self._in_data:
                if not self._take_content(replies):
                    break
                continue
            end = self._buffer.find(b"\r\n")
            if end == -1:
                if len(self._buffer) > MAX_LINE:
                    replies.append(b"500 5.5.2 line too long\r\n")
                    self._closing = True
                break
            line = bytes(self._buffer[:end])
            del self._buffer[:end + 2]
            replies.append(self._command(line))
        if replies:
            # Pipelined commands get their replies in order, in one write (RFC 2920 3.1).
            self.transport.write(b"".join(replies))
        if self._closing:
            self.transport.close()

    def _take_content(self, replies: list[bytes]) -> bool:
        """Consume one message's content if it has all arrived (False: wait for more)."""
        buf = self._buffer
        if buf.startswith(b".\r\n"):
            body, rest = b"", 3
        else:
            end = buf.find(b"\r\n.\r\n", self._scanned)
            if end == -1:
                self._scanned = max(0, len(buf) - 4)
                if len(buf) > self.max_size:
                    replies.append(b"552 5.3.4 message too big\r\n")
                    self._closing = True
                return False
            body, rest = bytes(buf[:end + 2]), end + 5
        del buf[:rest]
        self._in_data, self._scanned = False, 0
        body = body.replace(b"\r\n..", b"\r\n.")
        if body.startswith(b".."):
            body = body[1:]
        self.on_message(self._sender or "", self._recipients, body)
        self._sender, self._recipients = None, []
        replies.append(b"250 2.0.0 OK\r\n")
        return True

    def _command(self, line: bytes) -> bytes:
        verb, _, arg = line.decode("utf-8", "surrogateescape").partition(" ")
        verb = verb.upper()
        if verb in ("EHLO", "HELO"):
            if not arg.strip():
                return f"501 5.5.4 syntax: {verb} hostname\r\n".encode()
            self._greeted, self._sender, self._recipients = True, None, []
            if verb == "HELO":
                return f"250 {self.hostname}\r\n".encode()
            return (f"250-{self.hostname}\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                    f"250-SIZE {self.max_size}\r\n250 HELP\r\n").encode()
        if verb == "MAIL":
            if not self._greeted:
                return b"503 5.5.1 send EHLO first\r\n"
            if self._sender is not None:
                return b"503 5.5.1 nested MAIL command\r\n"
            address = _path(arg, "FROM:")
            if address is None:
                return b"501 5.5.4 syntax: MAIL FROM:<address>\r\n"
            self._sender = address
            return b"250 2.1.0 OK\r\n"
        if verb == "RCPT":
            if self._sender is None:
                return b"503 5.5.1 need MAIL first\r\n"
            address = _path(arg, "TO:")
            if not address:
                return b"501 5.5.4 syntax: RCPT TO:<address>\r\n"
            self._recipients.append(address)
            return b"250 2.1.5 OK\r\n"
        if verb == "DATA":
            if arg:
                return b"501 5.5.4 syntax: DATA\r\n"
            if not self._recipients:
                return b"503 5.5.1 need RCPT first\r\n"
            self._in_data = True
            return b"354 end data with <CR><LF>.<CR><LF>\r\n"
        if verb == "RSET":
            self._sender, self._recipients = None, []
            return b"250 2.0.0 OK\r\n"
        if verb == "NOOP":
            return b"250 2.0.0 OK\r\n"
        if verb == "QUIT":
            self._closing = True
            return b"221 2.0.0 bye\r\n"
        return b"500 5.5.1 command not recognized\r\n"


def _path(arg: str, prefix: str) -> str | None:
    """``FROM:<a@b> SIZE=10`` → ``a@b`` (``""`` for the null sender ``<>``); None if malformed."""
    if not arg[:len(prefix)].upper() == prefix:
        return None
    rest = arg[len(prefix):].strip()
    if not rest.startswith("<") or ">" not in rest:
        return None
    return rest[1:rest.index(">")]


async def start_counting_smtp(port: int, on_message: Callable[[str, list[str], bytes], None],
                              hostname: str = "127.0.0.1", max_size: int = 32 * 1024 * 1024) -> asyncio.Server:
    """Listen on 127.0.0.1:``port``; ``on_message(sender, recipients, content)`` for each message received."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: CountingSmtpProtocol(on_message, hostname, max_size), "127.0.0.1", port)
