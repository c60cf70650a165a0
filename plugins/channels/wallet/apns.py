"""APNs over HTTP/2: the empty push that tells a device to fetch a pass again.

Token auth: an ES256 JWT (``iss`` = team id, ``iat``; header ``kid`` = key id)
signed with the .p8 key, reused for 50 minutes (APNs refuses tokens older than
an hour and dislikes new ones more often than every 20 minutes). Certificate
auth: the Pass Type ID certificate as TLS client certificate. The topic is the
pass type identifier; the payload is ``{}``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization

from kaskad import clock
from kaskad.wallet import jws

TOKEN_LIFETIME = 50 * 60


@dataclass
class PushOutcome:
    token: str
    status: int
    reason: str | None = None
    apns_id: str | None = None

    @property
    def unregistered(self) -> bool:
        """APNs says the token is no longer valid for the topic: forget the device."""
        return self.status == 410 or (self.status == 400 and self.reason == "BadDeviceToken")


@dataclass
class APNsClient:
    url: str
    topic: str
    team_id: str | None = None
    key_id: str | None = None
    key_file: str | None = None
    cert_file: str | None = None
    cert_key_file: str | None = None
    cert_password: str | None = None
    ca_file: str | None = None
    timeout: float = 10.0
    _jwt: tuple[float, str] | None = field(default=None, repr=False)

    def provider_token(self) -> str:
        now = clock.now().timestamp()
        if self._jwt is None or now - self._jwt[0] > TOKEN_LIFETIME:
            key = serialization.load_pem_private_key(Path(self.key_file).read_bytes(), None)
            self._jwt = (now, jws.sign({"iss": self.team_id, "iat": int(now)}, key, {"kid": self.key_id}))
        return self._jwt[1]

    def _ssl(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.cert_key_file, self.cert_password)
        return context

    def _headers(self) -> dict[str, str]:
        headers = {"apns-topic": self.topic, "apns-push-type": "background", "apns-priority": "5"}
        if self.key_file:
            headers["authorization"] = f"bearer {self.provider_token()}"
        return headers

    def session(self) -> httpx.AsyncClient:
        """One HTTP/2 connection to reuse for many pushes."""
        return httpx.AsyncClient(http1=False, http2=True, verify=self._ssl(), timeout=self.timeout)

    async def push(self, tokens: list[str], client: httpx.AsyncClient | None = None) -> list[PushOutcome]:
        """Send the update push to each device token (over ``client``, or a connection of its own)."""
        if not tokens:
            return []
        if client is None:
            async with self.session() as own:
                return await self.push(tokens, own)
        outcomes = []
        headers = self._headers()
        for token in tokens:
            try:
                resp = await client.post(f"{self.url.rstrip('/')}/3/device/{token}", content=b"{}", headers=headers)
            except httpx.HTTPError as exc:
                outcomes.append(PushOutcome(token, 0, repr(exc)))
                continue
            reason = None
            if resp.status_code != 200:
                try:
                    reason = resp.json().get("reason")
                except ValueError:
                    reason = resp.text[:200]
            outcomes.append(PushOutcome(token, resp.status_code, reason, resp.headers.get("apns-id")))
        return outcomes


def from_config(config: Any) -> APNsClient | None:
    if not config.pass_type_id:
        return None
    common = dict(url=config.apns_url, topic=config.pass_type_id, ca_file=config.apns_ca_file, timeout=config.timeout)
    if config.apns_key:
        return APNsClient(team_id=config.team_id, key_id=config.apns_key_id, key_file=config.apns_key, **common)
    if config.apns_use_certificate and config.pass_certificate:
        return APNsClient(cert_file=config.pass_certificate, cert_key_file=config.pass_key, cert_password=config.pass_key_password, **common)
    return None
