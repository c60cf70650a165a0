"""Web push endpoints a shop's site talks to (public, no API token).

- ``GET /webpush/key``: the VAPID public key (``applicationServerKey``).
- ``POST /webpush/subscribe``: store a browser's PushSubscription for a contact
  (a signed known customer, or an anonymous visitor; see docs/webpush.md).
- ``GET /webpush/c/{token}``: a notification click: record ``clicked``, redirect.
- ``POST /webpush/d/{token}``: the service worker's receipt: record ``delivered``.
- ``GET /webpush/sw.js``, ``GET /webpush/kaskad-push.js``: the scripts a shop uses.
- ``POST /api/v1/webpush/merge`` (integrator): move an anonymous visitor's browsers to a known contact.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

import msgspec
from litestar import Request, Response, get, post, route
from litestar.exceptions import HTTPException, NotFoundException, PermissionDeniedException
from litestar.response import Redirect
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kaskad.api.auth import INTEGRATOR
from kaskad.runtime import Runtime
from kaskad.store.engine import transaction
from kaskad.store.models import Consent, Contact
from kaskad.webpush import engagement, links
from kaskad.webpush.models import PushSubscription

CHANNEL = "webpush"


class SubscriptionKeys(msgspec.Struct):
    p256dh: str
    auth: str


class BrowserSubscription(msgspec.Struct):
    endpoint: str
    keys: SubscriptionKeys
    expirationTime: int | float | None = None


class SubscribeRequest(msgspec.Struct, kw_only=True):
    subscription: BrowserSubscription
    external_id: str | None = None
    signature: str | None = None
    anonymous_token: str | None = None
    user_agent: str | None = None


def _channel(runtime: Runtime):
    channel = runtime.registry.channels.get(CHANNEL)
    if channel is None:
        raise NotFoundException("the webpush channel is not loaded")
    if getattr(channel, "runtime", None) is None:
        channel.bind(runtime)
    return channel


def _cors(request: Request, channel) -> dict[str, str]:
    origin = request.headers.get("origin")
    allowed = channel.config.allowed_origins
    if origin and allowed and origin.rstrip("/") in [o.rstrip("/") for o in allowed]:
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {}


def _contact(session: Session, external_id: str, attributes: dict[str, Any] | None = None) -> Contact:
    contact = session.scalar(select(Contact).where(Contact.external_id == external_id))
    if contact is None:
        try:
            with session.begin_nested():
                contact = Contact(external_id=external_id, attributes=attributes or {}, tags=[])
                session.add(contact)
        except IntegrityError:  # created concurrently
            contact = session.scalar(select(Contact).where(Contact.external_id == external_id))
    return contact


def _grant(session: Session, contact_id: int) -> None:
    consent = session.scalar(
        select(Consent).where(Consent.contact_id == contact_id, Consent.channel == CHANNEL, Consent.topic == "*")
    )
    if consent is None:
        session.add(Consent(contact_id=contact_id, channel=CHANNEL, topic="*", status="granted", source="webpush-subscribe"))
    elif consent.status != "granted":
        consent.status, consent.source = "granted", "webpush-subscribe"


def subscribe_contact(session: Session, signing_key: bytes, subscribe_key: str | None, req: SubscribeRequest) -> dict[str, Any]:
    """Attach a browser subscription to a contact; the rules are in docs/webpush.md."""
    anonymous_id = None
    if req.anonymous_token:
        try:
            anonymous_id = links.unsign(signing_key, "webpush-anon", req.anonymous_token)["c"]
        except (links.BadToken, KeyError):
            anonymous_id = None  # a stale or forged token: treat the visitor as new
    answer: dict[str, Any] = {}
    if req.external_id:
        if not subscribe_key:
            raise PermissionDeniedException("this server takes no identified subscriptions (no webpush subscribe_key set)")
        expected = hmac.new(subscribe_key.encode(), req.external_id.encode(), hashlib.sha256).hexdigest()
        if not req.signature or not hmac.compare_digest(expected, req.signature.lower()):
            raise PermissionDeniedException("signature does not match external_id (HMAC-SHA256 with the subscribe key, hex)")
        contact = _contact(session, req.external_id)
        if anonymous_id and anonymous_id != req.external_id:
            merge_anonymous(session, anonymous_id, contact)
    elif anonymous_id and (contact := session.scalar(select(Contact).where(Contact.external_id == anonymous_id))) is not None:
        merged_into = contact.attributes.get("merged_into")
        if merged_into:  # the visitor logged in on another page since; follow the merge
            contact = _contact(session, merged_into)
        else:
            answer["anonymous_token"] = req.anonymous_token
    else:
        contact = _contact(session, f"anon-{secrets.token_urlsafe(16)}", {"anonymous": True, "source": "webpush"})
        answer["anonymous_token"] = links.sign(signing_key, "webpush-anon", {"c": contact.external_id})
    sub = session.scalar(select(PushSubscription).where(PushSubscription.endpoint == req.subscription.endpoint))
    if sub is None:
        session.add(
            PushSubscription(
                contact_id=contact.id,
                endpoint=req.subscription.endpoint,
                p256dh=req.subscription.keys.p256dh,
                auth=req.subscription.keys.auth,
                user_agent=req.user_agent,
            )
        )
    else:  # the same browser re-subscribed (new keys) or changed hands (logged in as someone else)
        sub.contact_id, sub.p256dh, sub.auth = contact.id, req.subscription.keys.p256dh, req.subscription.keys.auth
    _grant(session, contact.id)
    answer["contact"] = contact.external_id
    return answer


def merge_anonymous(session: Session, anonymous_id: str, into: Contact) -> bool:
    """Move an anonymous visitor's push subscriptions to a known contact and leave a pointer behind."""
    anon = session.scalar(select(Contact).where(Contact.external_id == anonymous_id))
    if anon is None or anon.id == into.id or not anon.attributes.get("anonymous"):
        return False
    session.execute(update(PushSubscription).where(PushSubscription.contact_id == anon.id).values(contact_id=into.id))
    anon.attributes = {**anon.attributes, "merged_into": into.external_id}
    _grant(session, into.id)
    return True


