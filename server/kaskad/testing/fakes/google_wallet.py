"""A Google Wallet API stand-in on loopback: OAuth service-account token endpoint and
``walletobjects/v1`` loyalty classes and objects, with the checks and errors Google makes.

- ``POST /token``: ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` and an RS256
  ``assertion`` signed by the service account's key (``iss``, ``scope`` with
  ``wallet_object.issuer``, ``aud`` = this token URL, ``exp`` ≤ 1 h) → an access token.
- ``/walletobjects/v1/loyaltyClass[/{id}]``, ``/loyaltyObject[/{id}]`` (GET, POST, PATCH),
  ``/loyaltyObject/{id}/addMessage``: need ``Authorization: Bearer <access token>``;
  ids must be ``<issuerId>.<suffix>``; objects need an existing class.
Errors come as ``{"error": {"code", "message", "status"}}``.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from kaskad.wallet import jws

SCOPE = "https://www.googleapis.com/auth/wallet_object.issuer"
STATES = {"ACTIVE", "COMPLETED", "EXPIRED", "INACTIVE"}
REVIEW = {"DRAFT", "UNDER_REVIEW", "APPROVED"}
BARCODES = {"QR_CODE", "CODE_128", "PDF_417", "AZTEC", "EAN_13", "TEXT_ONLY"}
MESSAGE_TYPES = {"TEXT", "TEXT_AND_NOTIFY", "EXPIRATION_NOTIFICATION"}
ID = re.compile(r"^(\d+)\.([\w.-]+)$")


class ApiError(Exception):
    STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 409: "ALREADY_EXISTS"}

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": str(self), "status": self.STATUS.get(self.code, "UNKNOWN")}}


@dataclass
class FakeGoogleWallet:
    issuer_id: str
    service_account_email: str
    public_key: Any  # the service account key's public half
    classes: dict[str, dict] = field(default_factory=dict)
    objects: dict[str, dict] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)  # (method, path, body)
    errors: list[tuple[int, str]] = field(default_factory=list)

    def start(self) -> "FakeGoogleWallet":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _do(self):
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    status, body = fake._handle(self.command, self.path, dict(self.headers), raw)
                except ApiError as exc:
                    fake.errors.append((exc.code, str(exc)))
                    status, body = exc.code, exc.body()
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json; charset=UTF-8")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = _do

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.token_url = f"{self.url}/token"
        self.base_url = f"{self.url}/walletobjects/v1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- handling ------------------------------------------------------------------------------

    def _handle(self, method: str, path: str, headers: dict[str, str], raw: bytes):
        if path == "/token" and method == "POST":
            return 200, self._token(raw)
        if not path.startswith("/walletobjects/v1/"):
            raise ApiError(404, f"unknown path {path}")
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            raise ApiError(401, "Request had invalid authentication credentials.")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            raise ApiError(400, "Invalid JSON payload received.") from None
        self.requests.append((method, path, body))
        parts = path.removeprefix("/walletobjects/v1/").split("/")
        kind = parts[0]
        if kind == "loyaltyClass":
            return self._resource(self.classes, method, parts[1:], body, self._check_class)
        if kind == "loyaltyObject":
            if len(parts) == 3 and parts[2] == "addMessage" and method == "POST":
                return 200, self._add_message(parts[1], body)
            return self._resource(self.objects, method, parts[1:], body, self._check_object)
        raise ApiError(404, f"unknown resource {kind}")

    def _token(self, raw: bytes) -> dict:
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            raise ApiError(400, "invalid_grant: unsupported grant_type")
        try:
            header, claims = jws.verify(form.get("assertion", ""), self.public_key)
        except jws.JWSError as exc:
            raise ApiError(400, f"invalid_grant: Invalid JWT Signature ({exc})") from None
        now = time.time()
        if header.get("alg") != "RS256" or claims.get("iss") != self.service_account_email:
            raise ApiError(400, "invalid_grant: wrong alg or issuer")
        if claims.get("aud") != self.token_url:
            raise ApiError(400, f"invalid_grant: aud must be {self.token_url}")
        if SCOPE not in str(claims.get("scope", "")).split():
            raise ApiError(400, "invalid_scope")
        if not (claims.get("iat", 0) - 300 <= now < claims.get("exp", 0) <= claims.get("iat", 0) + 3600):
            raise ApiError(400, "invalid_grant: Invalid JWT: Token must be a short-lived token (60 minutes)")
        token = "ya29." + secrets.token_urlsafe(24)
        self.tokens.add(token)
        return {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def _check_id(self, resource_id: Any) -> None:
        match = ID.match(str(resource_id or ""))
        if not match or match.group(1) != self.issuer_id:
            raise ApiError(403, f"The caller does not have permission for issuer of {resource_id!r}")

    def _check_class(self, body: dict) -> None:
        self._check_id(body.get("id"))
        for required in ("issuerName", "reviewStatus"):
            if not body.get(required):
                raise ApiError(400, f"Missing required field: {required}")
        if body["reviewStatus"] not in REVIEW:
            raise ApiError(400, f"Invalid reviewStatus {body['reviewStatus']!r}")
        if not (body.get("programLogo") or {}).get("sourceUri", {}).get("uri"):
            raise ApiError(400, "Missing required field: programLogo.sourceUri.uri")

    def _check_object(self, body: dict) -> None:
        self._check_id(body.get("id"))
        if body.get("classId") not in self.classes:
            raise ApiError(404, f"Class {body.get('classId')!r} not found")
        if body.get("state") not in STATES:
            raise ApiError(400, f"Invalid state {body.get('state')!r}")
        barcode = body.get("barcode")
        if barcode is not None and (barcode.get("type") not in BARCODES or not barcode.get("value")):
            raise ApiError(400, "Invalid barcode")
        self._check_points(body)

    def _check_points(self, body: dict) -> None:
        points = body.get("loyaltyPoints")
        if points is not None:
            balance = points.get("balance") or {}
            if len([k for k in ("int", "double", "string", "money") if k in balance]) != 1:
                raise ApiError(400, "loyaltyPoints.balance must set exactly one of int, double, string, money")

    def _resource(self, table: dict, method: str, rest: list[str], body: Any, check) -> tuple[int, dict]:
        if method == "POST" and not rest:
            check(body)
            if body["id"] in table:
                raise ApiError(409, f"Resource {body['id']} already exists")
            table[body["id"]] = body
            return 200, body
        if len(rest) != 1:
            raise ApiError(404, "not found")
        resource_id = rest[0]
        if resource_id not in table:
            raise ApiError(404, f"Resource {resource_id} not found")
        if method == "GET":
            return 200, table[resource_id]
        if method == "PATCH":
            if "id" in body and body["id"] != resource_id:
                raise ApiError(400, "id cannot be changed")
            if "loyaltyPoints" in body:
                self._check_points(body)
            table[resource_id] = {**table[resource_id], **body}
            return 200, table[resource_id]
        raise ApiError(404, f"method {method} not supported")

    def _add_message(self, object_id: str, body: Any) -> dict:
        if object_id not in self.objects:
            raise ApiError(404, f"Resource {object_id} not found")
        message = (body or {}).get("message") or {}
        if not message.get("header") and not message.get("body"):
            raise ApiError(400, "message needs a header or a body")
        if message.get("messageType") not in MESSAGE_TYPES:
            raise ApiError(400, f"Invalid messageType {message.get('messageType')!r}")
        if message["messageType"] == "TEXT_AND_NOTIFY" and not (message.get("displayInterval") or {}).get("start"):
            raise ApiError(400, "TEXT_AND_NOTIFY messages need displayInterval.start")
        obj = self.objects[object_id]
        obj["messages"] = [*obj.get("messages", []), message]
        return {"resource": obj}
