"""Tokens, roles and the catalog."""

from kaskad import tokens
from kaskad.store.engine import transaction


def test_requests_without_a_token_are_refused(client):
    r = client.get("/api/v1/catalog")
    assert r.status_code == 401
    assert "Bearer" in r.json()["detail"]


def test_unknown_and_revoked_tokens_are_refused(api, client, runtime):
    assert client.get("/api/v1/catalog", headers={"Authorization": "Bearer nope"}).status_code == 401
    with transaction(runtime.sessions) as s:
        token = tokens.create_token(s, "marketer")
    with transaction(runtime.sessions) as s:
        assert tokens.revoke(s, token)
    from kaskad.api.auth import TokenAuth

    TokenAuth._cache.clear()
    assert client.get("/api/v1/catalog", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_tokens_are_stored_hashed(runtime):
    from sqlalchemy import select

    from kaskad.store.models import ApiToken

    with transaction(runtime.sessions) as s:
        token = tokens.create_token(s, "integrator")
    with runtime.sessions() as s:
        stored = s.scalars(select(ApiToken.token_hash)).all()
    assert token not in stored and tokens.hash_token(token) in stored


def test_catalog_lists_core_kinds_and_builtin_plugins_with_schemas(api):
    r = api.get("/api/v1/catalog", role="marketer")
    assert r.status_code == 200, r.text
    body = r.json()
    kinds = {k["kind"]: k for k in body["node_kinds"]}
    assert {"wait", "branch", "split", "send", "award", "update", "exit"} <= set(kinds)
    assert kinds["send"]["schema"]["$defs"]["SendNode"]["properties"]["channel"]
    channels = {c["name"]: c for c in body["channels"]}
    assert channels["test"]["message_schema"]["$defs"]["TestMessage"]["required"] == ["text"]
    assert "noop" in {m["name"] for m in body["mechanics"]}
    assert "Flow" in body["flow_schema"]["$defs"]


def test_openapi_is_served(client):
    r = client.get("/schema/openapi.json")
    assert r.status_code == 200
    assert "/api/v1/catalog" in r.json()["paths"]


def test_checkout_takes_integrator_and_admin_tokens_only_and_a_refusal_changes_nothing(api, runtime):
    # The checkout's routes check the role in the token middleware (role_opt), not a guard.
    from sqlalchemy import func, select

    from kaskad.loyalty.models import Reservation

    cart = {"currency": "EUR", "items": [{"sku": "A", "price": "10.00"}]}
    r = api.post("/api/v1/checkout/redeem", role="marketer", json={**cart, "idempotency_key": "m-1"})
    assert r.status_code == 403
    assert r.json()["detail"] == "a marketer token cannot do this; it needs one of: admin, integrator"
    assert api.post("/api/v1/checkout/quote", role="marketer", json=cart).status_code == 403
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Reservation)) == 0
    for role in ("integrator", "admin"):
        r = api.post("/api/v1/checkout/redeem", role=role, json={**cart, "idempotency_key": f"{role}-1"})
        assert r.status_code == 200, r.text
    # a guarded route still refuses the same way
    r = api.put("/api/v1/loyalty/program", role="integrator", json={})
    assert r.status_code == 403 and "needs one of: admin, marketer" in r.json()["detail"]
