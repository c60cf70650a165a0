"""GET /api/v1/flows/{key}/runs: runs newest first, filtered by status; bad queries are a clear 400."""

from __future__ import annotations

from .journeys import EXIT, contact, enroll_ids, flow_doc, publish


def test_runs_by_status_and_bad_queries(runtime, engine, api):
    publish(runtime, flow_doc("listed", [
        {"id": "ab", "kind": "split", "paths": [{"name": "A", "weight": 50, "next": "end"},
                                                {"name": "control", "weight": 50, "holdout": True}]}, EXIT]))
    ids = [contact(runtime, f"c{i}") for i in range(20)]
    enroll_ids(runtime, "listed", ids)
    engine.drain()
    everyone = api.get("/api/v1/flows/listed/runs").json()
    assert len(everyone) == 20 and [r["id"] for r in everyone] == sorted((r["id"] for r in everyone), reverse=True)
    held = api.get("/api/v1/flows/listed/runs?status=holdout").json()
    assert held and {r["status"] for r in held} == {"holdout"}
    assert len(held) + len(api.get("/api/v1/flows/listed/runs?status=exited").json()) == 20
    assert len(api.get("/api/v1/flows/listed/runs?limit=3").json()) == 3
    for query, words in (("limit=-1", "limit must be at least 1"), ("limit=0", "limit must be at least 1"),
                         ("status=finished", "unknown run status 'finished'")):
        r = api.get(f"/api/v1/flows/listed/runs?{query}")
        assert r.status_code == 400 and words in r.json()["detail"], (query, r.text)
    assert api.get("/api/v1/flows/nope/runs").status_code == 404
