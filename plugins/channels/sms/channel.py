"""SMS through Twilio (Messages API) or SMS.ru (HTTP API).

Settings (environment): ``KASKAD_SMS_PROVIDER`` (``twilio`` or ``smsru``),
``KASKAD_SMS_BASE_URL`` (the provider's API root; a local server in tests),
Twilio: ``KASKAD_SMS_ACCOUNT_SID``, ``KASKAD_SMS_AUTH_TOKEN``,
``KASKAD_SMS_FROM_NUMBER``; SMS.ru: ``KASKAD_SMS_API_ID``, ``KASKAD_SMS_SENDER``;
``KASKAD_SMS_PRICE_PER_SEGMENT`` for the cost.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from decimal import Decimal
from typing import Annotated, Literal
from urllib.parse import parse_qsl

import httpx
import msgspec
from msgspec import Meta

from kaskad.channels import Channel, DeliveryEvent, OutboundMessage, SendResult, WebhookRejected
from kaskad.ingest.contacts import normalise_phone
from kaskad_channels.sms.segments import count_segments

DEFAULT_URLS = {"twilio": "https://api.twilio.com", "smsru": "https://sms.ru"}


class SmsMessage(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    text: Annotated[str, Meta(min_length=1, title="Text", description="A template; Cyrillic costs more segments")]


class SmsConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    provider: Literal["twilio", "smsru"] = "twilio"
    base_url: str | None = None
    account_sid: str | None = None
    auth_token: str | None = None
    from_number: str | None = None
    api_id: str | None = None
    sender: str | None = None
    price_per_segment: Annotated[str, Meta(pattern=r"^\d+(\.\d+)?$")] = "0"
    timeout: Annotated[float, Meta(gt=0)] = 15.0


class SmsChannel(Channel):
    name = "sms"
    title = "SMS"
    address_field = "phone"
    config_type = SmsConfig
    message_type = SmsMessage
    rate_limit = 30.0

    def __init__(self) -> None:
        self.config = SmsConfig()

    def configure(self, config: SmsConfig) -> None:
        self.config = config

    def cost(self, message: OutboundMessage) -> Decimal:
        return Decimal(self.config.price_per_segment) * count_segments(message.content.get("text", ""))

    def _missing(self) -> str | None:
        c = self.config
        need = ["account_sid", "auth_token", "from_number"] if c.provider == "twilio" else ["api_id"]
        missing = [f"KASKAD_SMS_{n.upper()}" for n in need if not getattr(c, n)]
        return f"the sms channel ({c.provider}) is not configured: set {', '.join(missing)}" if missing else None

    async def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        problem = self._missing()
        if problem:
            return [SendResult(key=m.key, status="failed", error=problem) for m in messages]
        base = (self.config.base_url or DEFAULT_URLS[self.config.provider]).rstrip("/")
        async with httpx.AsyncClient(base_url=base, timeout=self.config.timeout) as http:
            send = self._twilio if self.config.provider == "twilio" else self._smsru
            return [await self._guarded(send, http, m) for m in messages]

    async def _guarded(self, send, http: httpx.AsyncClient, m: OutboundMessage) -> SendResult:
        try:
            to = normalise_phone(m.address)
        except ValueError as exc:
            return SendResult(key=m.key, status="failed", error=str(exc))
        try:
            return await send(http, m, to)
        except httpx.TimeoutException:
            return SendResult(key=m.key, status="retry", error="the SMS provider did not answer in time")
        except httpx.HTTPError as exc:
            return SendResult(key=m.key, status="retry", error=f"SMS provider unreachable: {exc}")

    async def _twilio(self, http: httpx.AsyncClient, m: OutboundMessage, to: str) -> SendResult:
        c = self.config
        r = await http.post(
            f"/2010-04-01/Accounts/{c.account_sid}/Messages.json",
            data={"To": to, "From": c.from_number, "Body": m.content["text"]},
            auth=(c.account_sid, c.auth_token),
        )
        if r.status_code in (200, 201):
            return SendResult(key=m.key, status="sent", provider_message_id=r.json().get("sid"))
        detail = _json(r)
        code = f" (error {detail['code']})" if detail.get("code") else ""
        error = f"Twilio {r.status_code}{code}: {detail.get('message') or r.text[:200]}"
        if r.status_code == 429 or r.status_code >= 500:
            return SendResult(key=m.key, status="retry", error=error, retry_after=_retry_after(r))
        return SendResult(key=m.key, status="failed", error=error)

    async def _smsru(self, http: httpx.AsyncClient, m: OutboundMessage, to: str) -> SendResult:
        c = self.config
        form = {"api_id": c.api_id, "to": to.lstrip("+"), "msg": m.content["text"], "json": "1"}
        if c.sender:
            form["from"] = c.sender
        r = await http.post("/sms/send", data=form)
        if r.status_code == 429 or r.status_code >= 500:
            return SendResult(key=m.key, status="retry", error=f"SMS.ru {r.status_code}", retry_after=_retry_after(r))
        body = _json(r)
        one = (body.get("sms") or {}).get(to.lstrip("+"), {})
        if body.get("status") == "OK" and one.get("status") == "OK":
            return SendResult(key=m.key, status="sent", provider_message_id=str(one.get("sms_id")))
        code = one.get("status_code") or body.get("status_code")
        text = one.get("status_text") or body.get("status_text") or r.text[:200]
        # SMS.ru: 220 = service temporarily unavailable; anything else is about this message or account.
        status = "retry" if code == 220 else "failed"
        return SendResult(key=m.key, status=status, error=f"SMS.ru {code}: {text}")


    async def parse_webhook(self, headers: dict[str, str], body: bytes, url: str) -> list[DeliveryEvent]:
        """Twilio status callbacks, verified by X-Twilio-Signature (HMAC-SHA1 of URL + sorted params)."""
        if self.config.provider != "twilio":
            raise WebhookRejected("SMS.ru status callbacks carry no signature, so they are not accepted")
        if not self.config.auth_token:
            raise WebhookRejected("KASKAD_SMS_AUTH_TOKEN is not set: Twilio callbacks cannot be verified")
        params = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if headers.get("x-twilio-signature", "") != "" and hmac.compare_digest(
            headers["x-twilio-signature"], twilio_signature(self.config.auth_token, url, params)
        ):
            status = TWILIO_STATUS.get(params.get("MessageStatus", ""))
            sid = params.get("MessageSid")
            if not sid:
                raise WebhookRejected("a Twilio status callback without MessageSid")
            return [DeliveryEvent(status=status, provider_message_id=sid, detail={"twilio_status": params.get("MessageStatus"), "error_code": params.get("ErrorCode")})] if status else []
        raise WebhookRejected("X-Twilio-Signature is missing or does not match")


#: Twilio MessageStatus → delivery status (queued/sending/sent add nothing).
TWILIO_STATUS = {"delivered": "delivered", "undelivered": "failed", "failed": "failed", "read": "opened"}


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """Twilio's request signature: base64(HMAC-SHA1(token, url + key1 + value1 + key2 + value2 …)), keys sorted."""
    data = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def _json(r: httpx.Response) -> dict:
    try:
        data = r.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _retry_after(r: httpx.Response) -> float | None:
    try:
        return float(r.headers["Retry-After"])
    except (KeyError, ValueError):
        return None
