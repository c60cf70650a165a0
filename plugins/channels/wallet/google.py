"""Google Wallet: loyalty class and objects through the REST API, "Add to Google Wallet" links.

Auth is the service-account flow: an RS256 JWT assertion (scope
``wallet_object.issuer``) exchanged for an OAuth access token at the token URL.
Save links are RS256 JWTs with ``aud`` "google" and ``typ`` "savetowallet" that
reference the object created through the API ("skinny" JWT, short URLs).
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization

from kaskad import clock
from kaskad.wallet import jws

SCOPE = "https://www.googleapis.com/auth/wallet_object.issuer"
SAVE_URL = "https://pay.google.com/gp/v/save/"
DEFAULT_TOKEN_URL = "https://oauth2.googleapis.com/token"


class GoogleWalletError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"Google Wallet API answered {status}: {detail}")
        self.status = status


def _hex(color: str) -> str:
    try:
        r, g, b = (int(x) for x in color.strip().removeprefix("rgb(").removesuffix(")").split(","))
        return f"#{r:02x}{g:02x}{b:02x}"
    except ValueError:
        return color if color.startswith("#") else "#203060"


def _points(value: Decimal) -> dict[str, Any]:
    return {"int": int(value)} if value == value.to_integral_value() else {"double": float(value)}


class GoogleWallet:
    def __init__(self, config: Any, public_url: str) -> None:
        self.config = config
        account = json.loads(Path(config.google_service_account_file).read_text())
        self.email = account["client_email"]
        self.key_id = account.get("private_key_id")
        self.key = serialization.load_pem_private_key(account["private_key"].encode(), None)
        self.token_url = config.google_token_url or account.get("token_uri") or DEFAULT_TOKEN_URL
        self.base = config.google_base_url.rstrip("/")
        self.issuer = config.google_issuer_id
        self.class_id = f"{self.issuer}.{config.google_class_suffix}"
        self.logo_url = config.logo_url or f"{public_url}/wallet/logo.png"
        self._token: tuple[float, str] | None = None
        self._class_ready = False

    def object_id(self, serial: str) -> str:
        return f"{self.issuer}.{serial}"

    # -- auth --------------------------------------------------------------------------------

    def _assertion(self) -> str:
        now = int(clock.now().timestamp())
        claims = {"iss": self.email, "scope": SCOPE, "aud": self.token_url, "iat": now, "exp": now + 3600}
        return jws.sign(claims, self.key, {"kid": self.key_id} if self.key_id else None)

    async def _access_token(self, client: httpx.AsyncClient) -> str:
        now = clock.now().timestamp()
        if self._token is None or self._token[0] < now:
            resp = await client.post(
                self.token_url,
                data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": self._assertion()},
            )
            if resp.status_code != 200:
                raise GoogleWalletError(resp.status_code, f"token exchange failed: {resp.text[:300]}")
            body = resp.json()
            self._token = (now + int(body.get("expires_in", 3600)) - 60, body["access_token"])
        return self._token[1]

    async def _call(self, client: httpx.AsyncClient, method: str, path: str, body: dict | None = None) -> httpx.Response:
        token = await self._access_token(client)
        resp = await client.request(method, f"{self.base}/{path}", json=body, headers={"Authorization": f"Bearer {token}"})
        if resp.status_code == 401:  # token revoked or expired early: one fresh try
            self._token = None
            token = await self._access_token(client)
            resp = await client.request(method, f"{self.base}/{path}", json=body, headers={"Authorization": f"Bearer {token}"})
        return resp

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self.config.timeout)

    # -- class and objects ---------------------------------------------------------------------

    def class_body(self) -> dict[str, Any]:
        c = self.config
        return {
            "id": self.class_id,
            "issuerName": c.organization_name,
            "programName": c.program_name,
            "programLogo": {
                "sourceUri": {"uri": self.logo_url},
                "contentDescription": {"defaultValue": {"language": "en-US", "value": c.program_name}},
            },
            "reviewStatus": "UNDER_REVIEW",
            "hexBackgroundColor": _hex(c.background_color),
        }

    def object_body(self, card: Any, holder: str | None) -> dict[str, Any]:
        c = self.config
        return {
            "id": self.object_id(card.serial_number),
            "classId": self.class_id,
            "state": "ACTIVE",
            "accountId": card.card_number,
            "accountName": holder or card.card_number,
            "barcode": {"type": "QR_CODE", "value": card.card_number, "alternateText": card.card_number},
            **self.points_patch(card),
        }

    def points_patch(self, card: Any) -> dict[str, Any]:
        c = self.config
        return {
            "loyaltyPoints": {"label": c.points_label, "balance": _points(card.points)},
            "textModulesData": [{"id": "tier", "header": c.tier_label, "body": card.tier or "-"}],
        }

    async def ensure_class(self, client: httpx.AsyncClient) -> None:
        if self._class_ready:
            return
        resp = await self._call(client, "GET", f"loyaltyClass/{self.class_id}")
        if resp.status_code == 404:
            resp = await self._call(client, "POST", "loyaltyClass", self.class_body())
        if resp.status_code not in (200, 409):
            raise GoogleWalletError(resp.status_code, resp.text[:300])
        self._class_ready = True

    async def upsert_object(self, client: httpx.AsyncClient, card: Any, holder: str | None) -> str:
        await self.ensure_class(client)
        body = self.object_body(card, holder)
        resp = await self._call(client, "POST", "loyaltyObject", body)
        if resp.status_code == 409:  # exists: bring it up to date
            resp = await self._call(client, "PATCH", f"loyaltyObject/{body['id']}", self.points_patch(card))
        if resp.status_code != 200:
            raise GoogleWalletError(resp.status_code, resp.text[:300])
        return body["id"]

    async def update_points(self, client: httpx.AsyncClient, card: Any) -> None:
        resp = await self._call(client, "PATCH", f"loyaltyObject/{self.object_id(card.serial_number)}", self.points_patch(card))
        if resp.status_code != 200:
            raise GoogleWalletError(resp.status_code, resp.text[:300])

    async def add_message(self, client: httpx.AsyncClient, card: Any, text: str, message_id: str) -> None:
        """addMessage with TEXT_AND_NOTIFY: the holder's phone shows a notification."""
        start = clock.now()
        message = {
            "header": self.config.message_label,
            "body": text,
            "id": re.sub(r"[^A-Za-z0-9._-]", "_", message_id)[:64],
            "messageType": "TEXT_AND_NOTIFY",
            "displayInterval": {
                "start": {"date": start.strftime("%Y-%m-%dT%H:%M:%SZ")},
                "end": {"date": (start + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")},
            },
        }
        resp = await self._call(client, "POST", f"loyaltyObject/{self.object_id(card.serial_number)}/addMessage", {"message": message})
        if resp.status_code != 200:
            raise GoogleWalletError(resp.status_code, resp.text[:300])

    def save_link(self, card: Any) -> str:
        """https://pay.google.com/gp/v/save/<JWT> for the card's object (created through the API first)."""
        claims = {
            "iss": self.email,
            "aud": "google",
            "typ": "savetowallet",
            "iat": int(clock.now().timestamp()),
            "origins": list(self.config.google_origins),
            "payload": {"loyaltyObjects": [{"id": self.object_id(card.serial_number), "classId": self.class_id}]},
        }
        return SAVE_URL + jws.sign(claims, self.key, {"kid": self.key_id} if self.key_id else None)
