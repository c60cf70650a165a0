"""The dry run (POST /api/v1/flows/{key}/test): the path one contact would take, nothing written or sent."""

from __future__ import annotations

from sqlalchemy import func, select

from kaskad.engine.models import NodeCount
from kaskad.loyalty.models import LoyaltyCode
from kaskad.store.models import Contact, JourneyRun, OutboxMessage, RunStep
from kaskad_channels.test import SENT

from .journeys import EXIT, contact, flow_doc, publish, send

FLOW = [
    {"id": "mark", "kind": "update", "set": {"stage": "tested"}, "add_tags": ["dry"], "next": "route"},
    {"id": "route", "kind": "branch", "else": "end", "cases": [
        {"name": "marked", "when": {"kind": "attribute", "attribute": "stage", "value": "tested"}, "next": "pause"}]},
    {"id": "pause", "kind": "wait", "for": "P2D", "next": "code"},
    {"id": "code", "kind": "award", "mechanic": "melting_discount", "next": "mail",
     "config": {"steps": [{"percent": 30, "for": "P1D"}]}},
    send("mail", "{{ contact.external_id }}: {{ award.code }} {{ award.percent }}%", next="email"),
    {"id": "email", "kind": "send", "channel": "email", "next": "end",
     "message": {"subject": "Hi", "html": "<p>Hi</p>"}},
    EXIT,
]


def _counts(runtime) -> dict:
    with runtime.sessions() as s:
        counts = {t.__tablename__: s.scalar(select(func.count()).select_from(t))
                  for t in (JourneyRun, RunStep, OutboxMessage, NodeCount, LoyaltyCode)}
        contact_row = s.execute(select(Contact.attributes, Contact.tags).where(Contact.external_id == "ann")).one()
    return {**counts, "contact": (contact_row.attributes, contact_row.tags)}


def test_dry_run_walks_the_published_flow_and_writes_nothing(runtime, api):
    publish(runtime, flow_doc("trial", FLOW))
    contact(runtime, "ann", email="ann@example.com", attributes={"plan": "free"})
    SENT.clear()
    before = _counts(runtime)
    r = api.post("/api/v1/flows/trial/test", json={"contact": "ann"}, role="marketer")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["outcome"] == "exited"
    assert [(p["node"], p["kind"], p["port"]) for p in body["path"]] == [
        ("mark", "update", "next"), ("route", "branch", "case:marked"), ("pause", "wait", "next"),
        ("code", "award", "next"), ("mail", "send", "next"), ("email", "send", "next"), ("end", "exit", None)]
    assert "would wait" in body["path"][2]["note"]
    assert "would skip email: no consent for email" in body["path"][5]["note"]
    [sent] = body["sent"]  # the email would be skipped: no consent
    assert (sent["node"], sent["channel"], sent["address"]) == ("mail", "test", "ann")
    assert sent["content"]["text"].startswith("ann: MELT-") and sent["content"]["text"].endswith(" 30%")
    assert _counts(runtime) == before
    assert list(SENT) == []


def test_dry_run_of_an_unsaved_document(runtime, api):
    publish(runtime, flow_doc("trial", FLOW))
    contact(runtime, "ann")
    draft = flow_doc("trial", [
        {"id": "ab", "kind": "split", "paths": [{"name": "control", "weight": 100, "holdout": True}]}])
    before = _counts(runtime)
    body = api.post("/api/v1/flows/trial/test", json={"contact": "ann", "document": draft}).json()
    assert body["outcome"] == "holdout"
    assert [(p["node"], p["port"]) for p in body["path"]] == [("ab", "path:control")]
    assert body["sent"] == []
    assert _counts(runtime) == before


def test_dry_run_errors(runtime, api):
    publish(runtime, flow_doc("trial", FLOW))
    r = api.post("/api/v1/flows/trial/test", json={"contact": "nobody"})
    assert r.status_code == 404 and "nobody" in r.json()["detail"]
    contact(runtime, "ann")
    bad = flow_doc("trial", [{"id": "mail", "kind": "send", "channel": "no-such-channel", "message": {}}])
    assert api.post("/api/v1/flows/trial/test", json={"contact": "ann", "document": bad}).status_code == 422
    assert api.post("/api/v1/flows/trial/test", json={"who": "ann"}).status_code == 400
    assert api.post("/api/v1/flows/missing/test", json={"contact": "ann"}).status_code == 404
