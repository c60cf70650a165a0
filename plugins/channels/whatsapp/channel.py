"""WhatsApp Business Cloud API: approved template messages with parameters, or free-form text.

Settings (environment): ``KASKAD_WHATSAPP_PHONE_NUMBER_ID``,
``KASKAD_WHATSAPP_ACCESS_TOKEN``, ``KASKAD_WHATSAPP_BASE_URL`` (default
``https://graph.facebook.com``), ``KASKAD_WHATSAPP_API_VERSION``,
``KASKAD_WHATSAPP_PRICE_PER_MESSAGE``.

Free-form text is only delivered inside the 24-hour customer-service window;
outside it the API answers 131047 and the message fails with that reason.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timezone
from decimal import Decimal
from typing import Annotated

import httpx
import msgspec
from msgspec import Meta

from kaskad.channels import Channel, DeliveryEvent, OutboundMessage, SendResult, WebhookRejected
from kaskad.ingest.contacts import normalise_phone

#: Cloud API error codes worth retrying: throughput and rate limits, temporary errors.
RETRYABLE = {130429, 131048, 131056, 80007, 4, 1, 2, 131000}


class WhatsAppMessage(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    template: Annotated[str, Meta(title="Template", description="An approved template's name")] | None = None
    language: Annotated[str, Meta(title="Language", description="Template language code, e.g. en, ru")] = "en"
    parameters: Annotated[list[str], Meta(title="Body parameters", description="Templates, in {{1}}, {{2}}… order")] = []
    text: Annotated[str, Meta(title="Free-form text", description="Only inside the 24 h customer-service window")] | None = None

    def __post_init__(self) -> None:
        if (self.template is None) == (self.text is None):
            raise ValueError("give either an approved 'template' or free-form 'text', not both or neither")


class WhatsAppConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    phone_number_id: str | None = None
    access_token: str | None = None
    base_url: str = "https://graph.facebook.com"
    api_version: Annotated[str, Meta(pattern=r"^v\d+\.\d+$")] = "v21.0"
    price_per_message: Annotated[str, Meta(pattern=r"^\d+(\.\d+)?$")] = "0"
    timeout: Annotated[float, Meta(gt=0)] = 15.0
    app_secret: Annotated[str, Meta(description="Verifies X-Hub-Signature-256 on webhooks")] | None = None
    verify_token: Annotated[str, Meta(description="Answers the webhook subscription handshake")] | None = None


#: Cloud API status → delivery status ("sent" adds nothing: the outbox knows it was sent).
WA_STATUS = {"delivered": "delivered", "read": "opened", "failed": "failed"}


class WhatsAppChannel(Channel):
    name = "whatsapp"
    title = "WhatsApp"
    address_field = "phone"
    config_type = WhatsAppConfig
    message_type = WhatsAppMessage
    rate_limit = 80.0  # the Cloud API's default business throughput per phone number

    def __init__(self) -> None:
        self.config = WhatsAppConfig()

    def configure(self, config: WhatsAppConfig) -> None:
        self.config = config

    def cost(self, message: OutboundMessage) -> Decimal:
        return Decimal(self.config.price_per_message)

    def verify_subscription(self, params: dict[str, str]) -> str | None:
        c = self.config
        if c.verify_token and params.get("hub.mode") == "subscribe" and hmac.compare_digest(
            params.get("hub.verify_token", ""), c.verify_token
        ):
            return params.get("hub.challenge", "")
        return None

    async def parse_webhook(self, headers: dict[str, str], body: bytes, url: str) -> list[DeliveryEvent]:
        """Status webhooks, verified by X-Hub-Signature-256 (HMAC-SHA256 of the raw body with the app secret)."""
        if not self.config.app_secret:
            raise WebhookRejected("KASKAD_WHATSAPP_APP_SECRET is not set: webhooks cannot be verified")
        expected = "sha256=" + hmac.new(self.config.app_secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(headers.get("x-hub-signature-256", ""), expected):
            raise WebhookRejected("X-Hub-Signature-256 is missing or does not match")
        try:
            data = msgspec.json.decode(body)
            changes = [ch["value"] for entry in data["entry"] for ch in entry["changes"]]
        except (msgspec.DecodeError, KeyError, TypeError) as exc:
            raise WebhookRejected(f"not a WhatsApp webhook body: {exc!r}") from None
        out = []
        for value in changes:
            for st in value.get("statuses", []) if isinstance(value, dict) else []:
                status = WA_STATUS.get(st.get("status"))
                if status and st.get("id"):
                    at = datetime.fromtimestamp(int(st["timestamp"]), timezone.utc) if str(st.get("timestamp", "")).isdigit() else None
                    out.append(DeliveryEvent(status=status, provider_message_id=st["id"], at=at,
                                             detail={"errors": st.get("errors", [])} if st.get("errors") else {}))
            for m in value.get("messages", []) if isinstance(value, dict) else []:
                replied_to = (m.get("context") or {}).get("id")
                if replied_to:
                    out.append(DeliveryEvent(status="replied", provider_message_id=replied_to, detail={"type": m.get("type")}))
        return out

    @staticmethod
    def payload(to: str, spec: WhatsAppMessage) -> dict:
        body: dict = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to.lstrip("+")}
        if spec.text is not None:
            body.update(type="text", text={"preview_url": False, "body": spec.text})
            return body
        template: dict = {"name": spec.template, "language": {"code": spec.language}}
        if spec.parameters:
            template["components"] = [
                {"type": "body", "parameters": [{"type": "text", "text": p} for p in spec.parameters]}
            ]
        body.update(type="template", template=template)
        return body

    async def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        c = self.config
        if not c.phone_number_id or not c.access_token:
            error = "the whatsapp channel is not configured: set KASKAD_WHATSAPP_PHONE_NUMBER_ID and KASKAD_WHATSAPP_ACCESS_TOKEN"
            return [SendResult(key=m.key, status="failed", error=error) for m in messages]
        headers = {"Authorization": f"Bearer {c.access_token}"}
        async with httpx.AsyncClient(base_url=c.base_url.rstrip("/"), headers=headers, timeout=c.timeout) as http:
            return [await self._send_one(http, m) for m in messages]

    async def _send_one(self, http: httpx.AsyncClient, m: OutboundMessage) -> SendResult:
        try:
            spec = msgspec.convert(m.content, WhatsAppMessage)
            to = normalise_phone(m.address)
        except (msgspec.ValidationError, ValueError) as exc:
            return SendResult(key=m.key, status="failed", error=str(exc))
        try:
            r = await http.post(f"/{self.config.api_version}/{self.config.phone_number_id}/messages", json=self.payload(to, spec))
        except httpx.TimeoutException:
            return SendResult(key=m.key, status="retry", error="the WhatsApp Cloud API did not answer in time")
        except httpx.HTTPError as exc:
            return SendResult(key=m.key, status="retry", error=f"WhatsApp Cloud API unreachable: {exc}")
        try:
            data = r.json()
        except ValueError:
            data = {}
        if r.status_code == 200 and data.get("messages"):
            return SendResult(key=m.key, status="sent", provider_message_id=data["messages"][0]["id"])
        err = data.get("error") or {}
        code = err.get("code")
        error = f"WhatsApp {code or r.status_code}: {err.get('message') or r.text[:200]}"
        if code in RETRYABLE or r.status_code == 429 or r.status_code >= 500:
            retry_after = _retry_after(r) or (2.0 if code == 130429 else None)
            return SendResult(key=m.key, status="retry", error=error, retry_after=retry_after)
        return SendResult(key=m.key, status="failed", error=error)


def _retry_after(r: httpx.Response) -> float | None:
    try:
        return float(r.headers["Retry-After"])
    except (KeyError, ValueError):
        return None
