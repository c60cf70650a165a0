"""A stand-in for the WhatsApp Business Cloud API's POST /{version}/{phone_number_id}/messages."""

from __future__ import annotations

import itertools
import json

from kaskad.testing.fakes.http_stub import ProviderServer


class FakeWhatsAppCloud(ProviderServer):
    def __init__(self, phone_number_id: str = "1055512345", access_token: str = "EAAG-test-token",
                 templates: dict[str, int] | None = None) -> None:
        super().__init__()
        self.phone_number_id, self.access_token = phone_number_id, access_token
        #: Approved templates and how many body parameters each takes.
        self.templates = templates if templates is not None else {"ask_review": 1, "gift_offer": 2}
        #: Phones inside the 24 h customer-service window (free-form text allowed).
        self.open_windows: set[str] = set()
        self.sent: list[dict] = []
        self._ids = itertools.count(1)

    @staticmethod
    def error(code: int, message: str, status: int = 400):
        return status, {"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "Atest"}}

    def handle(self, method, path, headers, body):
        parts = path.strip("/").split("/")
        if method != "POST" or len(parts) != 3 or parts[1] != self.phone_number_id or parts[2] != "messages":
            return self.error(100, f"Unsupported post request to {path}")
        if headers.get("authorization") != f"Bearer {self.access_token}":
            return self.error(190, "Invalid OAuth access token.", 401)
        try:
            msg = json.loads(body)
        except ValueError:
            return self.error(100, "Invalid JSON")
        if msg.get("messaging_product") != "whatsapp" or not str(msg.get("to", "")).isdigit():
            return self.error(100, "Invalid parameter")
        if msg.get("type") == "template":
            t = msg.get("template", {})
            if t.get("name") not in self.templates:
                return self.error(132001, f"Template name does not exist in the translation ({t.get('name')})")
            params = [p for c in t.get("components", []) if c.get("type") == "body" for p in c.get("parameters", [])]
            if len(params) != self.templates[t["name"]] or not all(p.get("type") == "text" for p in params):
                return self.error(132000, "Number of parameters does not match the expected number of params")
            if not t.get("language", {}).get("code"):
                return self.error(100, "template.language.code is required")
        elif msg.get("type") == "text":
            if msg["to"] not in self.open_windows:
                return self.error(131047, "Re-engagement message: more than 24 hours have passed since the customer last replied")
        else:
            return self.error(100, f"Unsupported message type {msg.get('type')}")
        self.sent.append(msg)
        wamid = f"wamid.TEST{next(self._ids):010d}"
        return 200, {"messaging_product": "whatsapp", "contacts": [{"input": msg["to"], "wa_id": msg["to"]}],
                     "messages": [{"id": wamid}]}
