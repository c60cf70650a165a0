"""``GET /api/v1/catalog``: node kinds, channels and mechanics with their JSON Schemas."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import get

from kaskad.api.auth import ANY_ROLE
from kaskad.flow import model
from kaskad.runtime import Runtime
from kaskad.segments.model import Segment


def _schema(struct: type | None) -> dict[str, Any] | None:
    return msgspec.json.schema(struct) if struct is not None else None


def _doc(t: type) -> str:
    return (t.__doc__ or "").strip()


def build_catalog(runtime: Runtime) -> dict[str, Any]:
    reg = runtime.registry
    kinds = [
        {
            "kind": kind,
            "title": kind.capitalize(),
            "description": _doc(struct),
            "core": True,
            "schema": _schema(struct),
        }
        for kind, struct in model.CORE_KINDS.items()
    ]
    kinds += [
        {
            "kind": k.name,
            "title": k.title or k.name,
            "description": _doc(type(k)),
            "core": False,
            "ports": ["next", *k.ports],
            "schema": _schema(k.config_type),
        }
        for k in reg.node_kinds.values()
    ]
    return {
        "flow_schema": model.flow_json_schema(),
        "segment_schema": msgspec.json.schema(Segment),
        "node_kinds": kinds,
        "channels": [
            {
                "name": c.name,
                "title": c.title or c.name,
                "address_field": c.address_field,
                "config_schema": _schema(c.config_type),
                "message_schema": _schema(c.message_type),
            }
            for c in reg.channels.values()
        ],
        "mechanics": [
            {"name": m.name, "title": m.title or m.name, "config_schema": _schema(m.config_type)}
            for m in reg.mechanics.values()
        ],
        "plugin_errors": list(reg.errors),
    }


@get("/catalog", guards=[ANY_ROLE], sync_to_thread=False)
def catalog(runtime: Runtime) -> dict[str, Any]:
    """Everything a flow can use: node kinds, channels, mechanics, each with its JSON Schema; and the segment schema."""
    cached = runtime.extras.get("catalog")
    if cached is None:
        cached = runtime.extras["catalog"] = build_catalog(runtime)
    return cached


routes = [catalog]
