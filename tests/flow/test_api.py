"""The flows API: validate, save, list, export, versions, publish, restore; roles; bad requests."""

from __future__ import annotations

import msgspec
import pytest
from sqlalchemy import func, select

from kaskad.store.models import Flow as FlowRow
from kaskad.store.models import FlowVersion

from tests.flow.helpers import node, sample


def stored(runtime):
    with runtime.sessions() as s:
        return s.scalar(select(func.count()).select_from(FlowRow)), s.scalar(select(func.count()).select_from(FlowVersion))


def test_validate_reports_every_error_and_stores_nothing(api, runtime):
    doc = sample()
    node(doc, "hello")["channel"] = "pigeon"
    node(doc, "pause")["for"] = "soon"
    r = api.post("/api/v1/flows/validate", role="integrator", json=doc)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["valid"] is False
    assert {(e["node"], e["path"]) for e in body["errors"]} == {("hello", "nodes[0].channel"), ("pause", "nodes[2].for")}
    assert api.post("/api/v1/flows/validate", role="marketer", json=sample()).json() == {"valid": True, "errors": []}
    assert stored(runtime) == (0, 0)


def test_save_list_export_publish_flow(api, runtime):
    r = api.post("/api/v1/flows", role="marketer", json=sample())
    assert r.status_code == 200, r.text
    assert r.json() == {"key": "sample", "version": 1, "status": "draft", "valid": True, "errors": []}
    r = api.post("/api/v1/flows", role="integrator", json=sample(name="Edited"))
    assert r.json()["version"] == 1
    listed = api.get("/api/v1/flows", role="integrator").json()
    assert [(f["key"], f["name"], f["current_version"], f["latest_version"], f["latest_status"]) for f in listed] == [
        ("sample", "Edited", None, 1, "draft")
    ]
    r = api.get("/api/v1/flows/sample")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert msgspec.json.decode(r.content)["name"] == "Edited"

    r = api.post("/api/v1/flows/sample/publish", role="marketer")
    assert r.status_code == 200, r.text
    assert r.json() == {"key": "sample", "version": 1, "status": "published"}
    r = api.post("/api/v1/flows", role="marketer", json=sample(name="Second"))
    assert (r.json()["version"], r.json()["status"]) == (2, "draft")
    versions = api.get("/api/v1/flows/sample/versions", role="integrator").json()
    assert [(v["version"], v["status"], v["current"]) for v in versions] == [(1, "published", True), (2, "draft", False)]
    assert msgspec.json.decode(api.get("/api/v1/flows/sample?version=1").content)["name"] == "Edited"
    assert msgspec.json.decode(api.get("/api/v1/flows/sample").content)["name"] == "Second"

    r = api.post("/api/v1/flows/sample/versions/1/restore", role="marketer")
    assert r.json() == {"key": "sample", "version": 3, "status": "draft"}
    assert msgspec.json.decode(api.get("/api/v1/flows/sample").content)["name"] == "Edited"
    r = api.post("/api/v1/flows/sample/publish", role="admin", json={"version": 3})
    assert r.json()["version"] == 3


def test_integrators_cannot_publish(api, runtime):
    api.post("/api/v1/flows", role="integrator", json=sample())
    r = api.post("/api/v1/flows/sample/publish", role="integrator")
    assert r.status_code == 403 and "marketer" in r.json()["detail"]
    assert api.get("/api/v1/flows", role="marketer").json()[0]["current_version"] is None


def test_publishing_an_invalid_draft_is_422_with_the_errors(api, runtime):
    doc = sample()
    del node(doc, "check")["else"]
    r = api.post("/api/v1/flows", role="marketer", json=doc)
    body = r.json()
    assert r.status_code == 200 and body["valid"] is False
    assert body["errors"] == [{"node": "check", "path": "nodes[3].else", "message": body["errors"][0]["message"]}]
    r = api.post("/api/v1/flows/sample/publish", role="marketer")
    assert r.status_code == 422
    assert r.json()["extra"]["errors"][0]["node"] == "check"
    assert api.get("/api/v1/flows/sample/versions").json()[0]["status"] == "draft"


@pytest.mark.parametrize(
    "content, status, words",
    [
        (b'{"schema": "kaskad.flow/1", "key": ', 400, "malformed JSON"),
        (b"[]", 400, "JSON object"),
        (b"", 400, "request body"),
        (msgspec.json.encode(sample(key=7)), 400, "key"),
        (msgspec.json.encode(sample(schema="kaskad.flow/2")), 400, "schema"),
        (b'{"schema": "kaskad.flow/1", "key": "big", "name": "' + b"x" * (3 * 1024 * 1024) + b'"}', 413, "limit"),
    ],
)
def test_bad_requests_are_4xx_and_store_nothing(api, runtime, content, status, words):
    r = api.post("/api/v1/flows", role="marketer", content=content, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]
    assert stored(runtime) == (0, 0)


def test_publish_body_and_missing_things(api, runtime):
    assert api.get("/api/v1/flows/ghost").status_code == 404
    assert api.get("/api/v1/flows/ghost/versions").status_code == 404
    assert api.post("/api/v1/flows/ghost/publish").status_code == 404
    assert api.post("/api/v1/flows/ghost/versions/1/restore").status_code == 404
    api.post("/api/v1/flows", json=sample())
    r = api.post("/api/v1/flows/sample/publish", json={"version": "one"})
    assert r.status_code == 400 and "version" in r.json()["detail"]
    r = api.post("/api/v1/flows/sample/publish", json={"versoin": 1})
    assert r.status_code == 400 and "versoin" in r.json()["detail"]
    assert api.post("/api/v1/flows/sample/publish", json={"version": 5}).status_code == 404
    assert api.get("/api/v1/flows/sample?version=x").status_code == 400
    assert api.get("/api/v1/flows/sample/versions").json()[0]["status"] == "draft"


def test_tokens_are_required(client):
    assert client.post("/api/v1/flows/validate", json=sample()).status_code == 401


def test_the_flow_routes_are_in_the_openapi_schema(client):
    paths = client.get("/schema/openapi.json").json()["paths"]
    assert {"/api/v1/flows", "/api/v1/flows/validate", "/api/v1/flows/{key}", "/api/v1/flows/{key}/versions",
            "/api/v1/flows/{key}/publish", "/api/v1/flows/{key}/versions/{n}/restore"} <= set(paths)
