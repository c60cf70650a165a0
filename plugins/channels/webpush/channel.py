"""The web push channel: encrypt, sign, post; drop subscriptions the push service says are gone."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import httpx
import msgspec
from msgspec import Meta
from pywebpush import WebPusher
from sqlalchemy import delete, select

from kaskad import clock
from kaskad.channels import Channel, OutboundMessage, SendResult
from kaskad.store.engine import transaction
from kaskad.webpush import links
from kaskad.webpush.models import PushSubscription

from kaskad_channels.webpush import vapid

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
Urgency = Literal["very-low", "low", "normal", "high"]


class WebPushConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    vapid_private_key: Annotated[
        str, Meta(description="VAPID private key: PEM, or the urlsafe-base64 scalar `kaskad webpush keys` prints. "
                         "Unset: the key `kaskad webpush keys` stored under KASKAD_HOME.")
    ] | None = None
    subject: Annotated[str, Meta(description="VAPID `sub`: a mailto: or https: contact for push services")] = "mailto:push@example.com"
    ttl: Annotated[int, Meta(ge=0, description="Seconds a push service keeps an undelivered message")] = 86400
    urgency: Annotated[Urgency, Meta(description="Default Urgency header (RFC 8030 5.3)")] = "normal"
    allowed_origins: Annotated[
        list[str], Meta(description="Sites allowed to call /webpush/subscribe (Origin header), e.g. https://shop.example")
    ] = []
    subscribe_key: Annotated[
        str, Meta(description="Secret a shop's backend uses to sign a logged-in customer's external id "
                         "(hex HMAC-SHA256) so the browser can be tied to that customer")
    ] | None = None
    timeout: Annotated[float, Meta(gt=0, description="Seconds to wait for a push service")] = 10.0


class WebPushMessage(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    title: Annotated[str, Meta(title="Title", min_length=1)]
    body: Annotated[str, Meta(title="Text")] = ""
    url: Annotated[str, Meta(title="Link", description="Page opened on click (tracked)")] | None = None
    icon: Annotated[str, Meta(title="Icon URL")] | None = None
    image: Annotated[str, Meta(title="Image URL")] | None = None
    tag: Annotated[str, Meta(title="Tag", description="A newer notification with the same tag replaces the older")] | None = None
    ttl: Annotated[int, Meta(ge=0, title="TTL seconds")] | None = None
    urgency: Annotated[Urgency, Meta(title="Urgency")] | None = None


class WebPushChannel(Channel):
    name = "webpush"
    title = "Web push (browser notifications)"
    # A contact may have several browsers; the channel finds their subscriptions by contact id.
    address_field = "external_id"
    config_type = WebPushConfig
    message_type = WebPushMessage
    static_dir = STATIC_DIR

    def __init__(self) -> None:
        self.config = WebPushConfig()
        self.runtime: Any = None
        self._key = None

    def configure(self, config: WebPushConfig) -> None:
        self.config = config
        self._key = None

    def bind(self, runtime: Any) -> None:
        """Give the channel the database and settings (its subscriptions live in core's tables)."""
        self.runtime = runtime

    # -- keys --------------------------------------------------------------------------------

    @property
    def private_key(self):
        if self._key is None:
            if self.config.vapid_private_key:
                self._key = vapid.load(self.config.vapid_private_key)
            elif self.runtime is not None and (stored := vapid.stored(self.runtime.settings.home)) is not None:
                self._key = stored
            else:
                raise RuntimeError("no VAPID key: run `kaskad webpush keys` or set KASKAD_WEBPUSH_VAPID_PRIVATE_KEY")
        return self._key

    @property
    def application_server_key(self) -> str:
        return vapid.application_server_key(self.private_key)

    # -- sending -----------------------------------------------------------------------------

    def _payload(self, message: OutboundMessage) -> bytes:
        content = msgspec.convert(message.content, WebPushMessage)
        settings = self.runtime.settings
        base = settings.public_url
        data: dict[str, Any] = {"title": content.title, "body": content.body}
        for field in ("icon", "image", "tag"):
            if getattr(content, field):
                data[field] = getattr(content, field)
        if content.url:
            data["url"] = f"{base}/webpush/c/{links.sign(settings.signing_key, 'webpush-click', {'k': message.key, 'u': content.url})}"
        data["receipt"] = f"{base}/webpush/d/{links.sign(settings.signing_key, 'webpush-delivered', {'k': message.key})}"
        return json.dumps(data, separators=(",", ":")).encode()

    def _vapid_header(self, endpoint: str) -> str:
        parts = urlsplit(endpoint)
        claims = {
            "aud": f"{parts.scheme}://{parts.netloc}",
            "exp": int((clock.now() + timedelta(hours=12)).timestamp()),
            "sub": self.config.subject,
        }
        return vapid.signer(self.private_key).sign(claims)["Authorization"]

    async def _post(self, client: httpx.AsyncClient, sub: PushSubscription, payload: bytes, ttl: int, urgency: str) -> httpx.Response:
        info = {"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}}
        body = WebPusher(info).encode(payload, "aes128gcm")["body"]
        headers = {
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(ttl),
            "Urgency": urgency,
            "Authorization": self._vapid_header(sub.endpoint),
        }
        return await client.post(sub.endpoint, content=body, headers=headers)

    async def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        if self.runtime is None:
            raise RuntimeError("the webpush channel is not bound to a runtime (call channel.bind(runtime))")
        contact_ids = {m.recipient.contact_id for m in messages}
        with self.runtime.sessions() as session:
            subs = session.scalars(select(PushSubscription).where(PushSubscription.contact_id.in_(contact_ids))).all()
            session.expunge_all()
        by_contact: dict[int, list[PushSubscription]] = {}
        for sub in subs:
            by_contact.setdefault(sub.contact_id, []).append(sub)
        gone: list[int] = []
        delivered: list[int] = []
        results = []
        async with httpx.AsyncClient(timeout=self.config.timeout) as client:
            for message in messages:
                results.append(await self._send_one(client, message, by_contact.get(message.recipient.contact_id, []), gone, delivered))
        if gone or delivered:
            with transaction(self.runtime.sessions) as session:
                if gone:
                    session.execute(delete(PushSubscription).where(PushSubscription.id.in_(gone)))
                if delivered:
                    for sub in session.scalars(select(PushSubscription).where(PushSubscription.id.in_(delivered))):
                        sub.last_sent_at = clock.now()
        return results

    async def _send_one(self, client, message: OutboundMessage, subs: list[PushSubscription], gone: list[int], delivered: list[int]) -> SendResult:
        if not subs:
            return SendResult(key=message.key, status="failed", error="the contact has no push subscription")
        try:
            payload = self._payload(message)
        except msgspec.ValidationError as exc:
            return SendResult(key=message.key, status="failed", error=f"message: {exc}")
        ttl = message.content.get("ttl") if message.content.get("ttl") is not None else self.config.ttl
        urgency = message.content.get("urgency") or self.config.urgency
        accepted, retry, errors = [], None, []
        for sub in subs:
            try:
                resp = await self._post(client, sub, payload, ttl, urgency)
            except httpx.HTTPError as exc:
                retry = 30.0
                errors.append(f"{urlsplit(sub.endpoint).netloc}: {exc!r}")
                continue
            if resp.status_code in (200, 201, 202):
                accepted.append(resp.headers.get("location") or sub.endpoint)
                delivered.append(sub.id)
            elif resp.status_code in (404, 410):
                gone.append(sub.id)
            elif resp.status_code == 429 or resp.status_code >= 500:
                retry = _retry_after(resp)
                errors.append(f"{urlsplit(sub.endpoint).netloc}: HTTP {resp.status_code}")
            else:
                errors.append(f"{urlsplit(sub.endpoint).netloc}: HTTP {resp.status_code} {resp.text[:200]}")
        if accepted:
            return SendResult(key=message.key, status="sent", provider_message_id=accepted[0][:200])
        if retry is not None:
            return SendResult(key=message.key, status="retry", error="; ".join(errors), retry_after=retry)
        if not errors:
            return SendResult(key=message.key, status="failed", error="every push subscription of the contact has expired (404/410); removed")
        return SendResult(key=message.key, status="failed", error="; ".join(errors))


def _retry_after(resp: httpx.Response) -> float:
    try:
        return max(1.0, float(resp.headers.get("retry-after", "60")))
    except ValueError:
        return 60.0
