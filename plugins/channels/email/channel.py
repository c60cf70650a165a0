"""Email over SMTP: multipart text + HTML over a pool of persistent connections.

Settings (environment): ``KASKAD_EMAIL_HOST``, ``_PORT`` (587), ``_USERNAME``,
``_PASSWORD``, ``_STARTTLS`` (true), ``_USE_TLS`` (implicit TLS, port 465),
``_FROM_ADDRESS``, ``_FROM_NAME``, ``_TIMEOUT``, ``_VALIDATE_CERTS``, ``_POOL_SIZE``,
``_TRACK_OPENS``, ``_TRACK_CLICKS``, ``_UNSUBSCRIBE_MAILTO``, ``_BOUNCE_SECRET``.
"""

from __future__ import annotations

import asyncio
import hmac
import html as html_lib
import re
import ssl
import weakref
from collections import deque
from typing import Annotated, NamedTuple

import aiosmtplib
import msgspec
from msgspec import Meta

from kaskad.channels import Channel, DeliveryEvent, OutboundMessage, SendResult, WebhookRejected
from kaskad.delivery import links
from kaskad_channels.email import mime, tracking
from kaskad_channels.email.dsn import NotADsn, delivery_event, parse_dsn
from kaskad_channels.email.headers import message_id
from kaskad_channels.email.pool import BROKEN, SmtpPool
from kaskad_channels.email.session import SmtpSession


class EmailMessageSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    subject: Annotated[str, Meta(min_length=1, title="Subject", description="A template: {{ contact.first_name }}…")]
    html: Annotated[str, Meta(min_length=1, title="HTML body", description="A template; variables are HTML-escaped")]
    text: Annotated[str, Meta(title="Text body", description="Plain-text part; derived from the HTML when empty")] | None = None


class EmailConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    host: Annotated[str, Meta(title="SMTP host")] | None = None
    port: Annotated[int, Meta(ge=1, le=65535)] = 587
    username: str | None = None
    password: str | None = None
    starttls: Annotated[bool, Meta(description="Upgrade with STARTTLS (port 587)")] = True
    use_tls: Annotated[bool, Meta(description="Implicit TLS from the start (port 465)")] = False
    validate_certs: bool = True
    from_address: Annotated[str, Meta(title="From address")] | None = None
    from_name: str | None = None
    timeout: Annotated[float, Meta(gt=0)] = 30.0
    pool_size: Annotated[int, Meta(ge=1, le=100, description="SMTP connections kept open and used in parallel")] = 4
    track_opens: Annotated[bool, Meta(description="Add a signed open pixel to the HTML part")] = True
    track_clicks: Annotated[bool, Meta(description="Route http(s) links through a signed click redirect")] = True
    unsubscribe_mailto: Annotated[str, Meta(
        title="Unsubscribe mailbox",
        description="Also offer mailto: in List-Unsubscribe (a mailbox you process yourself)",
    )] | None = None
    bounce_secret: Annotated[str, Meta(
        description="Shared secret a bounce (DSN) POST to /hooks/email must carry in X-Kaskad-Bounce-Secret",
    )] | None = None


_TAGS = re.compile(r"<[^>]+>")
_BLOCK_END = re.compile(r"</(p|div|h[1-6]|li|tr)>|<br\s*/?>", re.I)


def html_to_text(markup: str) -> str:
    text = _BLOCK_END.sub("\n", markup)
    text = html_lib.unescape(_TAGS.sub("", text))
    return "\n".join(line.strip() for line in text.splitlines()).strip() + "\n"


class Composed(NamedTuple):
    """A message ready for the SMTP envelope."""

    sender: str
    recipient: str
    message_id: str
    data: bytes