@get("/webpush/key", sync_to_thread=False, include_in_schema=False)
def vapid_key(runtime: Runtime, request: Request) -> Response:
    channel = _channel(runtime)
    return Response({"applicationServerKey": channel.application_server_key}, headers=_cors(request, channel))


@post("/webpush/subscribe", status_code=200, include_in_schema=False)
async def subscribe(runtime: Runtime, request: Request) -> Response:
    channel = _channel(runtime)
    origin = request.headers.get("origin")
    if channel.config.allowed_origins and (origin or "").rstrip("/") not in [o.rstrip("/") for o in channel.config.allowed_origins]:
        raise PermissionDeniedException(f"origin {origin!r} may not subscribe; add it to the webpush allowed_origins")
    try:
        req = msgspec.json.decode(await request.body(), type=SubscribeRequest)
    except msgspec.DecodeError as exc:
        raise HTTPException(status_code=400, detail=f"expected {{'subscription': PushSubscription JSON, ...}}: {exc}") from exc
    with transaction(runtime.sessions) as session:
        answer = subscribe_contact(session, runtime.settings.signing_key, channel.config.subscribe_key, req)
    return Response(answer, headers=_cors(request, channel))


@get("/webpush/c/{token:str}", sync_to_thread=True, include_in_schema=False)
def click(runtime: Runtime, token: str) -> Redirect:
    try:
        data = links.unsign(runtime.settings.signing_key, "webpush-click", token)
    except links.BadToken as exc:
        raise NotFoundException("unknown link") from exc
    with transaction(runtime.sessions) as session:
        engagement.record(session, data["k"], "clicked", detail={"url": data["u"]})
    return Redirect(path=data["u"], status_code=302)


@route("/webpush/d/{token:str}", http_method=["GET", "POST"], status_code=204, sync_to_thread=True, include_in_schema=False)
def delivered(runtime: Runtime, token: str) -> None:
    try:
        data = links.unsign(runtime.settings.signing_key, "webpush-delivered", token)
    except links.BadToken as exc:
        raise NotFoundException("unknown link") from exc
    with transaction(runtime.sessions) as session:
        engagement.record(session, data["k"], "delivered")


def _script(runtime: Runtime, name: str) -> Response:
    path = _channel(runtime).static_dir / name
    return Response(path.read_bytes(), media_type="text/javascript; charset=utf-8", headers={"Cache-Control": "public, max-age=3600"})


@get("/webpush/sw.js", sync_to_thread=False, include_in_schema=False)
def service_worker(runtime: Runtime) -> Response:
    return _script(runtime, "sw.js")


@get("/webpush/kaskad-push.js", sync_to_thread=False, include_in_schema=False)
def page_script(runtime: Runtime) -> Response:
    return _script(runtime, "kaskad-push.js")


class MergeRequest(msgspec.Struct):
    anonymous_id: str
    external_id: str


@post("/webpush/merge", guards=[INTEGRATOR], status_code=200, sync_to_thread=True, tags=["webpush"])
def merge(runtime: Runtime, data: MergeRequest) -> dict[str, Any]:
    """Move an anonymous visitor's browsers to a known contact (e.g. after the visitor signed up)."""
    with transaction(runtime.sessions) as session:
        into = session.scalar(select(Contact).where(Contact.external_id == data.external_id))
        if into is None:
            raise NotFoundException(f"no contact with external_id {data.external_id!r}")
        return {"merged": merge_anonymous(session, data.anonymous_id, into)}


routes = [merge]
public_routes = [vapid_key, subscribe, click, delivered, service_worker, page_script]
