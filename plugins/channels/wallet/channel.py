"""The wallet channel: issue cards, render passes, push updates to Apple devices and Google Wallet."""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any, Callable

import msgspec
from msgspec import Meta
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from kaskad import clock
from kaskad.channels import Channel, OutboundMessage, SendResult
from kaskad.store.engine import transaction
from kaskad.store.models import Contact, Event
from kaskad.wallet.models import WalletDevice, WalletPass, WalletRegistration

from kaskad_channels.wallet import apns, pkpass
from kaskad_channels.wallet.config import WalletConfig
from kaskad_channels.wallet.google import GoogleWallet

log = logging.getLogger(__name__)

#: Ledger events (written by kaskad.loyalty) that may change what a card shows.
BALANCE_EVENTS = ("points_changed", "tier_changed", "points_expired")
_TICK = timedelta(seconds=1)

BalanceProvider = Callable[[Session, int], tuple[Decimal, str | None]]


class WalletMessage(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    text: Annotated[str, Meta(title="Text", min_length=1, description="Shown on the lock screen and on the back of the card")]
    header: Annotated[str, Meta(title="Header", description="Google Wallet message header (default: the message label)")] | None = None


def loyalty_balance(session: Session, contact_id: int) -> tuple[Decimal, str | None]:
    """Spendable points and tier name from the loyalty ledger (:func:`kaskad.loyalty.balance`).

    Falls back to the contact's ``points`` / ``tier`` attributes when the loyalty area is absent.
    """
    try:
        from kaskad.loyalty import balance
    except ImportError:
        balance = None
    if balance is not None:
        standing = balance(session, contact_id)
        tier = standing.get("tier")
        if isinstance(tier, dict):
            tier = tier.get("tier")
        return Decimal(str(standing.get("points") or 0)), tier
    contact = session.get(Contact, contact_id)
    attrs = contact.attributes if contact else {}
    return Decimal(str(attrs.get("points", 0) or 0)), attrs.get("tier")


def run_sync(coro):
    """Run a coroutine from sync code, also when called inside a running event loop (then on a thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target():
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _card_number(contact: Contact) -> str:
    given = (contact.attributes or {}).get("card_number")
    if given:
        return str(given)
    digits = f"27{contact.id:010d}"
    total = 0  # Luhn check digit, so a till catches a mistyped number
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return digits + str((10 - total % 10) % 10)


def holder_name(contact: Contact) -> str | None:
    attrs = contact.attributes or {}
    name = attrs.get("name") or " ".join(str(attrs[k]) for k in ("first_name", "last_name") if attrs.get(k))
    return name or None


@dataclass
class CardPush:
    """What to tell the wallets about one changed card, captured after the database commit."""

    card: WalletPass
    holder: str | None
    tokens: list[str]
    message: str | None = None
    message_key: str | None = None


class WalletChannel(Channel):
    name = "wallet"
    title = "Wallet card (Apple Wallet, Google Wallet)"
    address_field = "external_id"
    config_type = WalletConfig
    message_type = WalletMessage

    def __init__(self) -> None:
        self.config = WalletConfig()
        self.runtime: Any = None
        self.balance_provider: BalanceProvider = loyalty_balance
        self._signer: pkpass.Signer | None = None
        self._apns: apns.APNsClient | None = None
        self._google: GoogleWallet | None = None

    def configure(self, config: WalletConfig) -> None:
        self.config = config
        self._signer = self._apns = self._google = None

    def bind(self, runtime: Any) -> None:
        self.runtime = runtime

    # -- providers ---------------------------------------------------------------------------

    @property
    def signer(self) -> pkpass.Signer:
        if self._signer is None:
            c = self.config
            if not (c.apple and c.wwdr_certificate):
                raise RuntimeError("Apple Wallet is not configured (pass_type_id, team_id, pass_certificate, wwdr_certificate)")
            self._signer = pkpass.Signer.from_files(c.pass_certificate, c.pass_key, c.wwdr_certificate, c.pass_key_password)
        return self._signer

    @property
    def apns(self) -> apns.APNsClient | None:
        if self._apns is None:
            self._apns = apns.from_config(self.config)
        return self._apns

    @property
    def google(self) -> GoogleWallet | None:
        if self._google is None and self.config.google:
            self._google = GoogleWallet(self.config, self.runtime.settings.public_url)
        return self._google

    def default_logo(self) -> bytes:
        return pkpass._png(660, 660, pkpass._rgb(self.config.background_color))

    # -- cards -------------------------------------------------------------------------------

    def issue(self, session: Session, contact: Contact) -> WalletPass:
        """The contact's card, created with the current balance if it has none."""
        card = session.scalar(select(WalletPass).where(WalletPass.contact_id == contact.id))
        if card is None:
            points, tier = self.balance_provider(session, contact.id)
            last_event = session.scalar(
                select(func.max(Event.id)).where(Event.contact_id == contact.id, Event.name.in_(BALANCE_EVENTS))
            )
            card = WalletPass(
                contact_id=contact.id,
                serial_number=secrets.token_hex(16),
                auth_token=secrets.token_urlsafe(24),
                card_number=_card_number(contact),
                points=points,
                tier=tier,
                last_event_id=last_event or 0,
                updated_at=clock.now().replace(microsecond=0),
            )
            session.add(card)
            session.flush()
        return card

    def pkpass(self, session: Session, card: WalletPass) -> bytes:
        contact = session.get(Contact, card.contact_id)
        data = pkpass.pass_json(
            self.config,
            serial=card.serial_number,
            auth_token=card.auth_token,
            web_service_url=f"{self.runtime.settings.public_url}/passkit",
            card_number=card.card_number,
            holder=holder_name(contact) if contact else None,
            points=card.points,
            tier=card.tier,
            message=card.message,
        )
        return pkpass.build(data, pkpass.images(self.config), self.signer)

    def _touch(self, card: WalletPass) -> None:
        # Whole seconds, strictly increasing: the tag and HTTP's Last-Modified (which has
        # one-second resolution) then agree, and two changes within a second stay apart.
        now = clock.now().replace(microsecond=0)
        card.updated_at = max(now, card.updated_at + _TICK) if card.updated_at else now

    def refresh(self, session: Session, card: WalletPass, last_event_id: int | None = None) -> bool:
        """Re-read points and tier; True when the card changed."""
        points, tier = self.balance_provider(session, card.contact_id)
        if last_event_id is not None:
            card.last_event_id = max(card.last_event_id, last_event_id)
        if points == card.points and tier == card.tier:
            return False
        card.points, card.tier = points, tier
        self._touch(card)
        return True

    def push_for(self, session: Session, card: WalletPass, message: str | None = None, message_key: str | None = None) -> CardPush:
        tokens = session.scalars(
            select(WalletDevice.push_token).join(WalletRegistration, WalletRegistration.device_id == WalletDevice.id)
            .where(WalletRegistration.pass_id == card.id)
        ).all()
        contact = session.get(Contact, card.contact_id)
        return CardPush(card, holder_name(contact) if contact else None, list(tokens), message, message_key)

    async def deliver(self, pushes: list[CardPush]) -> list[tuple[bool, str | None]]:
        """Tell the wallets: APNs push to each registered device, Google PATCH or addMessage.

        Returns ``(reached, error)`` per card; reached is True when at least one wallet took the update.
        """
        outcomes: list[tuple[bool, str | None]] = []
        gone: list[str] = []
        google = self.google
        gclient = google.client() if google else None
        apns_client = self.apns.session() if self.apns is not None and any(p.tokens for p in pushes) else None
        try:
            for push in pushes:
                reached, errors = False, []
                if push.tokens and self.apns is None:
                    errors.append("APNs is not configured (set apns_key + apns_key_id, or apns_use_certificate)")
                elif push.tokens:
                    for outcome in await self.apns.push(push.tokens, apns_client):
                        if outcome.status == 200:
                            reached = True
                        elif outcome.unregistered:
                            gone.append(outcome.token)
                        else:
                            errors.append(f"APNs {outcome.status} {outcome.reason}")
                if google is not None and push.card.google_object_id:
                    try:
                        if push.message:
                            await google.add_message(gclient, push.card, push.message, push.message_key or push.card.serial_number)
                        else:
                            await google.update_points(gclient, push.card)
                        reached = True
                    except Exception as exc:  # one card's failure (GoogleWalletError, network) is that card's result
                        errors.append(str(exc))
                outcomes.append((reached, "; ".join(errors) or None))
        finally:
            for client in (gclient, apns_client):
                if client is not None:
                    await client.aclose()
        if gone:
            with transaction(self.runtime.sessions) as session:
                ids = select(WalletDevice.id).where(WalletDevice.push_token.in_(gone)).scalar_subquery()
                session.execute(delete(WalletRegistration).where(WalletRegistration.device_id.in_(ids)))
        return outcomes

    async def link_google(self, card_id: int) -> str:
        """Create (or refresh) the card's Google Wallet object; return its save link."""
        google = self.google
        if google is None:
            raise RuntimeError("Google Wallet is not configured (google_issuer_id, google_service_account_file)")
        with self.runtime.sessions() as session:
            card = session.get(WalletPass, card_id)
            holder = holder_name(session.get(Contact, card.contact_id))
        async with google.client() as client:
            object_id = await google.upsert_object(client, card, holder)
        with transaction(self.runtime.sessions) as session:
            session.get(WalletPass, card_id).google_object_id = object_id
        return google.save_link(card)

    def sync_balances(self, now=None) -> int:
        """Update cards whose holder's points or tier changed (ledger events newer than the card); push them."""
        newest = (
            select(Event.contact_id, func.max(Event.id).label("event_id"))
            .where(Event.name.in_(BALANCE_EVENTS))
            .group_by(Event.contact_id)
            .subquery()
        )
        pushes = []
        with transaction(self.runtime.sessions) as session:
            rows = session.execute(
                select(WalletPass, newest.c.event_id)
                .join(newest, newest.c.contact_id == WalletPass.contact_id)
                .where(newest.c.event_id > WalletPass.last_event_id)
                .limit(1000)
            ).all()
            for card, event_id in rows:
                if self.refresh(session, card, event_id):
                    pushes.append(self.push_for(session, card))
        if pushes:
            run_sync(self.deliver(pushes))
        return len(pushes)

    # -- the channel contract -----------------------------------------------------------------

    async def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        if self.runtime is None:
            raise RuntimeError("the wallet channel is not bound to a runtime (call channel.bind(runtime))")
        results: dict[str, SendResult] = {}
        pushes: list[tuple[str, CardPush]] = []
        with transaction(self.runtime.sessions) as session:
            for message in messages:
                try:
                    content = msgspec.convert(message.content, WalletMessage)
                except msgspec.ValidationError as exc:
                    results[message.key] = SendResult(key=message.key, status="failed", error=f"message: {exc}")
                    continue
                card = session.scalar(select(WalletPass).where(WalletPass.contact_id == message.recipient.contact_id))
                if card is None:
                    results[message.key] = SendResult(key=message.key, status="failed", error="the contact has no wallet card")
                    continue
                if card.message_key != message.key:  # a retried send does not change the card twice
                    card.message, card.message_key = content.text, message.key
                    self._touch(card)
                push = self.push_for(session, card, content.text, message.key)
                if not push.tokens and not card.google_object_id:
                    results[message.key] = SendResult(key=message.key, status="failed", error="the card is not in any wallet yet")
                    continue
                pushes.append((message.key, push))
        for (key, push), (reached, error) in zip(pushes, await self.deliver([p for _, p in pushes])):
            if reached:
                results[key] = SendResult(key=key, status="sent", provider_message_id=f"wallet:{push.card.serial_number}")
            else:
                results[key] = SendResult(key=key, status="retry", error=error or "no wallet took the update", retry_after=60.0)
        return [results[m.key] for m in messages]

