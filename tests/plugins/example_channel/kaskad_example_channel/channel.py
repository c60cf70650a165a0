"""Hand each batch of messages to your own HTTPS endpoint, signed; take delivery reports back.

The endpoint receives ``POST {url}`` with ``{"messages": [{"key", "to", "text"}]}``
and an ``X-Signature: sha256=<hex HMAC of the body>`` header, and answers
``{"results": [{"key", "id"} or {"key", "error", "permanent"}]}``. It reports
deliveries to ``POST /hooks/webhook`` as ``{"id", "status"}`` lists, signed the same way.
"""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal
from typing import Annotated

import httpx
import msgspec
from msgspec import Meta

from kaskad.channels import Channel, DeliveryEvent, OutboundMessage, SendResult, WebhookRejected


class WebhookMessage(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    text: Annotated[str, Meta(min_length=1, title="Text", description="A template: {{ contact.first_name }}")]


class WebhookConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    url: Annotated[str, Meta(title="Endpoint URL")] | None = None
    secret: Annotated[str, Meta(description="Signs requests and verifies reports")] | None = None
    price: Annotated[str, Meta(pattern=r"^\d+(\.\d+)?$")] = "0"
    timeout: Annotated[float, Meta(gt=0)] = 10.0


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookChannel(Channel):
    name = "webhook"
    title = "Your own endpoint"
    address_field = "phone"
    config_type = WebhookConfig
    message_type = WebhookMessage
    rate_limit = 50.0  # messages per second, shared by all workers

    def __init__(self) -> None:
        self.config = WebhookConfig()

    def configure(self, config: WebhookConfig) -> None:
        self.config = config

    def cost(self, message: OutboundMessage) -> Decimal:
        return Decimal(self.config.price)

    async def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        cfg = self.config
        if not cfg.url or not cfg.secret:
            error = "set KASKAD_WEBHOOK_URL and KASKAD_WEBHOOK_SECRET"
            return [SendResult(key=m.key, status="failed", error=error) for m in messages]
        body = msgspec.json.encode(
            {"messages": [{"key": m.key, "to": m.address, "text": m.content["text"]} for m in messages]}
        )
        headers = {"Content-Type": "application/json", "X-Signature": signature(cfg.secret, body)}
        try:
            async with httpx.AsyncClient(timeout=cfg.timeout) as http:
                r = await http.post(cfg.url, content=body, headers=headers)
        except httpx.HTTPError as exc:  # unreachable or too slow: every message may be tried again
            return [SendResult(key=m.key, status="retry", error=f"endpoint: {exc!r}") for m in messages]
        if r.status_code == 429 or r.status_code >= 500:
            return [SendResult(key=m.key, status="retry", error=f"endpoint answered {r.status_code}") for m in messages]
        if r.status_code != 200:
            return [SendResult(key=m.key, status="failed", error=f"endpoint answered {r.status_code}") for m in messages]
        answers = {a["key"]: a for a in r.json().get("results", [])}
        results = []
        for m in messages:
            a = answers.get(m.key)
            if a is None:
                results.append(SendResult(key=m.key, status="retry", error="no answer for this message"))
            elif a.get("id"):
                results.append(SendResult(key=m.key, status="sent", provider_message_id=a["id"]))
            else:
                status = "failed" if a.get("permanent") else "retry"
                results.append(SendResult(key=m.key, status=status, error=a.get("error", "refused")))
        return results

    async def parse_webhook(self, headers: dict[str, str], body: bytes, url: str) -> list[DeliveryEvent]:
        if not self.config.secret:
            raise WebhookRejected("KASKAD_WEBHOOK_SECRET is not set")
        if not hmac.compare_digest(headers.get("x-signature", ""), signature(self.config.secret, body)):
            raise WebhookRejected("X-Signature is missing or does not match")
        try:
            reports = msgspec.json.decode(body, type=list[dict[str, str]])
        except msgspec.DecodeError as exc:
            raise WebhookRejected(f"expected a JSON list of reports: {exc}") from None
        known = {"delivered", "opened", "clicked", "failed", "replied"}
        return [DeliveryEvent(status=r["status"], provider_message_id=r.get("id"))
                for r in reports if r.get("status") in known and r.get("id")]
