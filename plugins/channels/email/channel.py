"""Email over SMTP: multipart text + HTML, one connection reused for a whole batch.

Settings (environment): ``KASKAD_EMAIL_HOST``, ``_PORT`` (587), ``_USERNAME``,
``_PASSWORD``, ``_STARTTLS`` (true), ``_USE_TLS`` (implicit TLS, port 465),
``_FROM_ADDRESS``, ``_FROM_NAME``, ``_TIMEOUT``, ``_VALIDATE_CERTS``.
"""

from __future__ import annotations

import hmac
import html as html_lib
import re
import ssl
from email.message import EmailMessage
from email.utils import formataddr
from typing import Annotated

import aiosmtplib
import msgspec
from msgspec import Meta

from kaskad.channels import Channel, DeliveryEvent, OutboundMessage, SendResult, WebhookRejected
from kaskad.delivery import links
from kaskad_channels.email import tracking
from kaskad_channels.email.dsn import NotADsn, parse_dsn
from kaskad_channels.email.headers import message_id


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


class EmailChannel(Channel):
    name = "email"
    title = "Email"
    address_field = "email"
    config_type = EmailConfig
    message_type = EmailMessageSpec

    def __init__(self) -> None:
        self.config = EmailConfig()
        self.settings = None  # the server's settings (public URL, signing key), from bind()

    def configure(self, config: EmailConfig) -> None:
        self.config = config

    def bind(self, runtime) -> None:
        self.settings = runtime.settings

    def build(self, message: OutboundMessage) -> EmailMessage:
        """The MIME message for ``message``: text + HTML parts; once bound to a server,
        List-Unsubscribe headers (RFC 8058), click tracking and the open pixel."""
        spec = msgspec.convert(message.content, EmailMessageSpec)
        cfg = self.config
        mail = EmailMessage()
        mail["From"] = formataddr((cfg.from_name or "", cfg.from_address or ""))
        mail["To"] = message.address
        mail["Subject"] = spec.subject
        domain = (cfg.from_address or "kaskad.local").rpartition("@")[2] or "kaskad.local"
        mail["Message-ID"] = message_id(message.key, domain)
        mail["X-Kaskad-Key"] = message.key
        markup = spec.html
        if self.settings is not None:
            markup = self._add_links(mail, message, markup)
        mail.set_content(spec.text or html_to_text(spec.html))
        mail.add_alternative(markup, subtype="html")
        return mail

    def _add_links(self, mail: EmailMessage, message: OutboundMessage, markup: str) -> str:
        settings, cfg = self.settings, self.config
        base, secret = settings.public_url.rstrip("/"), settings.signing_key
        unsubscribe = links.unsubscribe_url(base, secret, message.key, message.recipient.contact_id, self.name, message.topic)
        targets = [f"<{unsubscribe}>"]
        if cfg.unsubscribe_mailto:
            targets.append(f"<mailto:{cfg.unsubscribe_mailto}?subject=unsubscribe>")
        mail["List-Unsubscribe"] = ", ".join(targets)
        mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
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
        failed = [r for r in report.recipients if r.action == "failed"]
        if failed:
            status, permanent = "bounced", any(r.permanent for r in failed)
            shown = next((r for r in failed if r.permanent), failed[0])
        elif all(r.action in ("delivered", "relayed", "expanded") for r in report.recipients):
            status, permanent, shown = "delivered", False, report.recipients[0]
        else:  # "delayed": the MTA is still trying
            return []
        detail = {"status": shown.status, "action": shown.action, "diagnostic": shown.diagnostic,
                  "reporting_mta": report.reporting_mta}
        if status == "bounced":
            detail["permanent"] = permanent
        return [DeliveryEvent(status=status, provider_message_id=report.message_id, outbox_key=report.outbox_key, detail=detail)]

    def _client(self) -> aiosmtplib.SMTP:
        cfg = self.config
        context = ssl.create_default_context()
        if not cfg.validate_certs:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return aiosmtplib.SMTP(
            hostname=cfg.host, port=cfg.port, use_tls=cfg.use_tls, start_tls=cfg.starttls and not cfg.use_tls,
            validate_certs=cfg.validate_certs, tls_context=context, timeout=cfg.timeout,
        )

    async def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        if not messages:
            return []
        if not self.config.host or not self.config.from_address:
            error = "the email channel is not configured: set KASKAD_EMAIL_HOST and KASKAD_EMAIL_FROM_ADDRESS"
            return [SendResult(key=m.key, status="failed", error=error) for m in messages]
        results: list[SendResult] = []
        smtp = self._client()
        try:
            await smtp.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            # The server is unreachable or refused us: every message may be retried later.
            return [SendResult(key=m.key, status="retry", error=f"SMTP connect: {exc}") for m in messages]
        if self.config.username:
            try:
                await smtp.login(self.config.username, self.config.password or "")
            except (aiosmtplib.SMTPException, OSError) as exc:
                # Retried with backoff, so fixing the credentials lets the messages go out.
                smtp.close()
                return [SendResult(key=m.key, status="retry", error=f"SMTP login refused: {exc}") for m in messages]
        try:
            for m in messages:
                results.append(await self._send_one(smtp, m))
        finally:
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                pass
        return results

    async def _send_one(self, smtp: aiosmtplib.SMTP, m: OutboundMessage) -> SendResult:
        try:
            mail = self.build(m)
        except (msgspec.ValidationError, ValueError) as exc:
            return SendResult(key=m.key, status="failed", error=f"message cannot be built: {exc}")
        try:
            errors, _ = await smtp.send_message(mail)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return SendResult(key=m.key, status="failed", error=f"recipient refused: {exc}")
        except aiosmtplib.SMTPResponseException as exc:
            status = "retry" if 400 <= exc.code < 500 else "failed"
            return SendResult(key=m.key, status=status, error=f"SMTP {exc.code}: {exc.message}")
        except (aiosmtplib.SMTPException, OSError) as exc:
            return SendResult(key=m.key, status="retry", error=f"SMTP: {exc}")
        if errors:
            return SendResult(key=m.key, status="failed", error=f"refused: {errors}")
        return SendResult(key=m.key, status="sent", provider_message_id=mail["Message-ID"])
