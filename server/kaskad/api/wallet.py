"""Wallet cards: issue a contact's card (API), and the links a customer opens.

- ``POST /api/v1/wallet/cards`` ``{"external_id"}``: the contact's card and its links.
- ``GET /wallet/apple/{token}``: the signed .pkpass (Safari offers "Add to Apple Wallet").
- ``GET /wallet/google/{token}``: creates the Google Wallet object, redirects to the save link.
- ``GET /wallet/logo.png``: the program logo Google Wallet shows when no ``logo_url`` is set.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Response, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.response import Redirect
from sqlalchemy import select

from kaskad.api.auth import ANY_ROLE
from kaskad.api.passkit import PKPASS, wallet_channel
from kaskad.runtime import Runtime
from kaskad.store.engine import transaction
from kaskad.store.models import Contact
from kaskad.wallet.models import WalletPass
from kaskad.webpush import links

log = logging.getLogger("kaskad.wallet")


class CardRequest(msgspec.Struct):
    external_id: str


def _card_from(runtime: Runtime, token: str) -> int:
    try:
        return int(links.unsign(runtime.settings.signing_key, "wallet-card", token)["p"])
    except (links.BadToken, KeyError, ValueError) as exc:
        raise NotFoundException("unknown link") from exc


@post("/wallet/cards", guards=[ANY_ROLE], status_code=200, sync_to_thread=True, tags=["wallet"])
def issue_card(runtime: Runtime, data: CardRequest) -> dict[str, Any]:
    """The contact's loyalty card (created on first call) with its Apple and Google links."""
    channel = wallet_channel(runtime)
    with transaction(runtime.sessions) as session:
        contact = session.scalar(select(Contact).where(Contact.external_id == data.external_id))
        if contact is None:
            raise NotFoundException(f"no contact with external_id {data.external_id!r}")
        card = channel.issue(session, contact)
        token = links.sign(runtime.settings.signing_key, "wallet-card", {"p": card.id})
        base = runtime.settings.public_url
        return {
            "serial_number": card.serial_number,
            "card_number": card.card_number,
            "points": format(card.points.normalize(), "f"),
            "tier": card.tier,
            "apple_url": f"{base}/wallet/apple/{token}" if channel.config.apple else None,
            "google_url": f"{base}/wallet/google/{token}" if channel.config.google else None,
        }


@get("/wallet/apple/{token:str}", sync_to_thread=True, include_in_schema=False)
def apple_pass(runtime: Runtime, token: str) -> Response:
    channel = wallet_channel(runtime)
    with runtime.sessions() as session:
        card = session.get(WalletPass, _card_from(runtime, token))
        if card is None:
            raise NotFoundException("unknown card")
        body = channel.pkpass(session, card)
    return Response(body, media_type=PKPASS, headers={"Content-Disposition": 'attachment; filename="card.pkpass"'})


@get("/wallet/google/{token:str}", include_in_schema=False)
async def google_save(runtime: Runtime, token: str) -> Redirect:
    card_id = _card_from(runtime, token)
    try:
        link = await wallet_channel(runtime).link_google(card_id)
    except Exception as exc:  # Google's answer or an outage: the customer retries, the log keeps why
        log.warning("Google Wallet save link for card %s failed: %s", card_id, exc)
        raise HTTPException(status_code=502, detail=f"Google Wallet is not reachable right now: {exc}") from exc
    return Redirect(path=link, status_code=302)


@get("/wallet/logo.png", sync_to_thread=False, include_in_schema=False)
def logo(runtime: Runtime) -> Response:
    from pathlib import Path

    channel = wallet_channel(runtime)
    images = channel.config.images_dir
    if images and (Path(images) / "logo.png").exists():
        return Response((Path(images) / "logo.png").read_bytes(), media_type="image/png")
    return Response(channel.default_logo(), media_type="image/png")


routes = [issue_card]
public_routes = [apple_pass, google_save, logo]
