"""Shared set-up for journey tests: contacts with addresses and consent, channels pointed at the suite's fakes."""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import urlsplit

from sqlalchemy import select

from kaskad import clock
from kaskad.channels.settings import config_from_env
from kaskad.store.engine import transaction
from kaskad.store.models import Consent, Contact, JourneyRun, MessageEvent, OutboxMessage, RunStep

#: The WhatsApp app secret the tests configure; status webhooks are signed with it.
APP_SECRET = "wa-app-secret"


def configure(runtime, name: str, **env: str) -> None:
    """Configure one of the runtime's channels the way ``KASKAD_<NAME>_*`` variables would."""
    ch = runtime.registry.channels[name]
    prefix = f"KASKAD_{name.upper()}_"
    config = config_from_env(ch, {prefix + k.upper(): v for k, v in env.items()})
    assert config is not None, f"bad settings for {name}: {env}"
    ch.configure(config)


def add_people(runtime, people: dict[str, dict], consent: tuple[str, ...]) -> dict[str, int]:
    """Contacts by external id (with email/phone/attributes), each granting ``consent`` channels, topic ``*``."""
    ids = {}
    with transaction(runtime.sessions) as s:
        for ext, fields in people.items():
            c = Contact(external_id=ext, attributes=fields.get("attributes", {}), tags=[],
                        email=fields.get("email"), phone=fields.get("phone"))
            s.add(c)
            s.flush()
            ids[ext] = c.id
            for ch in consent:
                s.add(Consent(contact_id=c.id, channel=ch, topic="*", status="granted", source="test"))
    return ids


def sent_by(runtime, channel: str) -> dict[int, OutboxMessage]:
    """Outbox rows of ``channel`` by contact id (one per contact expected)."""
    with runtime.sessions() as s:
        rows = list(s.scalars(select(OutboxMessage).where(OutboxMessage.channel == channel).order_by(OutboxMessage.id)))
    by = {r.contact_id: r for r in rows}
    assert len(by) == len(rows), f"more than one {channel} message to a contact: {[r.key for r in rows]}"
    return by


def ports(runtime, node_id: str) -> dict[int, str]:
    """The port each contact's run left ``node_id`` by, keyed by contact id."""
    with runtime.sessions() as s:
        q = select(JourneyRun.contact_id, RunStep.port).join(JourneyRun, JourneyRun.id == RunStep.run_id).where(
            RunStep.node_id == node_id, RunStep.port.is_not(None))
        return dict(s.execute(q).all())


def events(runtime) -> list[tuple[str, str, int]]:
    with runtime.sessions() as s:
        q = select(OutboxMessage.channel, MessageEvent.status, MessageEvent.contact_id).join(
            OutboxMessage, OutboxMessage.id == MessageEvent.outbox_id)
        return sorted(s.execute(q).all())


def local_path(runtime, url: str) -> str:
    """A public URL of this server as a path for the test client."""
    assert url.startswith(runtime.settings.public_url + "/"), url
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def whatsapp_status(wamid: str, status: str, phone: str, secret: str = APP_SECRET) -> tuple[bytes, dict]:
    """A WhatsApp Cloud API status webhook body and its X-Hub-Signature-256 header."""
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"phone_number_id": "1055512345"},
        "statuses": [{"id": wamid, "status": status, "timestamp": str(int(clock.now().timestamp())), "recipient_id": phone}]}}]}]}).encode()
    sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-Hub-Signature-256": sig, "Content-Type": "application/json"}
