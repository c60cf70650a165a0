"""Runs every request in docs/loyalty.md, in order, and checks what the page says they return."""

import json
import re
from pathlib import Path

from kaskad.loyalty import ledger
from kaskad.store.engine import transaction

from .helpers import contact

DOC = Path(__file__).parents[2] / "docs" / "loyalty.md"
REQUEST = re.compile(r"<!-- request: (\w+) (\S+) (\w+) -->\n```json\n(.*?)\n```", re.S)


def test_every_documented_request_works(api, runtime):
    cid = contact(runtime.sessions, "alice")
    with transaction(runtime.sessions) as s:
        ledger.earn(s, cid, 120, "docs-seed", "welcome")
    requests = REQUEST.findall(DOC.read_text())
    assert len(requests) >= 9
    answers = {}
    for method, path, role, body in requests:
        r = api.request(method, path, role, json=json.loads(body))
        assert r.status_code in (200, 201), (path, r.text)
        answers.setdefault(path, []).append(r.json())
    q = answers["/api/v1/checkout/quote"][0]
    assert (q["subtotal"], q["total_discount"], q["to_pay"], q["earn"]["points"]) == ("70.00", "27.00", "23.00", "4")
    assert q["rejected"] == [{"code": "NOSUCHCODE", "reason": "unknown code"}]
    assert q["gift_cards"] == [{"code": "GC-DOCS-0001", "amount": "20.00", "balance_after": "0.00"}]
    assert answers["/api/v1/checkout/redeem"][0]["reservation"] == 1
    assert len(answers["/api/v1/loyalty/promo-codes"][1]["codes"]) == 50
    final = answers["/api/v1/checkout/refund"][1]
    assert final["status"] == "refunded"
    st = api.get("/api/v1/loyalty/alice").json()
    assert (st["points"], st["pending"]) == ("120", "0")
    assert api.get("/api/v1/loyalty/codes/GC-DOCS-0001").json()["balance"] == "20.0000"
