"""Who may be sent a message now: consent, reachability, frequency caps, quiet hours.

The engine calls :func:`filter_sends` for a whole batch before it writes a
single outbox row; each contact gets a :class:`Decision`:

- ``skip`` — never send this message: no consent for the channel and topic,
  unsubscribed, no address, or capped with ``on_cap="skip"``;
- ``delay`` — send later, at ``until``: quiet hours in the contact's own
  timezone, or capped with ``on_cap="delay"`` (until a slot frees);
- ``allow`` — send now.

Consent: a revoke for the channel (topic ``*``) or for the message's topic
always wins; otherwise a grant for the topic or for ``*`` allows. Without any
record the channel's ``consent_default`` decides — ``revoked`` unless the
deployment set otherwise (opt-in). A channel that addresses no person (the
``test`` channel) declares ``requires_consent = False``.

Caps count messages actually sent (outbox rows with ``sent_at``) in rolling
windows: per channel per day and per week, and across channels per week.
Settings come from ``KASKAD_DELIVERY`` (JSON, see :class:`DeliverySettings`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from msgspec import Meta
from sqlalchemy import select
from sqlalchemy.orm import Session

from kaskad.store.bulk import among
from kaskad.store.models import Consent, Contact, OutboxMessage

LocalTime = Annotated[str, Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
DAY, WEEK = timedelta(days=1), timedelta(days=7)


class Caps(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    per_day: Annotated[int, Meta(ge=0)] | None = None
    per_week: Annotated[int, Meta(ge=0)] | None = None


class QuietHours(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """No sends from ``start`` to ``end`` local time (may wrap midnight: 21:00 → 09:00)."""

    start: LocalTime
    end: LocalTime


class DeliverySettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    #: Caps per channel name, e.g. {"sms": {"per_day": 1}, "email": {"per_week": 3}}.
    caps: dict[str, Caps] = {}
    #: Across all channels, e.g. {"per_week": 5}.
    total: Caps = msgspec.field(default_factory=Caps)
    quiet_hours: QuietHours | None = None
    #: Channels whose messages ignore quiet hours (e.g. email is read when opened).
    quiet_hours_exempt: list[str] = msgspec.field(default_factory=lambda: ["email"])
    #: Timezone for contacts without one.
    default_timezone: str = "UTC"
    #: Per channel: what a missing consent record means ("revoked" = opt-in required).
    consent_default: dict[str, Literal["granted", "revoked"]] = {}

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "DeliverySettings":
        raw = (os.environ if env is None else env).get("KASKAD_DELIVERY")
        if not raw:
            return cls()
        try:
            return msgspec.json.decode(raw, type=cls)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ValueError(f"KASKAD_DELIVERY is invalid: {exc}") from None


class Decision(msgspec.Struct, kw_only=True, frozen=True):
    action: Literal["allow", "skip", "delay"]
    reason: str | None = None
    until: datetime | None = None


ALLOW = Decision(action="allow")


def _zone(name: str | None, default: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or default)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(default)


def _hm(text: str) -> time:
    h, m = text.split(":")
    return time(int(h), int(m))


def quiet_until(now: datetime, tz: ZoneInfo, quiet: QuietHours) -> datetime | None:
    """When the quiet window that contains ``now`` (in ``tz``) ends, or None if it is not quiet."""
    start, end = _hm(quiet.start), _hm(quiet.end)
    if start == end:
        return None
    local = now.astimezone(tz)
    t = local.time().replace(tzinfo=None)
    inside = (start <= t < end) if start < end else (t >= start or t < end)
    if not inside:
        return None
    day = local.date()
    if start > end and t >= start:  # wrapped: the window ends tomorrow morning
        day = day + timedelta(days=1)
    # zoneinfo maps a wall time inside a DST gap to a real instant (fold=0), so this never fails.
    return datetime.combine(day, end, tzinfo=tz).astimezone(now.tzinfo)


def consent_state(records: dict[str, str], topic: str | None, default: str) -> str:
    """``granted`` or ``revoked`` from a contact's records for one channel: {topic: status}."""
    topic = topic or "*"
    if records.get("*") == "revoked" or records.get(topic) == "revoked":
        return "revoked"
    if records.get(topic) == "granted" or records.get("*") == "granted":
        return "granted"
    return default


