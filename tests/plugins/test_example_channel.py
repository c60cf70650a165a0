"""The example channel of docs/plugins/channels.md, pip-installed as a separate package and used
through its entry point as a third party's would be: catalog, flow validation, sending to a
local endpoint that checks the signature, and signed delivery reports through /hooks."""

from __future__ import annotations

import asyncio
import re
import hashlib
import hmac
import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from kaskad.channels import OutboundMessage, Recipient
from kaskad.channels.settings import configure_channels
from kaskad.plugins.manager import load_registry
from kaskad.store.engine import transaction
from kaskad.store.models import Contact, MessageEvent, OutboxMessage
from kaskad.testing.fakes.http_stub import ProviderServer

SOURCE = Path(__file__).parent / "example_channel"
SECRET = "endpoint-secret"
pytestmark = pytest.mark.xdist_group("example_channel")


@pytest.fixture(scope="session")
def example_install(tmp_path_factory) -> Path:
    """``pip install`` the example package (a copy: the build leaves files behind) into a directory."""
    work = tmp_path_factory.mktemp("example-channel")
    shutil.copytree(SOURCE, work / "src", ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(work / "src")],
                   check=True, stdout=subprocess.DEVNULL)
    return target


@pytest.fixture
def example_plugin(example_install):
    """The installed package on sys.path for one test, as if it were in site-packages."""
    sys.path.insert(0, str(example_install))
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path.remove(str(example_install))
        for name in [m for m in sys.modules if m.startswith("kaskad_example_channel")]:
            del sys.modules[name]


class Endpoint(ProviderServer):
    """The integrator's endpoint the example channel talks to: checks the signature, answers per message."""

    def __init__(self):
        super().__init__()
        self.received: list[dict] = []

    def handle(self, method, path, headers, body):
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        if headers.get("x-signature") != expected:
            return 401, {"error": "bad signature"}
        results = []
        for m in json.loads(body)["messages"]:
            self.received.append(m)
            if m["to"].endswith("0000"):
                results.append({"key": m["key"], "error": "no such number", "permanent": True})
            else:
                results.append({"key": m["key"], "id": f"ep-{len(self.received)}"})
        return 200, {"results": results}


def test_installed_package_is_found_through_its_entry_point(example_plugin):
    from importlib.metadata import distribution

    assert distribution("kaskad-example-channel").entry_points.select(group="kaskad")["example_webhook"].value == "kaskad_example_channel"
    registry = load_registry()
    assert "example_webhook" in registry.plugins and registry.channels["webhook"].rate_limit == 50.0


def test_the_example_channel_end_to_end(example_plugin, runtime, api):
    assert "webhook" in runtime.registry.channels  # the runtime loaded it like any plugin
    catalog = api.get("/api/v1/catalog", role="marketer").json()
    (entry,) = [c for c in catalog["channels"] if c["name"] == "webhook"]
    assert "Your own endpoint" in json.dumps(entry) and "Endpoint URL" in json.dumps(entry)

    flow = {"schema": "kaskad.flow/1", "key": "hello", "name": "Hello",
            "entry": {"kind": "event", "event": "signed_up"},
            "nodes": [{"kind": "send", "id": "hi", "channel": "webhook", "message": {"txt": "typo"}, "next": "end"},
                      {"kind": "exit", "id": "end"}]}
    r = api.post("/api/v1/flows/validate", role="marketer", json=flow).json()
    assert not r["valid"] and any(e["node"] == "hi" and "txt" in e["message"] for e in r["errors"])  # the plugin's Struct
    flow["nodes"][0]["message"] = {"text": "Hi {{ contact.external_id }}"}
    assert api.post("/api/v1/flows/validate", role="marketer", json=flow).json() == {"valid": True, "errors": []}

    with Endpoint() as endpoint:
        configure_channels(runtime, {"KASKAD_WEBHOOK_URL": endpoint.url + "/kaskad", "KASKAD_WEBHOOK_SECRET": SECRET})
        ch = runtime.registry.channels["webhook"]
        with transaction(runtime.sessions) as s:
            c = Contact(external_id="c1", phone="+79161234567", attributes={}, tags=[])
            s.add(c)
            s.flush()
            for key in ("run:1:hi", "run:2:hi"):
                s.add(OutboxMessage(key=key, contact_id=c.id, channel="webhook", status="sending"))
            cid = c.id
        messages = [OutboundMessage(key=k, recipient=Recipient(contact_id=cid, external_id="c1"), address=a, content={"text": "Hi"})
                    for k, a in (("run:1:hi", "+79161234567"), ("run:2:hi", "+79160000000"))]
        results = asyncio.run(ch.send_batch(messages))
        assert [(r.status, r.provider_message_id) for r in results] == [("sent", "ep-1"), ("failed", None)]
        assert endpoint.received[0] == {"key": "run:1:hi", "to": "+79161234567", "text": "Hi"}

    with transaction(runtime.sessions) as s:
        s.scalar(select(OutboxMessage).where(OutboxMessage.key == "run:1:hi")).provider_message_id = "ep-1"
    report = json.dumps([{"id": "ep-1", "status": "delivered"}]).encode()
    assert api.client.post("/hooks/webhook", content=report, headers={"x-signature": "sha256=forged"}).status_code == 403
    signed = "sha256=" + hmac.new(SECRET.encode(), report, hashlib.sha256).hexdigest()
    r = api.client.post("/hooks/webhook", content=report, headers={"x-signature": signed})
    assert r.status_code == 200 and r.json() == {"received": 1, "recorded": 1}
    with runtime.sessions() as s:
        assert [e.status for e in s.scalars(select(MessageEvent))] == ["delivered"]


def test_the_settings_shown_in_the_guide_decode(example_plugin):
    from kaskad.channels.settings import config_from_env

    guide = (Path(__file__).parents[2] / "docs" / "plugins" / "channels.md").read_text()
    settings, commands = re.findall(r"```sh\n(.*?)```", guide, re.S)
    env = dict(line.split("=", 1) for line in settings.splitlines())
    cfg = config_from_env(load_registry().channels["webhook"], env)
    assert (cfg.url, cfg.secret, cfg.price) == ("https://crm.example/kaskad/messages", "change-me", "0.10")
    assert commands.startswith("pip install ./kaskad-example-channel")  # what example_install does
    allow = re.search(r"KASKAD_LOAD_PLUGINS=(\S+)`", guide).group(1).split(",")
    assert set(load_registry(allow=allow).channels) == {"email", "webhook"}
