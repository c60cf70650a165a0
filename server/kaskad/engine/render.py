"""What a message template sees.

- ``contact``: ``external_id``, ``email``, ``phone``, ``timezone``, ``attributes``, ``tags``;
- ``event``: the event that started the run (``name``, ``properties``, ``time``), if any;
- ``awards``: every award of this run by node id, brought up to date (a melting
  discount shows its current percent); ``award``: the most recent one;
- ``links``: signed per-message links (unsubscribe, open pixel) when the server can make them;
  ``links.cart`` and other links come from the event's ``links`` property;
- ``shop``: ``KASKAD_SHOP_NAME`` and ``KASKAD_PUBLIC_URL``;
- ``flow``: ``key`` and ``name``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, Callable

log = logging.getLogger("kaskad.engine")


def render_context(ctx, plan, run, contact: dict, key: str, channel: str, topic: str | None) -> dict[str, Any]:
    awards = _fresh_awards(ctx, plan, run)
    latest = list(awards.values())[-1] if awards else {}
    event = run.context.get("event") or {}
    given = dict(event.get("properties", {}).get("links") or {}) if isinstance(event.get("properties"), dict) else {}
    links = LazyLinks(given, lambda: _message_links(ctx, key, contact["id"], channel, topic))
    settings = ctx.runtime.settings
    return {
        "contact": {k: contact.get(k) for k in ("external_id", "email", "phone", "timezone", "attributes", "tags")},
        "event": event,
        "awards": awards,
        "award": latest,
        "links": links,
        "shop": {"name": os.environ.get("KASKAD_SHOP_NAME", ""), "url": settings.public_url},
        "flow": {"key": plan.key, "name": plan.flow.name},
    }


class LazyLinks(Mapping):
    """``links`` of the template context: the signed links are made only if a template reads them
    (two HMACs per message were a tenth of a send batch's CPU, for templates that mostly show none)."""

    __slots__ = ("_given", "_make", "_all")

    def __init__(self, given: dict[str, str], make: Callable[[], dict[str, str]]):
        self._given, self._make, self._all = given, make, None

    def _links(self) -> dict[str, str]:
        if self._all is None:
            self._all = {**self._given, **self._make()}
        return self._all

    def __getitem__(self, name: str) -> str:
        return self._links()[name]

    def __iter__(self):
        return iter(self._links())

    def __len__(self) -> int:
        return len(self._links())


def _fresh_awards(ctx, plan, run) -> dict[str, Any]:
    out = {}
    for node_id, result in (run.context.get("awards") or {}).items():
        node = plan.node(node_id)
        mechanic = ctx.runtime.registry.mechanics.get(getattr(node, "mechanic", None) or "")
        if mechanic is not None and result:
            try:
                result = mechanic.refresh(ctx.session, result)
            except Exception:  # a stale figure is better than no message
                log.exception("refresh of award %s failed", node_id)
        out[node_id] = result
    return out


def _message_links(ctx, key: str, contact_id: int, channel: str, topic: str | None) -> dict[str, str]:
    if _links is None:
        return {}
    return _links(ctx.runtime.settings, key, contact_id, channel, topic)


try:  # signed per-message links, when the delivery area provides them
    from kaskad.delivery.links import message_links as _links
except ImportError:  # pragma: no cover - depends on the build
    _links = None
