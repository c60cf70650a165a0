"""Stand-ins for Twilio's Messages API and SMS.ru's HTTP API that check each request."""

from __future__ import annotations

import base64
import itertools
from urllib.parse import parse_qs

from kaskad.testing.fakes.http_stub import ProviderServer


class FakeTwilio(ProviderServer):
    """POST /2010-04-01/Accounts/{sid}/Messages.json, HTTP basic auth (sid:token), form-encoded."""

    def __init__(self, account_sid: str = "AC" + "0" * 32, auth_token: str = "twilio-token") -> None:
        super().__init__()
        self.account_sid, self.auth_token = account_sid, auth_token
        self.sent: list[dict[str, str]] = []
        self._ids = itertools.count(1)

    def handle(self, method, path, headers, body):
        if method != "POST" or path != f"/2010-04-01/Accounts/{self.account_sid}/Messages.json":
            return 404, {"code": 20404, "message": f"The requested resource {path} was not found", "status": 404}
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if headers.get("authorization") != expected:
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return 400, {"code": 20001, "message": "form encoding expected", "status": 400}
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if not form.get("To", "").startswith("+") or not form.get("Body") or not form.get("From"):
            return 400, {"code": 21604, "message": "A 'To' phone number, 'From' and 'Body' are required.", "status": 400}
        self.sent.append(form)
        sid = f"SM{next(self._ids):032d}"
        return 201, {"sid": sid, "status": "queued", "to": form["To"], "from": form["From"], "body": form["Body"],
                     "num_segments": "1", "account_sid": self.account_sid}


class FakeSmsRu(ProviderServer):
    """POST /sms/send with api_id, to, msg, json=1; answers in SMS.ru's JSON shape."""

    def __init__(self, api_id: str = "SMSRU-API-ID") -> None:
        super().__init__()
        self.api_id = api_id
        self.sent: list[dict[str, str]] = []
        self._ids = itertools.count(1)

    def handle(self, method, path, headers, body):
        if path.split("?")[0] != "/sms/send":
            return 404, {"status": "ERROR", "status_code": 404, "status_text": "not found"}
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if form.get("api_id") != self.api_id:
            return 200, {"status": "ERROR", "status_code": 200, "status_text": "Неправильный api_id"}
        if form.get("json") != "1" or not form.get("msg") or not form.get("to", "").isdigit():
            return 200, {"status": "ERROR", "status_code": 202, "status_text": "Неправильно указан получатель"}
        self.sent.append(form)
        return 200, {"status": "OK", "status_code": 100, "sms": {form["to"]: {
            "status": "OK", "status_code": 100, "sms_id": f"000000-{next(self._ids)}"}}, "balance": 100.5}
