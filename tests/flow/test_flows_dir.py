"""Every scenario in flows/: canonical on disk, valid with the installed plugins, round-trips through the API."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from kaskad.flow import model
from kaskad.flow.validate import decode_stored, validate
from kaskad.plugins.manager import load_registry

FLOWS = sorted((Path(__file__).parents[2] / "flows").glob("*.json"))
EXPECTED = {"welcome-chain", "abandoned-cart", "birthday", "reactivation-90d", "restaurant-winback", "cascade-offer"}


def test_the_scenarios_are_all_there():
    assert EXPECTED <= {p.stem for p in FLOWS}


@pytest.mark.parametrize("path", FLOWS, ids=lambda p: p.stem)
def test_each_flow_is_canonical_and_valid(path):
    data = path.read_bytes()
    assert model.canonical_json(decode_stored(data)) == data, "not canonical: rewrite with model.canonical_json"
    assert msgspec.json.decode(data)["key"] == path.stem
    _, errors = validate(data, load_registry())
    # Every channel and mechanic a scenario uses is a built-in plugin, checked in full
    # (message and config schemas, templates).
    assert errors == []


@pytest.mark.parametrize("path", FLOWS, ids=lambda p: p.stem)
def test_import_export_import_is_byte_identical(api, path):
    data = path.read_bytes()
    r = api.post("/api/v1/flows", role="integrator", content=data, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    first = api.get(f"/api/v1/flows/{path.stem}").content
    assert first == data
    assert api.post("/api/v1/flows", role="integrator", content=first).json()["version"] == 1
    assert api.get(f"/api/v1/flows/{path.stem}").content == first


def test_the_cascade_scenario_reaches_dear_channels_only_for_the_silent():
    flow = decode_stored((Path(__file__).parents[2] / "flows" / "cascade-offer.json").read_bytes())
    (send,) = [n for n in flow.nodes if isinstance(n, model.SendNode)]
    assert [send.channel] + [s.channel for s in send.cascade] == ["email", "whatsapp", "sms"]
    assert all(s.after == "P1D" and {"opened", "clicked", "converted"} <= set(s.unless) for s in send.cascade)
    assert "{{ links.unsubscribe }}" in send.message["html"]
