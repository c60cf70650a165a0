"""The channel contract. A channel plugin subclasses :class:`Channel`.

Core renders templates, enforces consent, caps and quiet hours, and writes the
outbox row before it calls :meth:`Channel.send_batch`; the channel only talks
to its provider.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal

import msgspec

DeliveryStatus = Literal["delivered", "opened", "clicked", "bounced", "failed", "unsubscribed", "replied"]


class Recipient(msgspec.Struct, kw_only=True):
    contact_id: int
    external_id: str
    email: str | None = None
    phone: str | None = None
    timezone: str | None = None
    attributes: dict[str, Any] = {}


class OutboundMessage(msgspec.Struct, kw_only=True):
    """One rendered message, already claimed in the outbox under ``key``."""

    key: str
    recipient: Recipient
    address: str
    content: dict[str, Any]
    topic: str | None = None


class SendResult(msgspec.Struct, kw_only=True):
    key: str
    status: Literal["sent", "failed", "retry"]
    provider_message_id: str | None = None
    error: str | None = None
    retry_after: float | None = None


class DeliveryEvent(msgspec.Struct, kw_only=True):
    """A provider's report about a sent message, found by its provider id or outbox key.

    For ``bounced``, ``detail["permanent"] = True`` marks a hard bounce (the
    address is dead): core then revokes the contact's consent for the channel.
    """

    status: DeliveryStatus
    provider_message_id: str | None = None
    outbox_key: str | None = None
    at: datetime | None = None
    detail: dict[str, Any] = {}


class WebhookRejected(Exception):
    """Raised by :meth:`Channel.parse_webhook` for an unsigned or malformed request."""


class Channel:
    """Base class of every channel. Subclasses set the class attributes and override the methods."""

    #: Name used in flows (``"channel": "email"``).
    name: ClassVar[str]
    #: Human title for the editor.
    title: ClassVar[str] = ""
    #: Which contact field a message is addressed to: ``email``, ``phone``, ``push``…
    address_field: ClassVar[str] = "email"
    #: Provider settings Struct (published as JSON Schema).
    config_type: ClassVar[type[msgspec.Struct] | None] = None
    #: Message Struct a send node's ``message`` must satisfy (published as JSON Schema).
    message_type: ClassVar[type[msgspec.Struct] | None] = None
    #: Provider rate limit in messages per second, shared across workers; None = unlimited.
    rate_limit: ClassVar[float | None] = None
    #: Whether sending needs the contact's consent for this channel (see kaskad.delivery.policy).
    requires_consent: ClassVar[bool] = True

    def configure(self, config: Any) -> None:
        """Receive the provider settings (an instance of ``config_type``), read from
        ``KASKAD_<NAME>_<FIELD>`` environment variables (:mod:`kaskad.channels.settings`)."""

    def bind(self, runtime: Any) -> None:
        """Receive the runtime (settings, database) once, when the server or worker starts."""

    def cost(self, message: OutboundMessage) -> Decimal:
        """Cost of one message in the account currency (an SMS's depends on its segments)."""
        return Decimal(0)

    async def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        """Send messages; return one result per message, matched by ``key``. Never raise for one bad message."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release long-lived resources (pooled connections) held for the running event loop;
        called when a worker stops."""

    def verify_subscription(self, params: dict[str, str]) -> str | None:
        """Answer a provider's webhook subscription handshake (a GET); None = refuse."""
        return None

    async def parse_webhook(self, headers: dict[str, str], body: bytes, url: str) -> list[DeliveryEvent]:
        """Verify and parse the provider's delivery webhook; raise :class:`WebhookRejected` if unverifiable."""
        raise WebhookRejected(f"channel {self.name!r} does not accept webhooks")
