"""Signed links inside messages (public, no API token; see :mod:`kaskad.delivery.links`).

- ``GET /u/{token}``: a small page asking to confirm the unsubscribe (a GET
  changes nothing: mail scanners follow links).
- ``POST /u/{token}``: unsubscribe — RFC 8058 one-click from the mailbox
  (body ``List-Unsubscribe=One-Click``) or the page's button. Idempotent.
- ``GET /t/o/{token}.gif``: the open pixel; records ``opened``.
- ``GET /t/c/{token}?u=<url>``: a click; records ``clicked``, redirects to the signed URL.

A malformed token is answered 400, a forged one (or a click URL that is not
the signed one) 403, and nothing is recorded.
"""

from __future__ import annotations

import base64
import html
from urllib.parse import urlsplit

from litestar import Response, get, post
from litestar.exceptions import HTTPException, PermissionDeniedException
from litestar.response import Redirect

from kaskad.delivery import engagement, links
from kaskad.runtime import Runtime
from kaskad.signing import BadToken, ForgedToken
from kaskad.store.engine import transaction

#: A transparent 1×1 GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"}


def _refuse(exc: BadToken) -> HTTPException:
    if isinstance(exc, ForgedToken):
        return PermissionDeniedException("this link is not signed by this server")
    return HTTPException(status_code=400, detail=f"this link is damaged: {exc}")


def _page(title: str, body: str) -> Response:
    doc = (
        "<!doctype html><html><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title></head>"
        '<body style="font-family:sans-serif;max-width:32em;margin:3em auto;padding:0 1em">'
        f"<h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return Response(doc, media_type="text/html; charset=utf-8", headers=NO_STORE)


def _what(ref: links.UnsubscribeRef) -> str:
    what = f"{ref.channel} messages" if ref.topic == "*" else f"{ref.channel} messages about “{ref.topic}”"
    return html.escape(what)


@get("/u/{token:str}", sync_to_thread=False, include_in_schema=False)
def unsubscribe_page(runtime: Runtime, token: str) -> Response:
    try:
        ref = links.read_unsubscribe_token(runtime.settings.signing_key, token)
    except BadToken as exc:
        raise _refuse(exc) from None
    form = (
        f"<p>Stop receiving {_what(ref)}?</p>"
        '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>'
    )
    return _page("Unsubscribe", form)


@post("/u/{token:str}", status_code=200, sync_to_thread=True, include_in_schema=False)
def unsubscribe(runtime: Runtime, token: str) -> Response:
    try:
        ref = links.read_unsubscribe_token(runtime.settings.signing_key, token)
    except BadToken as exc:
        raise _refuse(exc) from None
    with transaction(runtime.sessions) as session:
        engagement.unsubscribe(session, ref.key, ref.contact_id, ref.channel, ref.topic)
    return _page("Unsubscribed", f"<p>You will not receive {_what(ref)} any more.</p>")


@get("/t/o/{token:str}", sync_to_thread=True, include_in_schema=False)
def open_pixel(runtime: Runtime, token: str) -> Response:
    try:
        key = links.read_open_token(runtime.settings.signing_key, token.removesuffix(".gif"))
    except BadToken as exc:
        raise _refuse(exc) from None
    with transaction(runtime.sessions) as session:
        engagement.record(session, key, "opened")
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


@get("/t/c/{token:str}", sync_to_thread=True, include_in_schema=False)
def click(runtime: Runtime, token: str, u: str) -> Redirect:
    try:
        key = links.read_click_token(runtime.settings.signing_key, token, u)
    except BadToken as exc:
        raise _refuse(exc) from None
    if urlsplit(u).scheme not in ("http", "https"):  # only such URLs are ever signed; belt and braces
        raise HTTPException(status_code=400, detail="only http(s) links are redirected")
    with transaction(runtime.sessions) as session:
        engagement.record(session, key, "clicked", detail={"url": u})
    return Redirect(path=u, status_code=302, headers=NO_STORE)


public_routes = [unsubscribe_page, unsubscribe, open_pixel, click]
