"""Node kinds added by plugins (core kinds live in :mod:`kaskad.flow.model`)."""

from __future__ import annotations

from typing import Any, Callable, ClassVar

import msgspec


class NodeKind:
    """A node kind registered through ``register_node_kinds``."""

    name: ClassVar[str]
    title: ClassVar[str] = ""
    config_type: ClassVar[type[msgspec.Struct] | None] = None
    #: Extra outgoing port names besides ``next``.
    ports: ClassVar[tuple[str, ...]] = ()
    #: Called by the engine with (session, runs, config); returns the port each run leaves by.
    handle: ClassVar[Callable[..., Any] | None] = None
