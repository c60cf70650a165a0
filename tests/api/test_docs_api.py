"""Every example in docs/api.md is posted, in order, and answers as the page says."""

import json
import re
from pathlib import Path

import pytest

DOC = Path(__file__).parents[2] / "docs" / "api.md"
ENDPOINT = {"contacts": "/api/v1/contacts", "events": "/api/v1/events", "orders": "/api/v1/orders"}


def examples():
    text = DOC.read_text()
    # A ```json block followed by its "Answer: `...`" line.
    pattern = re.compile(r"```json\n(.*?)\n```\s*\n\s*Answer: `(.*?)`\.", re.S)
    return [(json.loads(body), json.loads(answer)) for body, answer in pattern.findall(text)]


def test_the_page_has_examples():
    assert len(examples()) == 4


def test_every_example_answers_as_documented(api):
    for body, answer in examples():
        (key,) = body
        r = api.post(ENDPOINT[key], role="integrator", json=body)
        assert r.status_code == 200, r.text
        assert r.json() == answer, (key, r.json())
    contact = api.get("/api/v1/contacts/guest-1042").json()
    assert contact["phone"] == "+79161234567"
    assert [(c["channel"], c["topic"], c["status"]) for c in contact["consents"]] == [
        ("email", "*", "granted"), ("sms", "promo", "revoked")]
    assert {e["name"] for e in contact["events"]} >= {"cart_updated", "order_placed", "order_paid"}


@pytest.mark.parametrize("body,detail", [(b'{"evnts": []}', "unknown top-level key(s) 'evnts'; the body holds only 'events'")])
def test_documented_error_message(api, body, detail):
    r = api.post("/api/v1/events", role="integrator", content=body, headers={"Content-Type": "application/json"})
    assert r.json() == {"status_code": 400, "detail": detail}