class EmailChannel(Channel):
    name = "email"
    title = "Email"
    address_field = "email"
    config_type = EmailConfig
    message_type = EmailMessageSpec

    def __init__(self) -> None:
        self.config = EmailConfig()
        self.settings = None  # the server's settings (public URL, signing key), from bind()
        self._pools: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # event loop -> SmtpPool

    def configure(self, config: EmailConfig) -> None:
        self.config = config
        for pool in self._pools.values():  # connections to the old server are of no use
            pool.abandon()
        self._pools.clear()

    def bind(self, runtime) -> None:
        self.settings = runtime.settings

    def build(self, message: OutboundMessage) -> Composed:
        """The MIME message for ``message``: text + HTML parts; once bound to a server,
        List-Unsubscribe headers (RFC 8058), click tracking and the open pixel."""
        spec = msgspec.convert(message.content, EmailMessageSpec)
        cfg = self.config
        domain = (cfg.from_address or "kaskad.local").rpartition("@")[2] or "kaskad.local"
        mid = message_id(message.key, domain)
        headers = [
            ("From", mime.address(cfg.from_name, cfg.from_address or "")),
            ("To", message.address),
            ("Subject", " ".join(spec.subject.split())),  # a template may leave line breaks
            ("Message-ID", mid),
            ("X-Kaskad-Key", message.key),
        ]
        markup = spec.html
        if self.settings is not None:
            markup = self._add_links(headers, message, markup)
        data = mime.compose(headers, spec.text or html_to_text(spec.html), markup)
        return Composed(sender=cfg.from_address or "", recipient=message.address, message_id=mid, data=data)

    def _add_links(self, headers: list[tuple[str, str]], message: OutboundMessage, markup: str) -> str:
        settings, cfg = self.settings, self.config
        base, secret = settings.public_url.rstrip("/"), settings.signing_key
        unsubscribe = links.unsubscribe_url(base, secret, message.key, message.recipient.contact_id, self.name, message.topic)
        targets = [f"<{unsubscribe}>"]
        if cfg.unsubscribe_mailto:
            targets.append(f"<mailto:{cfg.unsubscribe_mailto}?subject=unsubscribe>")
        headers.append(("List-Unsubscribe", ", ".join(targets)))
        headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
        if cfg.track_clicks:
            markup = tracking.rewrite_links(markup, lambda url: links.click_url(base, secret, message.key, url), keep=base + "/u/")
        if cfg.track_opens:
            markup = tracking.add_pixel(markup, links.pixel_url(base, secret, message.key))
        return markup

    async def parse_webhook(self, headers: dict[str, str], body: bytes, url: str) -> list[DeliveryEvent]:
        """A bounce: the raw DSN (RFC 3464) POSTed by your mail server, with the shared secret in
        ``X-Kaskad-Bounce-Secret``. Matched to the message by its Message-ID / X-Kaskad-Key."""
        secret = self.config.bounce_secret
        if not secret:
            raise WebhookRejected("KASKAD_EMAIL_BOUNCE_SECRET is not set: bounce reports cannot be verified")
        if not hmac.compare_digest(headers.get("x-kaskad-bounce-secret", "").encode(), secret.encode()):
            raise WebhookRejected("X-Kaskad-Bounce-Secret is missing or does not match")
        try:
            report = parse_dsn(body)
        except NotADsn as exc:
            raise WebhookRejected(f"not a delivery status notification: {exc}") from None
        if not report.message_id and not report.outbox_key:
            raise WebhookRejected("the report does not quote the original Message-ID")
        event = delivery_event(report)
        return [event] if event is not None else []

    def _pool(self) -> SmtpPool:
        loop = asyncio.get_running_loop()
        # A pool's connections refer to their loop, so a loop that asyncio.run() closed
        # would never leave the weak dictionary: drop those pools here.
        for old in [lp for lp in self._pools if lp.is_closed()]:
            self._pools.pop(old).abandon()
        pool = self._pools.get(loop)
        if pool is None:
            pool = self._pools[loop] = SmtpPool(self._connect, self.config.pool_size)
        return pool

    async def _connect(self) -> SmtpSession:
        cfg = self.config
        context = None
        if cfg.use_tls or cfg.starttls:  # loading the CA store costs ~100 ms: only when TLS is used
            context = ssl.create_default_context()
            if not cfg.validate_certs:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        smtp = aiosmtplib.SMTP(
            hostname=cfg.host, port=cfg.port, use_tls=cfg.use_tls, start_tls=cfg.starttls and not cfg.use_tls,
            validate_certs=cfg.validate_certs, tls_context=context, timeout=cfg.timeout,
        )
        try:
            await smtp.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise CannotConnect(f"SMTP connect: {exc}") from None
        if cfg.username:
            try:
                await smtp.login(cfg.username, cfg.password or "")
            except (aiosmtplib.SMTPException, OSError) as exc:
                smtp.close()
                raise CannotConnect(f"SMTP login refused: {exc}") from None
        if smtp.is_ehlo_or_helo_needed:  # without STARTTLS or a login nothing has greeted the server yet
            try:
                try:
                    await smtp.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await smtp.helo()  # an SMTP (not ESMTP) server: no extensions, no pipelining
            except (aiosmtplib.SMTPException, OSError) as exc:
                smtp.close()
                raise CannotConnect(f"SMTP greeting: {exc}") from None
        try:
            return SmtpSession(smtp, cfg.timeout)
        except aiosmtplib.SMTPServerDisconnected as exc:
            raise CannotConnect(f"SMTP connect: {exc}") from None

    async def aclose(self) -> None:
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.close()

    async def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        """Send over up to ``pool_size`` pooled connections at once; results in input order."""
        if not messages:
            return []
        if not self.config.host or not self.config.from_address:
            error = "the email channel is not configured: set KASKAD_EMAIL_HOST and KASKAD_EMAIL_FROM_ADDRESS"
            return [SendResult(key=m.key, status="failed", error=error) for m in messages]
        pool = self._pool()
        todo = deque(enumerate(messages))
        results: list[SendResult | None] = [None] * len(messages)
        connect_error: list[str] = []

        def take() -> tuple[int, OutboundMessage, Composed] | None:
            """The next message that builds (one that does not is failed here)."""
            while todo:
                i, m = todo.popleft()
                try:
                    return i, m, self.build(m)
                except (msgspec.ValidationError, ValueError) as exc:
                    results[i] = SendResult(key=m.key, status="failed", error=f"message cannot be built: {exc}")
            return None

        async def sender() -> None:
            conn = None
            current = take()
            try:
                while current is not None:
                    i, m, mail = current
                    # Taken now so that its envelope can travel with this message's content (RFC 2920).
                    following = take()
                    for attempt in (1, 2):  # a dropped connection gets one fresh one for the same message
                        if conn is None:
                            try:
                                conn = await pool.acquire()
                            except CannotConnect as exc:
                                # Leave the messages to a sender that has a connection; if none
                                # has, they are retried later (the server is down or refused us).
                                connect_error.append(str(exc))
                                if following is not None:
                                    todo.appendleft(following[:2])
                                todo.appendleft((i, m))
                                return
                        try:
                            results[i] = await self._send_one(conn, m, mail, following[2] if following else None)
                            break
                        except BROKEN as exc:
                            await pool.release(conn, broken=True)
                            conn = None
                            if attempt == 2:
                                results[i] = SendResult(key=m.key, status="retry", error=f"SMTP connection lost: {exc}")
                    current = following
            finally:
                if conn is not None:
                    await pool.release(conn)

        await asyncio.gather(*(sender() for _ in range(min(pool.size, len(messages)))))
        error = connect_error[-1] if connect_error else "not sent"
        return [r or SendResult(key=m.key, status="retry", error=error) for r, m in zip(results, messages)]

    async def _send_one(self, smtp: SmtpSession, m: OutboundMessage, mail: Composed, then: Composed | None) -> SendResult:
        """One message on an open session (``then``: the one to send next on it); raises
        :data:`BROKEN` errors when the connection is gone."""
        try:
            await smtp.sendmail(mail.sender, mail.recipient, mail.data, then=(then.sender, then.recipient) if then else None)
        except ValueError as exc:  # an address SMTP cannot carry
            return SendResult(key=m.key, status="failed", error=f"message cannot be sent: {exc}")
        except aiosmtplib.SMTPRecipientsRefused as exc:
            # 4xx (mailbox full, greylisting) may pass later; 5xx will not.
            transient = all(400 <= r.code < 500 for r in exc.recipients)
            return SendResult(key=m.key, status="retry" if transient else "failed", error=f"recipient refused: {exc}")
        except aiosmtplib.SMTPResponseException as exc:
            # 530: authentication or STARTTLS required: our settings, not the message, are wrong.
            status = "retry" if 400 <= exc.code < 500 or exc.code == 530 else "failed"
            return SendResult(key=m.key, status=status, error=f"SMTP {exc.code}: {exc.message}")
        except BROKEN:
            raise
        except aiosmtplib.SMTPException as exc:
            return SendResult(key=m.key, status="retry", error=f"SMTP: {exc}")
        return SendResult(key=m.key, status="sent", provider_message_id=mail.message_id)


class CannotConnect(Exception):
    """No SMTP session could be opened (unreachable, TLS, or the login was refused)."""
