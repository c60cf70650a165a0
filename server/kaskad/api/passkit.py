"""The PassKit web service Apple devices call (``webServiceURL`` = ``<public_url>/passkit``).

Apple's protocol, version 1: register/unregister a device for a pass, list the
serial numbers updated since a tag, return the latest pass, accept logs.
Requests about one pass carry ``Authorization: ApplePass <authenticationToken>``.
"""

from __future__ import annotations

import hmac
import logging
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from litestar import Request, Response, delete, get, post
from litestar.exceptions import NotAuthorizedException, NotFoundException
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from kaskad.runtime import Runtime
from kaskad.store.engine import transaction
from kaskad.wallet.models import WalletDevice, WalletPass, WalletRegistration

log = logging.getLogger("kaskad.passkit")
PKPASS = "application/vnd.apple.pkpass"


def wallet_channel(runtime: Runtime):
    channel = runtime.registry.channels.get("wallet")
    if channel is None:
        raise NotFoundException("the wallet channel is not loaded")
    if getattr(channel, "runtime", None) is None:
        channel.bind(runtime)
    return channel


def _card(session: Session, runtime: Runtime, pass_type: str, serial: str) -> WalletPass:
    if pass_type != wallet_channel(runtime).config.pass_type_id:
        raise NotFoundException("unknown pass type")
    card = session.scalar(select(WalletPass).where(WalletPass.serial_number == serial))
    if card is None:
        raise NotFoundException("unknown serial number")
    return card


def _authorize(request: Request, card: WalletPass) -> None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme != "ApplePass" or not hmac.compare_digest(token.strip().encode(), card.auth_token.encode()):
        raise NotAuthorizedException("send Authorization: ApplePass <authenticationToken>")


def _from_tag(tag: str | None) -> datetime | None:
    if not tag:
        return None
    try:
        return datetime.fromtimestamp(int(tag) / 1_000_000, timezone.utc)
    except ValueError:
        return None  # an unknown tag: answer with everything


@post("/passkit/v1/devices/{device:str}/registrations/{pass_type:str}/{serial:str}", include_in_schema=False)
async def register(runtime: Runtime, request: Request, device: str, pass_type: str, serial: str) -> Response:
    try:
        data = await request.json()
    except ValueError:
        data = None
    push_token = str(data.get("pushToken") or "") if isinstance(data, dict) else ""
    if not push_token:
        return Response({"detail": "pushToken is required"}, status_code=400)
    with transaction(runtime.sessions) as session:
        card = _card(session, runtime, pass_type, serial)
        _authorize(request, card)
        dev = session.scalar(select(WalletDevice).where(WalletDevice.device_library_id == device))
        if dev is None:
            dev = WalletDevice(device_library_id=device, push_token=push_token)
            session.add(dev)
            session.flush()
        else:
            dev.push_token = push_token
        exists = session.scalar(
            select(WalletRegistration.id).where(WalletRegistration.device_id == dev.id, WalletRegistration.pass_id == card.id)
        )
        if exists is None:
            session.add(WalletRegistration(device_id=dev.id, pass_id=card.id))
    return Response(b"", status_code=200 if exists else 201)


@delete("/passkit/v1/devices/{device:str}/registrations/{pass_type:str}/{serial:str}", status_code=200, include_in_schema=False)
async def unregister(runtime: Runtime, request: Request, device: str, pass_type: str, serial: str) -> None:
    with transaction(runtime.sessions) as session:
        card = _card(session, runtime, pass_type, serial)
        _authorize(request, card)
        dev = session.scalar(select(WalletDevice).where(WalletDevice.device_library_id == device))
        if dev is None:
            return
        reg = session.scalar(
            select(WalletRegistration).where(WalletRegistration.device_id == dev.id, WalletRegistration.pass_id == card.id)
        )
        if reg is not None:
            session.delete(reg)
            session.flush()
        if session.scalar(select(WalletRegistration.id).where(WalletRegistration.device_id == dev.id).limit(1)) is None:
            session.delete(dev)


@get("/passkit/v1/devices/{device:str}/registrations/{pass_type:str}", sync_to_thread=True, include_in_schema=False)
def updated_serials(runtime: Runtime, device: str, pass_type: str, passesUpdatedSince: str | None = None) -> Response:
    if pass_type != wallet_channel(runtime).config.pass_type_id:
        raise NotFoundException("unknown pass type")
    since = _from_tag(passesUpdatedSince)
    with runtime.sessions() as session:
        query = (
            select(WalletPass)
            .join(WalletRegistration, WalletRegistration.pass_id == WalletPass.id)
            .join(WalletDevice, and_(WalletDevice.id == WalletRegistration.device_id, WalletDevice.device_library_id == device))
        )
        if since is not None:
            query = query.where(WalletPass.updated_at > since)
        cards = session.scalars(query).all()
    if not cards:
        return Response(b"", status_code=204)
    newest = max(cards, key=lambda c: c.updated_at)
    return Response({"serialNumbers": [c.serial_number for c in cards], "lastUpdated": newest.update_tag})


@get("/passkit/v1/passes/{pass_type:str}/{serial:str}", sync_to_thread=True, include_in_schema=False)
def latest_pass(runtime: Runtime, request: Request, pass_type: str, serial: str) -> Response:
    channel = wallet_channel(runtime)
    with runtime.sessions() as session:
        card = _card(session, runtime, pass_type, serial)
        _authorize(request, card)
        modified = card.updated_at.astimezone(timezone.utc)  # whole seconds, strictly increasing per change (see the channel)
        since = request.headers.get("if-modified-since")
        if since:
            try:
                if card.updated_at <= parsedate_to_datetime(since):
                    return Response(b"", status_code=304)
            except (TypeError, ValueError):
                pass
        body = channel.pkpass(session, card)
    return Response(body, media_type=PKPASS, headers={"Last-Modified": format_datetime(modified, usegmt=True)})


@post("/passkit/v1/log", status_code=200, include_in_schema=False)
async def device_log(request: Request) -> None:
    try:
        data = await request.json()
    except ValueError:
        data = {}
    for line in (data.get("logs") or [] if isinstance(data, dict) else [])[:100]:
        log.warning("Apple Wallet device: %s", str(line)[:1000])


public_routes = [register, unregister, updated_serials, latest_pass, device_log]
