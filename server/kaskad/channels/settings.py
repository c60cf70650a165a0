"""Channel settings from the environment: ``KASKAD_<CHANNEL>_<FIELD>``.

Each channel's ``config_type`` Struct names its fields; ``KASKAD_EMAIL_HOST``
sets the email channel's ``host``, ``KASKAD_SMS_AUTH_TOKEN`` the SMS channel's
``auth_token``. Values are decoded leniently (``587`` → int, ``true`` → bool,
lists as JSON). A value that does not decode is named in the log and that
channel keeps its defaults; secrets never appear in the log.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import msgspec

log = logging.getLogger(__name__)


def env_prefix(channel_name: str) -> str:
    return f"KASKAD_{channel_name.upper().replace('-', '_')}_"


def config_from_env(channel, env: dict[str, str] | None = None) -> Any | None:
    """Build the channel's config Struct from the environment (None when nothing is set)."""
    struct = getattr(channel, "config_type", None)
    if struct is None:
        return None
    env = os.environ if env is None else env
    prefix = env_prefix(channel.name)
    raw: dict[str, Any] = {}
    for field in msgspec.structs.fields(struct):
        value = env.get(prefix + field.encode_name.upper())
        if value is None:
            continue
        if value[:1] in "[{":
            try:
                value = msgspec.json.decode(value)
            except msgspec.DecodeError:
                pass
        raw[field.encode_name] = value
    if not raw:
        return None
    try:
        return msgspec.convert(raw, struct, strict=False)
    except msgspec.ValidationError as exc:
        log.error("channel %r: settings from %s* are invalid (%s); it keeps its defaults", channel.name, prefix, exc)
        return None


def configure_channels(runtime, env: dict[str, str] | None = None) -> None:
    """Give every channel the runtime and its settings."""
    for channel in runtime.registry.channels.values():
        channel.bind(runtime)
        config = config_from_env(channel, env)
        if config is not None:
            channel.configure(config)
