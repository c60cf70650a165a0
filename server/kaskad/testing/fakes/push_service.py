"""A Web Push service (RFC 8030) on loopback that plays the browser's side too.

``new_subscription()`` creates what a browser would: an ECDH P-256 key pair and
an auth secret, and returns the PushSubscription JSON a page would hand to
Kaskad. Every push received is checked like a push service does it (VAPID JWT
per RFC 8292: ES256 signature against ``k``, ``aud`` = this origin, ``exp``
within 24 h, ``sub``; ``TTL``; ``Urgency``) and then decrypted with the
subscription's private key (RFC 8291, ``aes128gcm``) like the browser does.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kaskad.wallet import jws

URGENCIES = {"very-low", "low", "normal", "high"}


@dataclass
class Browser:
    id: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes
    gone: bool = False

    def subscription(self) -> dict[str, Any]:
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"endpoint": self.endpoint, "expirationTime": None, "keys": {"p256dh": jws.b64url(public), "auth": jws.b64url(self.auth_secret)}}


@dataclass
class Push:
    browser_id: str
    headers: dict[str, str]
    vapid_claims: dict[str, Any]
    vapid_public_key: str
    payload: bytes

    def json(self) -> Any:
        return json.loads(self.payload)


@dataclass
class FakePushService:
    """Start with :meth:`start`; pushes that pass every check land in :attr:`received`."""

    vapid_public_key: str | None = None  # when set, pushes signed by another key are refused (403)
    received: list[Push] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    browsers: dict[str, Browser] = field(default_factory=dict)
    fail_next: list[int] = field(default_factory=list)  # statuses to answer with next, e.g. [503]

    def start(self) -> "FakePushService":
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status, text, extra = service._handle(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(text)))
                self.end_headers()
                self.wfile.write(text.encode())

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def new_subscription(self) -> Browser:
        bid = secrets.token_urlsafe(12)
        browser = Browser(bid, f"{self.origin}/push/{bid}", ec.generate_private_key(ec.SECP256R1()), secrets.token_bytes(16))
        self.browsers[bid] = browser
        return browser

    def _reject(self, status: int, reason: str):
        self.rejected.append((status, reason))
        return status, json.dumps({"code": status, "message": reason}), {"content-type": "application/json"}

    def _handle(self, path: str, headers: dict[str, str], body: bytes):
        if not path.startswith("/push/"):
            return self._reject(404, "no such endpoint")
        browser = self.browsers.get(path.removeprefix("/push/"))
        if browser is None:
            return self._reject(404, "subscription not found")
        if browser.gone:
            return self._reject(410, "push subscription has unsubscribed or expired")
        if self.fail_next:
            status = self.fail_next.pop(0)
            return status, "try later", {"retry-after": "5"}
        # RFC 8030 5.2: TTL is required.
        if not headers.get("ttl", "").isdigit():
            return self._reject(400, "TTL header missing or not a number")
        if headers.get("urgency", "normal") not in URGENCIES:
            return self._reject(400, f"bad Urgency {headers.get('urgency')!r}")
        # RFC 8292: Authorization: vapid t=<jwt>, k=<public key>
        auth = headers.get("authorization", "")
        scheme, _, params = auth.partition(" ")
        if scheme.lower() != "vapid":
            return self._reject(401, "Authorization must use the vapid scheme")
        parts = dict(p.strip().split("=", 1) for p in params.split(",") if "=" in p)
        if "t" not in parts or "k" not in parts:
            return self._reject(401, "vapid needs t= and k=")
        if self.vapid_public_key and parts["k"] != self.vapid_public_key:
            return self._reject(403, "the subscription was made with another applicationServerKey")
        try:
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), jws.unb64url(parts["k"]))
            header, claims = jws.verify(parts["t"], public)
        except (ValueError, jws.JWSError) as exc:
            return self._reject(401, f"VAPID JWT does not verify: {exc}")
        now = time.time()
        if header.get("alg") != "ES256":
            return self._reject(401, "VAPID JWT must be ES256")
        if claims.get("aud") != self.origin:
            return self._reject(403, f"aud {claims.get('aud')!r} is not this push service ({self.origin})")
        if not isinstance(claims.get("exp"), int) or not now < claims["exp"] <= now + 86400:
            return self._reject(403, "exp must be in the future and at most 24 hours away")
        if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
            return self._reject(403, "sub must be a mailto: or https: URI")
        # RFC 8291: aes128gcm, decrypted by the "browser" with its private key and auth secret.
        if headers.get("content-encoding") != "aes128gcm":
            return self._reject(415, "Content-Encoding must be aes128gcm")
        try:
            payload = http_ece.decrypt(body, private_key=browser.private_key, auth_secret=browser.auth_secret, version="aes128gcm")
        except Exception as exc:  # what a browser would do: drop the message
            return self._reject(400, f"payload does not decrypt: {exc!r}")
        push_id = secrets.token_urlsafe(8)
        self.received.append(Push(browser.id, headers, claims, parts["k"], payload))
        return 201, "", {"location": f"{self.origin}/message/{push_id}"}
