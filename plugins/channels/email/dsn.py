"""Delivery Status Notifications (RFC 3464): what a bounce says, and which message it is about.

A DSN is a ``multipart/report; report-type=delivery-status`` message with a
human part, a ``message/delivery-status`` part (one block about the report,
then one block per recipient: ``Final-Recipient``, ``Action``, ``Status``,
``Diagnostic-Code``) and the original message or its headers
(``message/rfc822`` or ``text/rfc822-headers``), which carry our Message-ID
and ``X-Kaskad-Key``.

``Status`` is an RFC 3463 code: ``5.x.x`` is permanent (a hard bounce: the
address is dead), ``4.x.x`` transient (a soft bounce: mailbox full, greylisted).
"""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage, Message
from email.parser import HeaderParser

import msgspec

from kaskad.channels import DeliveryEvent
from kaskad_channels.email.headers import key_from_message_id


class NotADsn(ValueError):
    """The message is not an RFC 3464 delivery status report."""


class RecipientStatus(msgspec.Struct, kw_only=True, frozen=True):
    recipient: str
    action: str  # failed | delayed | delivered | relayed | expanded
    status: str  # RFC 3463, e.g. 5.1.1
    diagnostic: str | None = None
    remote_mta: str | None = None

    @property
    def permanent(self) -> bool:
        return self.action == "failed" and self.status.startswith("5")


class Dsn(msgspec.Struct, kw_only=True, frozen=True):
    reporting_mta: str | None
    message_id: str | None  # the original message's Message-ID
    outbox_key: str | None  # from X-Kaskad-Key, else read back from our Message-ID
    recipients: list[RecipientStatus]


def _value(field: str | None) -> str | None:
    """``rfc822; a@b`` → ``a@b``; folded lines joined."""
    if field is None:
        return None
    text = " ".join(str(field).split())
    return text.partition(";")[2].strip() if ";" in text else text


def _original_headers(report: EmailMessage) -> Message | None:
    for part in report.iter_parts():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = part.get_payload()
            return inner[0] if isinstance(inner, list) and inner else None
        if ctype == "text/rfc822-headers":
            return HeaderParser().parsestr(part.get_content())
    return None


def parse_dsn(raw: bytes) -> Dsn:
    """Parse a DSN; :class:`NotADsn` names what is missing."""
    report = email.message_from_bytes(raw, policy=policy.default)
    if report.get_content_type() != "multipart/report" or report.get_param("report-type") != "delivery-status":
        raise NotADsn(f"expected multipart/report; report-type=delivery-status, got {report.get_content_type()}")
    status_part = next((p for p in report.iter_parts() if p.get_content_type() == "message/delivery-status"), None)
    if status_part is None:
        raise NotADsn("no message/delivery-status part")
    blocks = status_part.get_payload()
    if not isinstance(blocks, list) or not blocks:
        raise NotADsn("the message/delivery-status part is empty")
    recipients = []
    for block in blocks[1:]:
        recipient = _value(block.get("Final-Recipient")) or _value(block.get("Original-Recipient"))
        action, status = (block.get("Action") or "").strip().lower(), (block.get("Status") or "").strip()
        if not recipient or not action or not status:
            raise NotADsn("a recipient block lacks Final-Recipient, Action or Status")
        recipients.append(RecipientStatus(
            recipient=recipient, action=action, status=status.split()[0],
            diagnostic=_value(block.get("Diagnostic-Code")), remote_mta=_value(block.get("Remote-MTA")),
        ))
    if not recipients:
        raise NotADsn("no recipient blocks")
    original = _original_headers(report)
    message_id = str(original.get("Message-ID")).strip() if original is not None and original.get("Message-ID") else None
    key = str(original.get("X-Kaskad-Key")).strip() if original is not None and original.get("X-Kaskad-Key") else None
    return Dsn(
        reporting_mta=_value(blocks[0].get("Reporting-MTA")),
        message_id=message_id,
        outbox_key=key or (key_from_message_id(message_id) if message_id else None),
        recipients=recipients,
    )


def delivery_event(report: Dsn) -> DeliveryEvent | None:
    """``bounced`` (``detail["permanent"]`` for 5.x.x) when a recipient failed, ``delivered``
    when all were delivered or relayed, None while the server is still trying (``delayed``)."""
    failed = [r for r in report.recipients if r.action == "failed"]
    if failed:
        shown = next((r for r in failed if r.permanent), failed[0])
        status = "bounced"
    elif all(r.action in ("delivered", "relayed", "expanded") for r in report.recipients):
        shown, status = report.recipients[0], "delivered"
    else:
        return None
    detail = {"status": shown.status, "action": shown.action, "diagnostic": shown.diagnostic,
              "reporting_mta": report.reporting_mta}
    if status == "bounced":
        detail["permanent"] = shown.permanent
    return DeliveryEvent(status=status, provider_message_id=report.message_id, outbox_key=report.outbox_key, detail=detail)
