"""The ``test`` channel: delivers nowhere, records everything.

It is a real channel plugin (registered through the entry point like any
other) for tests, demos and plugin authors. Every message sent is kept in
:data:`SENT` and, when ``KASKAD_TEST_CHANNEL_LOG`` names a file, appended to it
as one JSON line (``O_APPEND`` writes, safe across worker processes).
"""

from __future__ import annotations

import os
from typing import Annotated

import msgspec
from msgspec import Meta

from kaskad import hookimpl
from kaskad.channels import Channel, OutboundMessage, SendResult


class TestMessage(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    text: Annotated[str, Meta(title="Text", description="Message text (a template)")]
    subject: Annotated[str, Meta(title="Subject")] | None = None


class TestConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    log_path: Annotated[str, Meta(description="File to append sent messages to, one JSON line each")] | None = None


#: Messages sent in this process, in order.
SENT: list[OutboundMessage] = []


class TestChannel(Channel):
    name = "test"
    title = "Test channel (records messages, sends nothing)"
    address_field = "external_id"
    requires_consent = False  # reaches no person
    config_type = TestConfig
    message_type = TestMessage

    def __init__(self) -> None:
        self.log_path = os.environ.get("KASKAD_TEST_CHANNEL_LOG") or None

    def configure(self, config: TestConfig) -> None:
        self.log_path = config.log_path or self.log_path

    async def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        SENT.extend(messages)
        if self.log_path and messages:
            data = b"".join(msgspec.json.encode(m) + b"\n" for m in messages)
            fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        return [SendResult(key=m.key, status="sent", provider_message_id=f"test-{m.key}") for m in messages]


@hookimpl
def register_channels(register):
    register(TestChannel())
