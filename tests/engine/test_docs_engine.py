"""The example in docs/engine.md runs as the page says."""

import json
import re
from datetime import timedelta
from pathlib import Path

from kaskad import clock
from kaskad.testing.engine import EngineDriver
from kaskad_channels import test as test_channel

from .helpers import T0

DOC = Path(__file__).parents[2] / "docs" / "engine.md"


def blocks():
    return [json.loads(b) for b in re.findall(r"```json\n(.*?)\n```", DOC.read_text(), re.S)]


def test_the_documented_welcome_flow(api, runtime):
    flow, expected = blocks()
    test_channel.reset()
    with clock.travel(T0) as now:
        assert api.post("/api/v1/flows", role="marketer", json=flow).json()["valid"]
        assert api.post(f"/api/v1/flows/{flow['key']}/publish", role="marketer").status_code == 200
        r = api.post("/api/v1/contacts", role="integrator", json={"contacts": [
            {"external_id": "ann", "attributes": {"first_name": "Ann"}},
            {"external_id": "bob", "attributes": {"first_name": "Bob"}}]})
        assert r.status_code == 200, r.text
        r = api.post("/api/v1/events", role="integrator", json={"events": [
            {"contact": "ann", "name": "signed_up", "time": T0.isoformat()},
            {"contact": "bob", "name": "signed_up", "time": T0.isoformat()}]})
        assert r.status_code == 200 and not r.json()["errors"], r.text
        engine = EngineDriver(runtime)
        try:
            engine.drain()
            assert sorted(m.content["text"] for m in test_channel.SENT) == ["Welcome, Ann!", "Welcome, Bob!"]
            now[0] = T0 + timedelta(hours=3)
            r = api.post("/api/v1/events", role="integrator", json={"events": [
                {"contact": "ann", "name": "order_paid", "time": now[0].isoformat()}]})
            assert r.status_code == 200 and not r.json()["errors"], r.text
            engine.drain()
            now[0] = T0 + timedelta(days=1, minutes=1)
            engine.drain()
        finally:
            engine.close()
        stats = api.get(f"/api/v1/flows/{flow['key']}/stats").json()
    assert {k: v for k, v in stats.items() if k not in ("flow", "version")} == expected
    assert sorted(m.content["text"] for m in test_channel.SENT)[-1] == "Welcome, Bob!"
    assert [m.content["text"] for m in test_channel.SENT].count("Thank you for your order") == 1
