"""The ``test`` channel: delivers nowhere, records everything.

It is a real channel plugin (registered through the entry point like any
other) for tests, demos and plugin authors. The latest 10,000 messages sent
are kept in :data:`SENT` and, when ``KASKAD_TEST_CHANNEL_LOG`` names a
directory, every one is written there as one JSON file per message (safe across
worker processes).

It behaves like a provider that deduplicates on the message key, as providers
with idempotency keys do: a key it has accepted before is acknowledged again
and not recorded twice. Accepting is atomic — the message file is written under
a temporary name and hard-linked to its key's name, which fails if it exists —
so a process killed at any instant leaves either the whole record or none. So
the engine may resend a message whose provider call was interrupted
(``idempotent = True``), and :func:`read_log` shows what customers received.
Offers of an already accepted key are appended to ``repeats.jsonl`` there.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import deque
from typing import Annotated

import msgspec
from msgspec import Meta

from kaskad import hookimpl
from kaskad.channels import Channel, OutboundMessage, SendResult


class TestMessage(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    text: Annotated[str, Meta(title="Text", description="Message text (a template)")]
    subject: Annotated[str, Meta(title="Subject")] | None = None


class TestConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    log_path: Annotated[str, Meta(description="Directory to record sent messages in, one JSON file each")] | None = None


#: The latest messages sent in this process, in order. Bounded, so that a worker process
#: that sends millions (the engine benchmark) does not grow by every one of them; the log
#: directory keeps them all.
SENT_KEPT = 10_000
SENT: deque[OutboundMessage] = deque(maxlen=SENT_KEPT)


class TestChannel(Channel):
    name = "test"
    title = "Test channel (records messages, sends nothing)"
    address_field = "external_id"
    requires_consent = False  # reaches no person
    idempotent = True  # deduplicates on the message key, like a provider with idempotency keys
    config_type = TestConfig
    message_type = TestMessage

    def __init__(self) -> None:
        self.log_path = os.environ.get("KASKAD_TEST_CHANNEL_LOG") or None

    def configure(self, config: TestConfig) -> None:
        self.log_path = config.log_path or self.log_path

    async def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        if not self.log_path:
            SENT.extend(messages)
        else:
            os.makedirs(self.log_path, exist_ok=True)
            repeats = []
            for m in messages:
                if _record(self.log_path, m):
                    SENT.append(m)
                else:
                    repeats.append(msgspec.json.encode(m) + b"\n")
            if repeats:
                fd = os.open(os.path.join(self.log_path, "repeats.jsonl"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                try:
                    os.write(fd, b"".join(repeats))
                finally:
                    os.close(fd)
        return [SendResult(key=m.key, status="sent", provider_message_id=f"test-{m.key}") for m in messages]


def _record(directory: str, message: OutboundMessage) -> bool:
    """Record ``message`` under its key's name unless a record exists; True if it was new."""
    final = os.path.join(directory, hashlib.sha256(message.key.encode()).hexdigest() + ".json")
    if os.path.exists(final):
        return False
    tmp = os.path.join(directory, f".tmp-{os.getpid()}-{threading.get_ident()}")
    with open(tmp, "wb") as f:
        f.write(msgspec.json.encode(message))
    try:
        os.link(tmp, final)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


def read_log(directory: str) -> list[dict]:
    """Every message recorded in ``directory`` (one per key)."""
    out = []
    for name in sorted(os.listdir(directory)):
        if name.endswith(".json"):
            with open(os.path.join(directory, name), "rb") as f:
                out.append(msgspec.json.decode(f.read()))
    return out


def reset() -> None:
    """Forget what was sent in this process (between tests)."""
    SENT.clear()


@hookimpl
def register_channels(register):
    register(TestChannel())
