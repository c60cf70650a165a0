"""An APNs stand-in: HTTP/2 over TLS (ALPN ``h2``) on loopback, checking what Apple checks.

``POST /3/device/<token>`` with ``apns-topic``, ``apns-push-type`` and, for
token auth, ``authorization: bearer <ES256 JWT>`` (``kid`` = key id, ``iss`` =
team id, ``iat`` under an hour old) verified against the .p8 key's public key.
Answers as APNs does: 200 with ``apns-id``, or a status with ``{"reason": …}``
(400 BadDeviceToken / DeviceTokenNotForTopic / MissingTopic / InvalidPushType /
BadPayload, 403 MissingProviderToken / InvalidProviderToken /
ExpiredProviderToken, 410 Unregistered). ``on_push(token)`` runs after each
accepted push (a scripted device reacts there).
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

import h2.config
import h2.connection
import h2.events

from kaskad.wallet import jws


@dataclass
class Notification:
    token: str
    headers: dict[str, str]
    body: bytes
    jwt_claims: dict | None


@dataclass
class FakeAPNs:
    topic: str
    tls_certificate: str
    tls_key: str
    team_id: str | None = None
    key_id: str | None = None
    public_key: object | None = None  # the .p8 key's public key; None = certificate auth only
    client_ca: str | None = None  # when set, a TLS client certificate signed by it is required
    received: list[Notification] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    unregistered: set[str] = field(default_factory=set)
    on_push: Callable[[str], None] | None = None

    def start(self) -> "FakeAPNs":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.tls_certificate, self.tls_key)
        context.set_alpn_protocols(["h2"])
        if self.client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.client_ca)
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def main():
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=context)
            self.port = self._server.sockets[0].getsockname()[1]
            self.url = f"https://127.0.0.1:{self.port}"
            ready.set()

        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(main(), self._loop)
        ready.wait(10)
        return self

    def stop(self) -> None:
        async def close():
            self._server.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        alpn = writer.get_extra_info("ssl_object").selected_alpn_protocol()
        if alpn != "h2":  # APNs speaks HTTP/2 only
            writer.close()
            return
        conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        streams: dict[int, tuple[dict[str, str], bytearray]] = {}
        try:
            while data := await reader.read(65535):
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        streams[event.stream_id] = (dict(event.headers), bytearray())
                    elif isinstance(event, h2.events.DataReceived):
                        streams[event.stream_id][1].extend(event.data)
                        conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        headers, body = streams.pop(event.stream_id)
                        status, reply, extra = self._handle(headers, bytes(body))
                        response = [(":status", str(status)), ("apns-id", extra.get("apns-id", str(uuid.uuid4()).upper()))]
                        if reply:
                            response.append(("content-type", "application/json"))
                        conn.send_headers(event.stream_id, response, end_stream=not reply)
                        if reply:
                            conn.send_data(event.stream_id, reply, end_stream=True)
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        break
                writer.write(conn.data_to_send())
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    def _fail(self, status: int, reason: str):
        self.rejected.append((status, reason))
        body = {"reason": reason}
        if status == 410:
            body["timestamp"] = int(time.time() * 1000)
        return status, json.dumps(body).encode(), {}

    def _handle(self, headers: dict[str, str], body: bytes):
        match = re.fullmatch(r"/3/device/([0-9a-fA-F]{32,200})", headers.get(":path", ""))
        if headers.get(":method") != "POST":
            return self._fail(405, "MethodNotAllowed")
        if not match:
            return self._fail(400, "BadDeviceToken")
        token = match.group(1)
        claims = None
        if self.public_key is not None or "authorization" in headers:
            auth = headers.get("authorization", "")
            if not auth.lower().startswith("bearer "):
                return self._fail(403, "MissingProviderToken")
            try:
                header, claims = jws.verify(auth[7:].strip(), self.public_key)
            except jws.JWSError:
                return self._fail(403, "InvalidProviderToken")
            if header.get("alg") != "ES256" or header.get("kid") != self.key_id or claims.get("iss") != self.team_id:
                return self._fail(403, "InvalidProviderToken")
            if not isinstance(claims.get("iat"), int) or time.time() - claims["iat"] > 3600:
                return self._fail(403, "ExpiredProviderToken")
        if "apns-topic" not in headers:
            return self._fail(400, "MissingTopic")
        if headers["apns-topic"] != self.topic:
            return self._fail(400, "DeviceTokenNotForTopic")
        if headers.get("apns-push-type") not in {"alert", "background", "voip", "complication", "fileprovider", "mdm", "liveactivity"}:
            return self._fail(400, "InvalidPushType")
        try:
            payload = json.loads(body or b"")
        except ValueError:
            return self._fail(400, "BadPayload")
        if not isinstance(payload, dict) or len(body) > 4096:
            return self._fail(400, "BadPayload")
        if token in self.unregistered:
            return self._fail(410, "Unregistered")
        self.received.append(Notification(token, headers, body, claims))
        if self.on_push:
            self.on_push(token)
        return 200, b"", {}
