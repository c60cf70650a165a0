"""A small valid flow using only the built-in test channel and noop mechanic."""

from __future__ import annotations

import copy
from typing import Any

BASE: dict[str, Any] = {
    "schema": "kaskad.flow/1",
    "key": "sample",
    "name": "Sample",
    "entry": {"kind": "event", "event": "signed_up"},
    "nodes": [
        {"id": "hello", "kind": "send", "channel": "test", "message": {"text": "Hi {{ contact.email }}"}, "next": "gift"},
        {"id": "gift", "kind": "award", "mechanic": "noop", "config": {"label": "x"}, "next": "pause"},
        {"id": "pause", "kind": "wait", "for": "P1D", "next": "check"},
        {
            "id": "check",
            "kind": "branch",
            "cases": [{"when": {"kind": "engagement", "node": "hello", "status": "opened"}, "next": "bye"}],
            "else": "bye",
        },
        {"id": "bye", "kind": "exit"},
    ],
}


def sample(**top: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    doc.update(top)
    return doc


def node(doc: dict[str, Any], nid: str) -> dict[str, Any]:
    return next(n for n in doc["nodes"] if n["id"] == nid)
