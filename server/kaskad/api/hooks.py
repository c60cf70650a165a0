"""``/hooks/{channel}``: providers' delivery webhooks, verified by the channel before anything is stored."""

from __future__ import annotations

from litestar import Request, get, post
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.response import Response

from kaskad.channels import WebhookRejected
from kaskad.delivery.webhooks import record_delivery_events
from kaskad.runtime import Runtime
from kaskad.store.engine import transaction


def _channel(runtime: Runtime, name: str):
    ch = runtime.registry.channels.get(name)
    if ch is None:
        raise NotFoundException(f"no channel {name!r}")
    return ch


@get("/hooks/{channel:str}", sync_to_thread=False, media_type="text/plain")
def subscribe(runtime: Runtime, request: Request, channel: str) -> Response:
    """The provider's subscription handshake (WhatsApp: hub.mode / hub.verify_token / hub.challenge)."""
    answer = _channel(runtime, channel).verify_subscription(dict(request.query_params))
    if answer is None:
        raise PermissionDeniedException("the verify token does not match")
    return Response(answer, media_type="text/plain")


@post("/hooks/{channel:str}", status_code=200)
async def webhook(runtime: Runtime, request: Request, channel: str) -> dict:
    """Verify the provider's signature, then record delivered / opened / failed… for the matching messages."""
    ch = _channel(runtime, channel)
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    # Providers sign the public address they called, which a proxy may hide from us.
    url = runtime.settings.public_url + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    try:
        events = await ch.parse_webhook(headers, body, url)
    except WebhookRejected as exc:
        raise PermissionDeniedException(f"webhook rejected: {exc}") from None
    from anyio import to_thread

    def store() -> int:
        with transaction(runtime.sessions) as session:
            return record_delivery_events(session, channel, events)

    return {"received": len(events), "recorded": await to_thread.run_sync(store)}


public_routes = [subscribe, webhook]
