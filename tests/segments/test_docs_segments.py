"""Every example in docs/segments.md is sent, in order, and answers as the page says."""

from __future__ import annotations

import json
import re
from pathlib import Path

DOC = Path(__file__).parents[2] / "docs" / "segments.md"
# <!-- example: METHOD PATH --> then an optional ```json body, then "Answer" and the ```json answer
EXAMPLE = re.compile(
    r"<!-- example: (?P<method>GET|POST) (?P<path>\S+) -->\n(?:```json\n(?P<body>.*?)\n```\n)?\s*"
    r"Answer(?: \(status (?P<status>\d+)\))?:\s*```json\n(?P<answer>.*?)\n```",
    re.S,
)


def examples():
    return [m.groupdict() for m in EXAMPLE.finditer(DOC.read_text())]


def _subset(doc, got, where="$"):
    """The documented answer, minus fields that vary between runs (they are left out of the page)."""
    if isinstance(doc, dict):
        assert isinstance(got, dict), where
        for k, v in doc.items():
            assert k in got, f"{where}.{k} missing in {got}"
            _subset(v, got[k], f"{where}.{k}")
    elif isinstance(doc, list):
        assert isinstance(got, list) and len(got) == len(doc), f"{where}: {got}"
        for i, (a, b) in enumerate(zip(doc, got)):
            _subset(a, b, f"{where}[{i}]")
    else:
        assert doc == got, f"{where}: documented {doc!r}, got {got!r}"


def test_the_page_has_examples():
    assert len(examples()) == 9


def test_every_example_answers_as_documented(api):
    for ex in examples():
        url = "/api/v1" + ex["path"].removeprefix("/api/v1")
        if ex["method"] == "GET":
            r = api.get(url, role="integrator")
        else:
            role = "integrator" if url.endswith(("/orders", "/events")) else "marketer"
            r = api.post(url, role=role, content=(ex["body"] or "").encode(), headers={"Content-Type": "application/json"})
        assert r.status_code == int(ex["status"] or 200), (url, r.text)
        _subset(json.loads(ex["answer"]), r.json())
