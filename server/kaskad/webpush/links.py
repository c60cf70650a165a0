"""Signed tokens for links that leave the server (click tracking, pass downloads, anonymous visitors).

A token is ``base64url(json payload) "." base64url(HMAC-SHA256(key, purpose + payload))``;
the purpose keeps a token minted for one use from being replayed at another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any


class BadToken(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: bytes, purpose: str, payload: dict[str, Any]) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(key, f"{purpose}.{body}".encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def unsign(key: bytes, purpose: str, token: str) -> dict[str, Any]:
    """The payload of a token this server signed for ``purpose``; :class:`BadToken` otherwise."""
    body, _, mac = token.partition(".")
    try:
        expected = hmac.new(key, f"{purpose}.{body}".encode(), hashlib.sha256).digest()
        if not mac or not hmac.compare_digest(expected, _unb64(mac)):
            raise BadToken("signature does not match")
        payload = json.loads(_unb64(body))
    except (ValueError, TypeError) as exc:
        raise BadToken(f"malformed token: {exc}") from exc
    if not isinstance(payload, dict):
        raise BadToken("malformed token payload")
    return payload