def filter_sends(
    session: Session,
    runtime,
    *,
    channel: str,
    topic: str | None,
    contact_ids: list[int],
    now: datetime,
    on_cap: str = "skip",
    settings: DeliverySettings | None = None,
    contacts: Mapping[int, Mapping[str, Any]] | None = None,
) -> dict[int, Decision]:
    """Decide, for every contact in the batch, whether a message on ``channel``/``topic`` may go now.

    ``contacts`` are the batch's contacts as the caller read them in this transaction (id →
    ``email``, ``phone``, ``timezone``, ``erased``): given for every id, they are not read again.
    """
    if settings is None:
        settings = runtime.extras.get("delivery_settings") if runtime is not None else None
        if settings is None:
            settings = DeliverySettings.from_env()
            if runtime is not None:
                runtime.extras["delivery_settings"] = settings
    ch = runtime.registry.channels.get(channel) if runtime is not None else None
    address_field = getattr(ch, "address_field", "email")
    requires_consent = getattr(ch, "requires_consent", True)
    ids = sorted(set(contact_ids))
    if not ids:
        return {}
    # Core statements with one array parameter: this runs for every send batch.
    c, k = Contact.__table__.c, Consent.__table__.c
    if contacts is None or any(i not in contacts for i in ids):
        contacts = {r.id: {"email": r.email, "phone": r.phone, "timezone": r.timezone, "erased": r.erased_at is not None}
                    for r in session.execute(
                        select(c.id, c.email, c.phone, c.timezone, c.erased_at).where(among(session, c.id, ids)))}
    consents: dict[int, dict[str, str]] = {}
    if requires_consent:
        for cid, t, status in session.execute(
            select(k.contact_id, k.topic, k.status).where(
                among(session, k.contact_id, ids), k.channel == channel, k.topic.in_([topic or "*", "*"])
            )
        ):
            consents.setdefault(cid, {})[t] = status
    counts = _sent_counts(session, ids, channel, now, settings)
    default = settings.consent_default.get(channel, "revoked")
    quiet = settings.quiet_hours if channel not in settings.quiet_hours_exempt else None
    out: dict[int, Decision] = {}
    for cid in ids:
        c = contacts.get(cid)
        if c is None or c["erased"]:
            out[cid] = Decision(action="skip", reason="contact erased or unknown")
            continue
        if address_field in ("email", "phone") and not c[address_field]:
            out[cid] = Decision(action="skip", reason=f"no {address_field}")
            continue
        if requires_consent and consent_state(consents.get(cid, {}), topic, default) != "granted":
            revoked = "revoked" in consents.get(cid, {}).values()
            out[cid] = Decision(action="skip", reason="unsubscribed" if revoked else f"no consent for {channel}")
            continue
        capped = _capped(counts.get(cid), channel, settings, now)
        if capped is not None:
            reason, frees_at = capped
            out[cid] = Decision(action="delay", reason=reason, until=frees_at) if on_cap == "delay" else Decision(
                action="skip", reason=reason)
            continue
        if quiet is not None:
            until = quiet_until(now, _zone(c["timezone"], settings.default_timezone), quiet)
            if until is not None:
                out[cid] = Decision(action="delay", reason="quiet hours", until=until)
                continue
        out[cid] = ALLOW
    return out


class _Counts(msgspec.Struct):
    day: int = 0
    week: int = 0
    total_week: int = 0
    oldest_day: datetime | None = None
    oldest_week: datetime | None = None
    oldest_total_week: datetime | None = None


def _sent_counts(session: Session, ids: list[int], channel: str, now: datetime, settings: DeliverySettings) -> dict[int, _Counts]:
    caps = settings.caps.get(channel)
    if caps is None and settings.total.per_week is None:
        return {}
    since = now - WEEK
    o = OutboxMessage.__table__.c
    rows = session.execute(
        select(o.contact_id, o.channel, o.sent_at).where(
            among(session, o.contact_id, ids), o.sent_at.is_not(None), o.sent_at > since, o.sent_at <= now,
        )
    )
    out: dict[int, _Counts] = {}
    for cid, ch, sent_at in rows:
        c = out.setdefault(cid, _Counts())
        c.total_week += 1
        c.oldest_total_week = min(filter(None, [c.oldest_total_week, sent_at]))
        if ch != channel:
            continue
        c.week += 1
        c.oldest_week = min(filter(None, [c.oldest_week, sent_at]))
        if sent_at > now - DAY:
            c.day += 1
            c.oldest_day = min(filter(None, [c.oldest_day, sent_at]))
    return out


def _capped(c: _Counts | None, channel: str, settings: DeliverySettings, now: datetime) -> tuple[str, datetime] | None:
    if c is None:
        c = _Counts()
    caps = settings.caps.get(channel) or Caps()
    # The latest moment at which every exceeded cap has a free slot again.
    hits = []
    if caps.per_day is not None and c.day >= caps.per_day:
        hits.append((f"{channel} cap: {caps.per_day} a day", (c.oldest_day or now) + DAY))
    if caps.per_week is not None and c.week >= caps.per_week:
        hits.append((f"{channel} cap: {caps.per_week} a week", (c.oldest_week or now) + WEEK))
    if settings.total.per_week is not None and c.total_week >= settings.total.per_week:
        hits.append((f"total cap: {settings.total.per_week} messages a week", (c.oldest_total_week or now) + WEEK))
    if not hits:
        return None
    reason = "; ".join(h[0] for h in hits)
    return reason, max(h[1] for h in hits)
