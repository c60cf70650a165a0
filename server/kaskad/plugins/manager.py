"""Load plugins from the ``kaskad`` entry-point group into a :class:`Registry`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Iterable

import msgspec
import pluggy

from kaskad import hookspecs
from kaskad.channels import Channel
from kaskad.flow.model import CORE_KINDS
from kaskad.mechanics import Mechanic
from kaskad.nodes import NodeKind

log = logging.getLogger(__name__)


class PluginError(Exception):
    pass


@dataclass
class Registry:
    """What the loaded plugins registered, by name."""

    channels: dict[str, Channel] = field(default_factory=dict)
    mechanics: dict[str, Mechanic] = field(default_factory=dict)
    node_kinds: dict[str, NodeKind] = field(default_factory=dict)
    plugins: list[str] = field(default_factory=list)
    #: Things a plugin tried to register but could not, with the reason (shown in the catalog).
    errors: list[str] = field(default_factory=list)
    manager: pluggy.PluginManager | None = None

    def _add(self, table: dict, kind: str, base: type, obj) -> None:
        if not isinstance(obj, base):
            raise PluginError(f"{kind} {obj!r} is not a {base.__name__}")
        name = getattr(obj, "name", None)
        if not name:
            raise PluginError(f"{kind} {obj!r} has no name")
        if name in table:
            raise PluginError(f"{kind} {name!r} is registered twice")
        # A Struct that cannot be published as JSON Schema would break the catalog
        # for everyone: refuse this one thing, loudly, and keep the rest working.
        for attr in ("config_type", "message_type"):
            struct = getattr(obj, attr, None)
            if struct is None:
                continue
            try:
                msgspec.json.schema(struct)
            except Exception as exc:
                msg = f"{kind} {name!r} was not loaded: its {attr} {getattr(struct, '__name__', struct)} is invalid: {exc}"
                log.error(msg)
                self.errors.append(msg)
                return
        table[name] = obj

    def add_channel(self, channel: Channel) -> None:
        self._add(self.channels, "channel", Channel, channel)

    def add_mechanic(self, mechanic: Mechanic) -> None:
        self._add(self.mechanics, "mechanic", Mechanic, mechanic)

    def add_node_kind(self, kind: NodeKind) -> None:
        if getattr(kind, "name", None) in CORE_KINDS:
            raise PluginError(f"node kind {kind.name!r} is a core kind")
        self._add(self.node_kinds, "node kind", NodeKind, kind)


def make_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("kaskad")
    pm.add_hookspecs(hookspecs)
    return pm


def load_registry(allow: Iterable[str] | None = None, extra: Iterable[object] = ()) -> Registry:
    """Load every ``kaskad`` entry point (or only those named in ``allow``) plus ``extra`` modules."""
    pm = make_manager()
    allowed = set(allow) if allow is not None else None
    registry = Registry(manager=pm)
    for ep in sorted(entry_points(group="kaskad"), key=lambda e: e.name):
        if allowed is not None and ep.name not in allowed:
            continue
        try:
            module = ep.load()
        except Exception as exc:  # a broken plugin is named, not a crash deep inside
            raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed to import: {exc}") from exc
        pm.register(module, name=ep.name)
        registry.plugins.append(ep.name)
    for i, module in enumerate(extra):
        pm.register(module, name=f"extra-{i}")
        registry.plugins.append(getattr(module, "__name__", f"extra-{i}"))
    pm.hook.register_channels(register=registry.add_channel)
    pm.hook.register_mechanics(register=registry.add_mechanic)
    pm.hook.register_node_kinds(register=registry.add_node_kind)
    return registry
