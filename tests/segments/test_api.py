"""/api/v1/segments: stored versions, roles, errors with paths, count, members, explain; the catalog schema."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

NOW = datetime.now(timezone.utc)
BIG = {
    "key": "big-app-carts",
    "name": "Spent 100+ and updated a cart in the app twice",
    "condition": {"kind": "all", "conditions": [
        {"kind": "orders", "measure": "total", "op": "gte", "value": 100},
        {"kind": "event", "name": "cart_updated", "min": 2, "where": {"source": "app", "total": {"gte": 20}}},
    ]},
}


def _feed(api):
    ago = lambda d: (NOW - timedelta(days=d)).isoformat()  # noqa: E731
    orders = [
        {"id": "o1", "contact": "ann", "status": "paid", "currency": "EUR", "amount": "80", "placed_at": ago(10)},
        {"id": "o2", "contact": "ann", "status": "paid", "currency": "EUR", "amount": "40", "placed_at": ago(3)},
        {"id": "o3", "contact": "bob", "status": "refunded", "currency": "EUR", "amount": "500", "placed_at": ago(3)},
        {"id": "o4", "contact": "cid", "status": "paid", "currency": "EUR", "amount": "300", "placed_at": ago(1)},
    ]
    assert api.post("/api/v1/orders", role="integrator", json={"orders": orders}).status_code == 200
    events = [{"contact": "ann", "name": "cart_updated", "time": ago(1), "properties": {"source": "app", "total": "25.00"}},
              {"contact": "ann", "name": "cart_updated", "time": ago(2), "properties": {"source": "app", "total": 30}},
              {"contact": "cid", "name": "cart_updated", "time": ago(2), "properties": {"source": "web", "total": 90}},
              {"contact": "cid", "name": "cart_updated", "time": ago(1), "properties": {"source": "app", "total": 10}}]
    assert api.post("/api/v1/events", role="integrator", json={"events": events}).status_code == 200


def test_save_version_count_members_explain(api):
    _feed(api)
    r = api.post("/api/v1/segments", role="marketer", json=BIG)
    assert r.json() == {"key": "big-app-carts", "version": 1, "changed": True}
    assert api.post("/api/v1/segments", role="marketer", json=BIG).json() == {"key": "big-app-carts", "version": 1, "changed": False}
    assert api.get("/api/v1/segments/big-app-carts/count", role="integrator").json()["count"] == 1
    page = api.get("/api/v1/segments/big-app-carts/members", role="integrator").json()
    assert [m["external_id"] for m in page["members"]] == ["ann"] and page["next_cursor"] is None

    why = api.get("/api/v1/segments/big-app-carts/explain/cid").json()
    assert why["member"] is False
    assert [(c["path"], c["result"], c["value"]) for c in why["conditions"]] == [
        ("$.condition", False, None),
        ("$.condition.conditions[0]", True, 300.0),
        ("$.condition.conditions[1]", False, 0),  # one app cart, and it is under 20
    ]
    assert api.get("/api/v1/segments/big-app-carts/explain/ann").json()["conditions"][2]["value"] == 2

    looser = {**BIG, "condition": {**BIG["condition"], "conditions": [BIG["condition"]["conditions"][0]]}}
    assert api.post("/api/v1/segments", role="admin", json=looser).json()["version"] == 2
    assert api.get("/api/v1/segments/big-app-carts/count").json()["count"] == 2
    assert [v["version"] for v in api.get("/api/v1/segments/big-app-carts/versions").json()] == [1, 2]
    old = api.get("/api/v1/segments/big-app-carts?version=1").json()
    assert old["condition"] == BIG["condition"] | {"conditions": [
        {**BIG["condition"]["conditions"][0], "within_days": None},
        {**BIG["condition"]["conditions"][1], "max": None, "within_days": None}]}
    keys = {s["key"]: s["source"] for s in api.get("/api/v1/segments", role="integrator").json()}
    assert keys["big-app-carts"] == "stored" and keys["sleeping-90d"] == "shipped"


def test_paging_and_shipped_segments(api):
    _feed(api)
    seg = {"key": "buyers-api", "name": "bought", "condition": {"kind": "orders", "measure": "count", "op": "gte", "value": 1}}
    api.post("/api/v1/segments", json=seg)
    first = api.get("/api/v1/segments/buyers-api/members?limit=1").json()
    second = api.get(f"/api/v1/segments/buyers-api/members?limit=1&cursor={first['next_cursor']}").json()
    assert [m["external_id"] for m in first["members"] + second["members"]] == ["ann", "cid"]
    assert api.get("/api/v1/segments/sleeping-90d/count").json()["count"] == 0
    assert api.get("/api/v1/segments/nope/count").status_code == 404
    assert api.get("/api/v1/segments/buyers-api/explain/nobody").status_code == 404


def test_bad_definitions_every_error_with_its_path_nothing_stored(api):
    bad = {"key": "Bad Key", "name": "", "extra": 1, "condition": {"kind": "all", "conditions": [
        {"kind": "orders", "measure": "sum", "op": "gt", "value": 1},
        {"kind": "event", "name": "x", "where": {"total": {"gte": 1, "lt": 5}}},
        {"kind": "segment", "segment": "missing-one"},
        {"kind": "magic"},
    ]}}
    r = api.post("/api/v1/segments", role="marketer", json=bad)
    assert r.status_code == 422
    assert [e["path"] for e in r.json()["extra"]["errors"]] == [
        "$.extra", "$.key", "$.name", "$.condition.conditions[0].measure", "$.condition.conditions[3].kind"]
    fixed = {**bad, "key": "ok", "name": "ok"}
    fixed.pop("extra")
    fixed["condition"]["conditions"] = fixed["condition"]["conditions"][1:3]
    r = api.post("/api/v1/segments", role="marketer", json=fixed)
    assert [e["path"] for e in r.json()["extra"]["errors"]] == [
        "$.condition.conditions[0].where.total", "$.condition.conditions[1].segment"]
    cycle = {"key": "loop", "name": "x", "condition": {"kind": "segment", "segment": "loop"}}
    assert "cycle" in api.post("/api/v1/segments", json=cycle).json()["extra"]["errors"][0]["message"]
    assert [s["key"] for s in api.get("/api/v1/segments").json() if s["source"] == "stored"] == []


def test_roles(api):
    seg = {"key": "x", "name": "x", "condition": {"kind": "tag", "tag": "vip"}}
    assert api.post("/api/v1/segments", role="integrator", json=seg).status_code == 403
    assert api.post("/api/v1/segments", role="marketer", json=seg).status_code == 200
    assert api.get("/api/v1/segments/x/count", role="integrator").status_code == 200


def test_catalog_publishes_the_segment_schema(api):
    schema = api.get("/api/v1/catalog", role="integrator").json()["segment_schema"]
    kinds = {d["properties"]["kind"]["enum"][0] for d in schema["$defs"].values() if "kind" in d.get("properties", {})}
    assert kinds == {"all", "any", "not", "attribute", "tag", "consent", "orders", "bought", "event", "rfm", "segment"}


def test_get_sees_stored_definitions_with_a_session(api, runtime):
    from kaskad import segments

    api.post("/api/v1/segments", json={"key": "stored-one", "name": "s", "condition": {"kind": "tag", "tag": "vip"}})
    with runtime.sessions() as s:
        assert segments.get("stored-one", s).name == "s"
        assert segments.get("sleeping-90d").key == "sleeping-90d"  # shipped, no session needed


def test_a_key_defined_in_code_cannot_be_stored(api):
    from kaskad import segments

    segments.define(segments.decode(b'{"key": "code-defined", "name": "c", "condition": {"kind": "tag", "tag": "x"}}'))
    r = api.post("/api/v1/segments", json={"key": "code-defined", "name": "s", "condition": {"kind": "tag", "tag": "y"}})
    assert r.status_code == 422 and r.json()["extra"]["errors"][0]["path"] == "$.key"
