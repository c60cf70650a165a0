"""Signed tokens for links that leave the server (click tracking, pass downloads, anonymous visitors).

A token is ``base64url(json payload) "." base64url(HMAC-SHA256(key, purpose + payload))``;
the purpose keeps a token minted for one use from being replayed at another.
"""

from __future__ import annotations

import base64
import hmac
import json
from typing import Any

import msgspec


class BadToken(ValueError):
    """A token that is malformed or not signed by this server."""


class ForgedToken(BadToken):
    """A well-formed token whose signature does not match (tampered with, or signed elsewhere)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    # validate: a stray character is a damaged token, not silently dropped
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def sign(key: bytes, purpose: str, payload: dict[str, Any]) -> str:
    # Compact JSON with sorted keys (msgspec: a few times cheaper than json.dumps; an email
    # carries four or more signed links, signed per recipient).
    body = _b64(msgspec.json.encode(payload, order="sorted"))
    mac = hmac.digest(key, f"{purpose}.{body}".encode(), "sha256")
    return f"{body}.{_b64(mac)}"


def unsign(key: bytes, purpose: str, token: str) -> dict[str, Any]:
    """The payload of a token this server signed for ``purpose``; :class:`BadToken` otherwise."""
    body, _, mac = token.partition(".")
    if not body or not mac:
        raise BadToken("malformed token: expected <payload>.<signature>")
    try:
        given = _unb64(mac)
    except ValueError as exc:
        raise BadToken(f"malformed token: {exc}") from exc
    expected = hmac.digest(key, f"{purpose}.{body}".encode(), "sha256")
    if not hmac.compare_digest(expected, given):
        raise ForgedToken("signature does not match")
    try:
        payload = json.loads(_unb64(body))
    except (ValueError, TypeError) as exc:
        raise BadToken(f"malformed token: {exc}") from exc
    if not isinstance(payload, dict):
        raise BadToken("malformed token payload")
    return payload
