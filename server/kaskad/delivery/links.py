"""Signed links inside messages: unsubscribe, open pixel, click redirect.

Every link is built from the outbox key of the message it sits in, so it works
whatever sent the message, and is signed with ``settings.signing_key``
(:mod:`kaskad.signing`): a link cannot be forged for another message or
contact, and a click link cannot be pointed at another URL (no open redirect).

- ``{public_url}/u/<token>`` — unsubscribe: GET shows a confirmation page,
  POST unsubscribes (RFC 8058 one-click). The token names the outbox key, the
  contact, the channel and the topic (``*`` for the whole channel).
- ``{public_url}/t/o/<token>.gif`` — the open pixel: records ``opened``.
- ``{public_url}/t/c/<token>?u=<url>`` — a click: records ``clicked`` and
  redirects to ``url``; the signature covers the URL, so changing ``u`` fails.

The engine puts :func:`message_links` into every template's context as
``links`` (``{{ links.unsubscribe }}``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import quote

import msgspec

from kaskad.signing import BadToken, sign, unsign

UNSUBSCRIBE = "unsubscribe"
OPEN = "open"
CLICK = "click"


class UnsubscribeRef(msgspec.Struct, kw_only=True, frozen=True):
    """What an unsubscribe token refers to."""

    key: str
    contact_id: int
    channel: str
    topic: str


def unsubscribe_token(signing_key: bytes, key: str, contact_id: int, channel: str, topic: str | None) -> str:
    return sign(signing_key, UNSUBSCRIBE, {"k": key, "c": contact_id, "ch": channel, "t": topic or "*"})


def read_unsubscribe_token(signing_key: bytes, token: str) -> UnsubscribeRef:
    """The reference inside a token this server signed; :class:`kaskad.signing.BadToken` otherwise."""
    data = unsign(signing_key, UNSUBSCRIBE, token)
    try:
        return UnsubscribeRef(key=str(data["k"]), contact_id=int(data["c"]), channel=str(data["ch"]), topic=str(data["t"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise BadToken(f"malformed unsubscribe token: {exc!r}") from None


def open_token(signing_key: bytes, key: str) -> str:
    return sign(signing_key, OPEN, {"k": key})


def read_open_token(signing_key: bytes, token: str) -> str:
    """The outbox key of an open-pixel token."""
    return _key(unsign(signing_key, OPEN, token))


def click_token(signing_key: bytes, key: str, url: str) -> str:
    # The URL is part of what is signed (in the purpose), not of the payload: the
    # token stays short and the URL travels readable in ``?u=``.
    return sign(signing_key, f"{CLICK} {url}", {"k": key})


def read_click_token(signing_key: bytes, token: str, url: str) -> str:
    """The outbox key of a click token signed for exactly ``url``."""
    return _key(unsign(signing_key, f"{CLICK} {url}", token))


def _key(data: dict[str, Any]) -> str:
    key = data.get("k")
    if not isinstance(key, str) or not key:
        raise BadToken("malformed token: no message key")
    return key


def unsubscribe_url(public_url: str, signing_key: bytes, key: str, contact_id: int, channel: str, topic: str | None) -> str:
    return f"{public_url}/u/{unsubscribe_token(signing_key, key, contact_id, channel, topic)}"


def pixel_url(public_url: str, signing_key: bytes, key: str) -> str:
    return f"{public_url}/t/o/{open_token(signing_key, key)}.gif"


@lru_cache(maxsize=4096)
def _quoted(url: str) -> str:
    # A campaign's links are the same in every recipient's copy: quote each once.
    return quote(url, safe="")


def click_url(public_url: str, signing_key: bytes, key: str, url: str) -> str:
    return f"{public_url}/t/c/{click_token(signing_key, key, url)}?u={_quoted(url)}"


def message_links(settings, key: str, contact_id: int, channel: str, topic: str | None) -> dict[str, str]:
    """The signed links of one message, for the template context as ``links``.

    ``unsubscribe`` revokes the contact's consent for ``channel`` and ``topic``
    (the whole channel when ``topic`` is None); ``pixel`` records an open.
    """
    base, secret = settings.public_url.rstrip("/"), settings.signing_key
    return {
        "unsubscribe": unsubscribe_url(base, secret, key, contact_id, channel, topic),
        "pixel": pixel_url(base, secret, key),
    }
