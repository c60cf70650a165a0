"""The plugin contract. This file is the plugin author's manual.

A plugin is a Python module exposed through the ``kaskad`` entry-point group::

    [project.entry-points.kaskad]
    my_channel = "my_package.plugin"

and implements any of the hooks below with ``@kaskad.hookimpl``. Built-in
channels and mechanics are registered exactly like third-party ones. Each hook
has a page in ``docs/plugins/`` with a runnable example; a test fails when a hook
is missing there.

Registration hooks take a ``register`` callback and call it once per thing they
add; they return nothing. They are called once, when the plugin manager loads.
"""

from __future__ import annotations

from typing import Callable

import pluggy

hookspec = pluggy.HookspecMarker("kaskad")
hookimpl = pluggy.HookimplMarker("kaskad")


@hookspec
def register_channels(register: Callable) -> None:
    """Register message channels.

    Call ``register(channel)`` with an instance of a subclass of
    :class:`kaskad.channels.Channel` for each channel the plugin provides. The
    channel's ``name`` is what a flow's send node names in ``"channel"``; its
    ``config_type`` and ``message_type`` Structs are published as JSON Schema in
    the catalog, and the message Struct validates a send node's ``message``.
    """


@hookspec
def register_mechanics(register: Callable) -> None:
    """Register loyalty mechanics.

    Call ``register(mechanic)`` with an instance of a subclass of
    :class:`kaskad.mechanics.Mechanic`. Its ``name`` is what an award node names
    in ``"mechanic"``; its ``config_type`` Struct validates the award node's
    ``config`` and is published in the catalog.
    """


@hookspec
def register_node_kinds(register: Callable) -> None:
    """Register node kinds beyond the core ones.

    Call ``register(kind)`` with an instance of :class:`kaskad.nodes.NodeKind`.
    A plugin node appears in flow JSON as ``{"kind": <name>, "id": …,
    "config": {…}, "next": …, "ports": {…}}``; its ``config_type`` validates
    ``config`` and its ``ports`` name the extra outgoing ports.
    """
