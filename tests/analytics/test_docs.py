"""Runs every request in docs/analytics.md on the hand-made data and checks the shown answers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kaskad.analytics import jobs
from kaskad.store.engine import transaction

from .data import at
from .test_base_health import build_base
from .test_holdout import build_split
from .test_journeys import build_cascade

DOC = Path(__file__).parents[2] / "docs" / "analytics.md"
REQUEST = re.compile(r"<!-- request: GET (\S+) (\w+) -->\n```(json|csv)\n(.*?)\n```", re.S)


def shown_in(shown, got, where="answer"):
    """``shown`` is part of ``got``: its keys with equal values, a list's first entries."""
    if isinstance(shown, dict):
        assert isinstance(got, dict), where
        for k, v in shown.items():
            assert k in got, f"{where}.{k} is missing"
            shown_in(v, got[k], f"{where}.{k}")
    elif isinstance(shown, list):
        assert isinstance(got, list) and len(got) >= len(shown), where
        for i, v in enumerate(shown):
            shown_in(v, got[i], f"{where}[{i}]")
    elif isinstance(shown, float):
        assert got == pytest.approx(shown, abs=1e-6), where
    else:
        assert got == shown, where


def test_every_documented_request(api, runtime):
    with transaction(runtime.sessions) as s:
        build_cascade(s)
        build_base(s)
        build_split(s)
    with transaction(runtime.sessions) as s:
        jobs.refresh_all(s, at(30))
    requests = REQUEST.findall(DOC.read_text())
    assert len(requests) >= 6
    for path, role, kind, body in requests:
        r = api.get(path, role)
        assert r.status_code == 200, (path, r.text)
        if kind == "csv":
            assert r.text == body + "\n", path
        else:
            shown_in(json.loads(body), r.json(), path)


def test_documented_settings_are_the_ones_read():
    text = DOC.read_text()
    for name in re.findall(r"KASKAD_ANALYTICS_\w+", (Path(__file__).parents[2] / "server/kaskad/analytics/attribution.py").read_text()):
        assert name in text
