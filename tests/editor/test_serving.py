"""The server's side of the editor: /editor with deep links, assets, no build, session and template preview."""

import pytest

from kaskad.store.engine import transaction
from kaskad.store.models import Contact


@pytest.fixture
def dist(tmp_path, monkeypatch):
    d = tmp_path / "dist"
    (d / "assets").mkdir(parents=True)
    (d / "index.html").write_text("<!doctype html><div id=root></div>")
    (d / "assets" / "app-abc123.js").write_text("console.log(1)")
    monkeypatch.setenv("KASKAD_EDITOR_DIST", str(d))
    return d


@pytest.mark.parametrize("path", ["/editor", "/editor/", "/editor/flows/restaurant-winback", "/editor/flows/x/deep/link"])
def test_every_editor_path_answers_the_app(client, dist, path):
    r = client.get(path)
    assert r.status_code == 200
    assert "<div id=root>" in r.text
    assert r.headers["cache-control"] == "no-cache"


def test_assets_are_served_with_their_type_and_cached_for_good(client, dist):
    r = client.get("/editor/assets/app-abc123.js")
    assert r.status_code == 200 and r.text == "console.log(1)"
    assert "javascript" in r.headers["content-type"]
    assert "immutable" in r.headers["cache-control"]
    missing = client.get("/editor/assets/app-old.js")
    assert missing.status_code == 404 and "app-old.js" in missing.json()["detail"]


def test_paths_outside_the_build_are_not_served(client, dist, tmp_path):
    (tmp_path / "secret.txt").write_text("nope")
    r = client.get("/editor/..%2Fsecret.txt")
    assert "nope" not in r.text


def test_without_a_build_the_editor_says_how_to_make_one(client, tmp_path, monkeypatch):
    monkeypatch.setenv("KASKAD_EDITOR_DIST", str(tmp_path / "missing"))
    r = client.get("/editor/flows/anything")
    assert r.status_code == 503
    assert "make run" in r.text and "npm run build" in r.text


@pytest.mark.parametrize("role, can_publish", [("admin", True), ("marketer", True), ("integrator", False)])
def test_session_tells_the_role(api, role, can_publish):
    r = api.get("/api/v1/editor/session", role=role)
    assert r.status_code == 200
    assert r.json() == {"role": role, "can_save": True, "can_publish": can_publish}


def test_session_needs_a_token(client):
    assert client.get("/api/v1/editor/session").status_code == 401


def test_preview_renders_a_message_for_a_contact_in_the_sandbox(api, runtime):
    with transaction(runtime.sessions) as s:
        s.add(Contact(external_id="guest-1", email="a@example.com", attributes={"first_name": "Ann"}, tags=["vip"]))
    message = {"subject": "Hi {{ contact.attributes.first_name }}", "html": "<p>{{ contact.attributes.first_name }} & {{ '<b>' }}</p>",
               "parameters": ["{{ award.code }}"]}
    r = api.post("/api/v1/editor/preview", role="marketer", json={"message": message, "contact": "guest-1"})
    assert r.status_code == 200, r.text
    out = r.json()["rendered"]
    assert out["subject"] == "Hi Ann"
    assert out["html"] == "<p>Ann & &lt;b&gt;</p>"  # html is autoescaped, the literal text is not touched
    assert out["parameters"] == ["SAMPLE-1234"]


def test_preview_reports_template_errors_and_sandbox_refusals(api):
    bad = api.post("/api/v1/editor/preview", json={"message": {"text": "{{ oops"}})
    assert bad.status_code == 200 and bad.json()["rendered"] is None
    assert "syntax error" in bad.json()["error"]
    escape = api.post("/api/v1/editor/preview", json={"message": {"text": "{{ ''.__class__.__mro__ }}"}})
    assert escape.json()["rendered"] is None or "class" not in escape.json()["rendered"]["text"]


def test_preview_names_an_unknown_contact_and_bad_bodies(api):
    r = api.post("/api/v1/editor/preview", json={"message": {"text": "x"}, "contact": "ghost"})
    assert r.status_code == 404 and "ghost" in r.json()["detail"]
    r = api.post("/api/v1/editor/preview", json={"text": "x"})
    assert r.status_code == 400 and "message" in r.json()["detail"]
