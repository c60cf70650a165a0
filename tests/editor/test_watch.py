"""Live counts and test mode in the browser.

`test_live_counts_and_test_mode_with_the_engine` needs the journey engine (kaskad.engine:
enroll, GET /flows/{key}/stats, POST /flows/{key}/test); the other test checks what the
editor shows against a server that answers those endpoints with 404.
"""

from __future__ import annotations

import json

import pytest

from tests.editor.conftest import shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("editor-browser")]

HELLO = {
    "schema": "kaskad.flow/1",
    "key": "hello-watch",
    "name": "Hello, then wait",
    "entry": {"kind": "api"},
    "nodes": [
        {"kind": "send", "id": "hello", "channel": "test", "message": {"text": "Hello {{ contact.attributes.first_name }}"}, "next": "pause"},
        {"kind": "wait", "id": "pause", "for": "P7D", "next": "end"},
        {"kind": "exit", "id": "end"},
    ],
    "layout": {"hello": {"x": 0, "y": 0}, "pause": {"x": 0, "y": 160}, "end": {"x": 0, "y": 320}},
}


def _flow(server, key: str) -> dict:
    flow = {**HELLO, "key": key}
    assert server.api("POST", "/flows", json=flow).status_code == 200
    assert server.api("POST", f"/flows/{key}/publish").status_code == 200
    return flow


def test_without_the_engine_the_editor_says_counts_and_tests_are_unavailable(page, editor_server):
    _flow(editor_server, "hello-no-engine")
    # Whatever this server has, answer as a server without the journey engine does.
    for suffix in ("stats", "test"):
        page.route(f"**/api/v1/flows/hello-no-engine/{suffix}",
                   lambda route: route.fulfill(status=404, content_type="application/json",
                                               body=json.dumps({"status_code": 404, "detail": "Not Found"})))
    sign_in(page, editor_server, "marketer", path="/editor/flows/hello-no-engine")
    page.wait_for_selector('.react-flow__node[data-id="pause"]')
    assert "not available" in page.locator("[data-testid=stats-note]").inner_text()
    assert page.locator("[data-testid^=stats-]").count() == 1  # the note; no counts on the nodes
    page.fill("[data-testid=test-contact]", "guest-1")
    page.click("[data-testid=test-run]")
    assert "journey engine" in page.locator("[data-testid=test-error]").inner_text()
    assert page.locator(".kaskad-node.on-path").count() == 0


def test_live_counts_and_test_mode_with_the_engine(page, editor_server):
    """Needs the journey engine on this branch (kaskad.engine): counts poll in, a dry run lights the path."""
    from sqlalchemy import select

    from kaskad.config import Settings
    from kaskad.engine.enroll import enroll
    from kaskad.runtime import Runtime
    from kaskad.store.engine import transaction
    from kaskad.store.models import Contact

    key = "hello-engine"
    _flow(editor_server, key)
    r = editor_server.api("POST", "/contacts", role="integrator",
                          json={"contacts": [{"external_id": "guest-1", "attributes": {"first_name": "Ann"}},
                                             {"external_id": "guest-2", "attributes": {"first_name": "Bob"}}]})
    assert r.status_code == 200, r.text

    sign_in(page, editor_server, "marketer", path=f"/editor/flows/{key}")
    page.wait_for_selector('.react-flow__node[data-id="pause"]')

    # Test mode: a dry run for one contact walks the path and lights it; nothing is written.
    page.fill("[data-testid=test-contact]", "guest-1")
    page.click("[data-testid=test-run]")
    page.wait_for_selector("[data-testid=test-result]")
    expected = editor_server.api("POST", f"/flows/{key}/test", json={"contact": "guest-1", "document": {**HELLO, "key": key}}).json()
    walked = [step["node"] for step in expected["path"]]
    assert walked[:2] == ["hello", "pause"]
    assert page.locator("[data-testid=test-outcome]").inner_text() == expected["outcome"]
    lit = page.locator(".kaskad-node.on-path").evaluate_all("ns => ns.map(n => n.dataset.testid.slice(5))")
    assert sorted(lit) == sorted(set(walked))
    assert page.locator(".react-flow__edge.on-path").count() >= 1
    assert page.locator("[data-testid=test-result] li").count() == len(walked)
    shot(page, "test-mode")
    stats = editor_server.api("GET", f"/flows/{key}/stats").json()
    assert stats["active"] + stats["waiting"] == 0  # the dry run enrolled nobody

    # Two real runs: the counts on the canvas follow without a reload.
    runtime = Runtime.create(Settings.from_env({**editor_server.env}))
    try:
        with transaction(runtime.sessions) as session:
            ids = list(session.scalars(select(Contact.id).where(Contact.external_id.in_(["guest-1", "guest-2"]))))
            assert enroll(session, runtime, key, ids).enrolled == 2
    finally:
        runtime.close()
    page.wait_for_function(
        "document.querySelector('[data-testid=stats-pause]')?.textContent.includes('waiting 2')", timeout=60_000)
    assert "in 2" in page.locator("[data-testid=stats-hello]").inner_text()
    assert "(2)" in page.locator('.react-flow__node[data-id="hello"] .port-label').inner_text()
    shot(page, "live-counts")
