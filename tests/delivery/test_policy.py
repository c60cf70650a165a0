"""Consent, caps and quiet hours: concrete cases on both databases, and a property test."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from sqlalchemy import delete

from kaskad.delivery.policy import Caps, DeliverySettings, QuietHours, filter_sends, quiet_until
from kaskad.store.engine import transaction
from kaskad.store.models import Consent, Contact, OutboxMessage

NOW = datetime(2026, 3, 28, 12, 0, tzinfo=timezone.utc)  # Saturday before the EU DST change


def add_contact(s, ext, email="x@example.com", phone=None, tz=None, consents=(), sent=()):
    c = Contact(external_id=ext, email=email, phone=phone, timezone=tz, attributes={}, tags=[])
    s.add(c)
    s.flush()
    for channel, topic, status in consents:
        s.add(Consent(contact_id=c.id, channel=channel, topic=topic, status=status))
    for i, (channel, ago) in enumerate(sent):
        s.add(OutboxMessage(key=f"{ext}:{i}", contact_id=c.id, channel=channel, status="sent", sent_at=NOW - ago))
    s.flush()
    return c.id


def test_consent_rules(runtime):
    with transaction(runtime.sessions) as s:
        granted = add_contact(s, "g", consents=[("email", "*", "granted")])
        topic_only = add_contact(s, "t", consents=[("email", "promo", "granted")])
        revoked_topic = add_contact(s, "r", consents=[("email", "*", "granted"), ("email", "promo", "revoked")])
        revoked_all = add_contact(s, "a", consents=[("email", "*", "revoked"), ("email", "promo", "granted")])
        none = add_contact(s, "n")
        no_email = add_contact(s, "e", email=None, consents=[("email", "*", "granted")])
        d = filter_sends(s, runtime, channel="email", topic="promo", contact_ids=[granted, topic_only, revoked_topic, revoked_all, none, no_email], now=NOW)
    assert d[granted].action == d[topic_only].action == "allow"
    assert (d[revoked_topic].action, d[revoked_topic].reason) == ("skip", "unsubscribed")
    assert (d[revoked_all].action, d[revoked_all].reason) == ("skip", "unsubscribed")
    assert (d[none].action, d[none].reason) == ("skip", "no consent for email")
    assert (d[no_email].action, d[no_email].reason) == ("skip", "no email")
    soft = DeliverySettings(consent_default={"email": "granted"})
    with runtime.sessions() as s:
        assert filter_sends(s, runtime, channel="email", topic=None, contact_ids=[none], now=NOW, settings=soft)[none].action == "allow"


def test_caps_skip_or_delay_until_a_slot_frees(runtime):
    caps = DeliverySettings(caps={"sms": Caps(per_day=1)}, total=Caps(per_week=3))
    with transaction(runtime.sessions) as s:
        sms_today = add_contact(s, "s", phone="+79161234567", consents=[("sms", "*", "granted")], sent=[("sms", timedelta(hours=5))])
        busy_week = add_contact(s, "w", phone="+79161234568", consents=[("sms", "*", "granted")],
                                sent=[("email", timedelta(days=1, hours=1)), ("email", timedelta(days=3)), ("sms", timedelta(days=6))])
        fresh = add_contact(s, "f", phone="+79161234569", consents=[("sms", "*", "granted")], sent=[("sms", timedelta(hours=25))])
        ids = [sms_today, busy_week, fresh]
        skip = filter_sends(s, runtime, channel="sms", topic=None, contact_ids=ids, now=NOW, settings=caps)
        delay = filter_sends(s, runtime, channel="sms", topic=None, contact_ids=ids, now=NOW, on_cap="delay", settings=caps)
    assert (skip[sms_today].action, skip[sms_today].reason) == ("skip", "sms cap: 1 a day")
    assert skip[busy_week].reason == "total cap: 3 messages a week"
    assert skip[fresh].action == "allow"
    assert delay[sms_today].until == NOW - timedelta(hours=5) + timedelta(days=1)
    assert delay[busy_week].until == NOW - timedelta(days=6) + timedelta(days=7)


def test_quiet_hours_in_the_contacts_own_timezone(runtime):
    quiet = DeliverySettings(quiet_hours=QuietHours(start="21:00", end="09:00"), consent_default={"sms": "granted"})
    at = datetime(2026, 3, 28, 19, 30, tzinfo=timezone.utc)  # 22:30 in Moscow, 20:30 in Paris, 05:30 next day in Tokyo
    with transaction(runtime.sessions) as s:
        msk = add_contact(s, "m", phone="+79161234567", tz="Europe/Moscow")
        paris = add_contact(s, "p", phone="+33612345678", tz="Europe/Paris")
        tokyo = add_contact(s, "t", phone="+819012345678", tz="Asia/Tokyo")
        d = filter_sends(s, runtime, channel="sms", topic=None, contact_ids=[msk, paris, tokyo], now=at, settings=quiet)
    assert d[msk] .action == "delay" and d[msk].until == datetime(2026, 3, 29, 6, 0, tzinfo=timezone.utc)  # 09:00 MSK
    assert d[paris].action == "allow"
    assert d[tokyo].until == datetime(2026, 3, 29, 0, 0, tzinfo=timezone.utc)  # 09:00 JST
    # Email is exempt from quiet hours by default.
    with runtime.sessions() as s:
        e = filter_sends(s, runtime, channel="email", topic=None, contact_ids=[msk], now=at,
                         settings=DeliverySettings(quiet_hours=quiet.quiet_hours, consent_default={"email": "granted"}))
    assert e[msk].action == "allow"


def test_quiet_hours_end_across_a_dst_change():
    paris = ZoneInfo("Europe/Paris")
    # 02:30 on 29 March 2026 does not exist in Paris (clocks jump 02:00 → 03:00).
    now = datetime(2026, 3, 28, 23, 30, tzinfo=timezone.utc)  # 00:30 local
    until = quiet_until(now, paris, QuietHours(start="22:00", end="08:00"))
    assert until.astimezone(paris).hour == 8 and until == datetime(2026, 3, 29, 6, 0, tzinfo=timezone.utc)  # CEST now


# ---------------------------------------------------------------- property test

ZONES = ["UTC", "Europe/Moscow", "Europe/Paris", "America/New_York", "Asia/Tokyo", "Australia/Lord_Howe", None]
contact_st = st.fixed_dictionaries({
    "tz": st.sampled_from(ZONES),
    "has_email": st.booleans(),
    "consents": st.dictionaries(st.sampled_from(["*", "promo"]), st.sampled_from(["granted", "revoked"]), max_size=2),
    "sent": st.lists(st.tuples(st.sampled_from(["email", "sms"]), st.integers(0, 24 * 9)), max_size=6),
})
settings_st = st.builds(
    lambda day, week, total, quiet, default: DeliverySettings(
        caps={"email": Caps(per_day=day, per_week=week)}, total=Caps(per_week=total),
        quiet_hours=QuietHours(start=quiet[0], end=quiet[1]) if quiet else None,
        quiet_hours_exempt=[], consent_default={"email": default}),
    st.sampled_from([None, 0, 1, 2]), st.sampled_from([None, 1, 3]), st.sampled_from([None, 2, 5]),
    st.sampled_from([None, ("21:00", "09:00"), ("13:00", "14:30"), ("00:00", "06:00")]),
    st.sampled_from(["granted", "revoked"]),
)


def oracle_blocked(c, s: DeliverySettings, topic, now):
    """An independent statement of the rules: why this contact must not get an email now, or None."""
    if not c["has_email"]:
        return "address"
    records = c["consents"]
    t = topic or "*"
    if "revoked" in (records.get("*"), records.get(t)):
        return "consent"
    if records.get(t) != "granted" and records.get("*") != "granted" and s.consent_default["email"] != "granted":
        return "consent"
    # Windows are (now - 24h, now] and (now - 7d, now]: a send `h` hours ago counts while h < 24 (168).
    hours = [h for ch, h in c["sent"] if ch == "email" and 0 <= h < 7 * 24]
    day = sum(1 for h in hours if h < 24)
    week = len(hours)
    total = sum(1 for ch, h in c["sent"] if 0 <= h < 7 * 24)
    caps = s.caps["email"]
    if (caps.per_day is not None and day >= caps.per_day) or (caps.per_week is not None and week >= caps.per_week) \
            or (s.total.per_week is not None and total >= s.total.per_week):
        return "cap"
    if s.quiet_hours:
        local = now.astimezone(ZoneInfo(c["tz"] or "UTC"))
        minutes = local.hour * 60 + local.minute
        a = int(s.quiet_hours.start[:2]) * 60 + int(s.quiet_hours.start[3:])
        b = int(s.quiet_hours.end[:2]) * 60 + int(s.quiet_hours.end[3:])
        if (a <= minutes < b) if a < b else (minutes >= a or minutes < b):
            return "quiet"
    return None


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(contacts=st.lists(contact_st, min_size=1, max_size=5), s=settings_st, minutes=st.integers(0, 60 * 48),
       topic=st.sampled_from([None, "promo"]), on_cap=st.sampled_from(["skip", "delay"]))
def test_no_send_ever_breaks_consent_a_cap_or_quiet_hours(sqlite_runtime, contacts, s, minutes, topic, on_cap):
    runtime = sqlite_runtime
    now = NOW + timedelta(minutes=minutes)
    with runtime.sessions() as session, session.begin():
        ids = []
        for i, c in enumerate(contacts):
            cid = add_contact(session, f"p{i}", email="p@example.com" if c["has_email"] else None, tz=c["tz"],
                              consents=[("email", t, v) for t, v in c["consents"].items()], sent=[])
            for j, (ch, hours) in enumerate(c["sent"]):
                session.add(OutboxMessage(key=f"p{i}:{j}", contact_id=cid, channel=ch, status="sent",
                                          sent_at=now - timedelta(hours=hours)))
            ids.append(cid)
        session.flush()
        decisions = filter_sends(session, runtime, channel="email", topic=topic, contact_ids=ids, now=now,
                                 on_cap=on_cap, settings=s)
        # The engine passes the contacts it has read already: the same decisions.
        known = {cid: {"email": "p@example.com" if c["has_email"] else None, "phone": None, "timezone": c["tz"],
                       "erased": False} for cid, c in zip(ids, contacts)}
        assert filter_sends(session, runtime, channel="email", topic=topic, contact_ids=ids, now=now,
                            on_cap=on_cap, settings=s, contacts=known) == decisions
        session.rollback()
    for cid, c in zip(ids, contacts):
        d, why = decisions[cid], oracle_blocked(c, s, topic, now)
        if why is None:
            assert d.action == "allow", (c, d)
        else:
            assert d.action != "allow", (why, c, d)
            if d.action == "delay":
                assert why in ("cap", "quiet") and d.until > now
                assert why != "cap" or on_cap == "delay"


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def sqlite_runtime(tmp_path_factory, sqlite_template):
    import shutil

    from kaskad.testing.fixtures import make_runtime

    home = tmp_path_factory.mktemp("policy")
    shutil.copy(sqlite_template, home / "k.db")
    rt = make_runtime(f"sqlite:///{home / 'k.db'}", home)
    yield rt
    rt.close()
