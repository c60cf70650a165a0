"""Flow validation that reports every error at once.

Each :class:`FlowError` names the node (its id, or ``None`` for flow-level
fields) and a field path such as ``nodes[3].message.subject``, so the editor can
put the message on the node and the field. Nodes are decoded one by one so one
bad node does not hide the others; graph rules (targets, reachability, cycles)
run on whatever decoded.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Iterator

import msgspec
from croniter import croniter

from kaskad import templates
from kaskad.flow import model
from kaskad.flow.durations import PATTERN as DURATION_PATTERN
from kaskad.flow.graph import cycles_without_wait, reachable
from kaskad.flow.durations import DurationError, parse_duration

#: A document larger than this is refused before it is parsed.
MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
MAX_NODES = 1000
_TOO_DEEP = "the document is nested too deeply"


class FlowError(msgspec.Struct, kw_only=True):
    """One problem in a flow: which node (``None`` = the flow itself), which field, what is wrong."""

    node: str | None
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.node or '-'}: {self.path or '-'}: {self.message}"


_PATTERN_WORDS = {
    DURATION_PATTERN: "an ISO-8601 duration such as P3D, PT2H30M or P1M",
    r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$": "a node id: a letter, then letters, digits, - or _ (at most 64 characters)",
    r"^[a-z0-9][a-z0-9_\-]{0,119}$": "a flow key: lowercase letters, digits, - or _ (at most 120 characters)",
    r"^([01]\d|2[0-3]):[0-5]\d$": "a local time HH:MM such as 09:30",
}
_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_REGEX = re.compile(r"Expected `str` matching regex '(?P<re>.*)'$", re.S)


def _join(base: str, sub: str) -> str:
    if not sub:
        return base
    if not base:
        return sub.lstrip(".")
    return base + sub if sub.startswith("[") else f"{base}.{sub.lstrip('.')}"


def _convert_error(exc: msgspec.ValidationError, node: str | None, base: str, value: Any = None) -> FlowError:
    """Turn msgspec's ``Expected … - at `$.x``` into a FlowError with a full path and plain words."""
    m = _AT.match(str(exc))
    msg, sub = m.group("msg"), m.group("path") or ""
    rx = _REGEX.match(msg)
    if rx:
        rxs = rx.group("re").replace("\\\\", "\\")  # msgspec shows the pattern repr-escaped
        msg = f"expected {_PATTERN_WORDS.get(rxs, 'a string matching ' + rxs)}"
    elif msg.startswith("Invalid value") and sub.endswith(".kind"):
        msg = f"unknown kind {msg.removeprefix('Invalid value ')}"
    elif msg.startswith("Object missing required field"):
        field = msg.split("`")[1]
        return FlowError(node=node, path=_join(_join(base, sub), field), message=f"{field} is required")
    elif msg.startswith("Object contains unknown field"):
        field = msg.split("`")[1]
        return FlowError(node=node, path=_join(_join(base, sub), field), message=f"unknown field {field!r}")
    else:
        msg = msg[0].lower() + msg[1:] if msg else msg
    return FlowError(node=node, path=_join(base, sub), message=msg)


def _convert(value: Any, typ: Any, errors: list[FlowError], node: str | None, path: str) -> Any:
    try:
        return msgspec.convert(value, typ)
    except msgspec.ValidationError as exc:
        errors.append(_convert_error(exc, node, path))
        return None


def parse_document(document: bytes | str | dict) -> tuple[dict | None, list[FlowError]]:
    """Bytes/str → dict, or the error saying why not."""
    if isinstance(document, dict):
        return document, []
    if isinstance(document, str):
        document = document.encode()
    if len(document) > MAX_DOCUMENT_BYTES:
        return None, [FlowError(node=None, path="", message=f"the flow document is {len(document)} bytes; the limit is {MAX_DOCUMENT_BYTES}")]
    try:
        data = msgspec.json.decode(document)
    except msgspec.DecodeError as exc:
        return None, [FlowError(node=None, path="", message=f"malformed JSON: {exc}")]
    except RecursionError:
        return None, [FlowError(node=None, path="", message=_TOO_DEEP)]
    if not isinstance(data, dict):
        return None, [FlowError(node=None, path="", message=f"a flow is a JSON object, got {type(data).__name__ if data is not None else 'null'}")]
    return data, []


# ---------------------------------------------------------------- decoding


def _node_id(raw: Any) -> str | None:
    return raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None


def _decode_node(raw: Any, i: int, registry, errors: list[FlowError]) -> Any:
    path = f"nodes[{i}]"
    nid = _node_id(raw)
    if not isinstance(raw, dict):
        errors.append(FlowError(node=None, path=path, message="a node is a JSON object"))
        return None
    kind = raw.get("kind")
    if isinstance(kind, str) and kind in model.CORE_KINDS:
        return _convert(raw, model.CORE_KINDS[kind], errors, nid, path)
    plugin = registry.node_kinds.get(kind) if registry is not None and isinstance(kind, str) else None
    if plugin is None:
        known = sorted([*model.CORE_KINDS, *(registry.node_kinds if registry is not None else ())])
        what = "kind is required" if kind is None else f"unknown node kind {kind!r}"
        errors.append(FlowError(node=nid, path=f"{path}.kind", message=f"{what}; known kinds: {', '.join(known)}"))
        return None
    node = _convert(raw, model.PluginNode, errors, nid, path)
    if node is not None and plugin.config_type is not None:
        _convert(node.config, plugin.config_type, errors, nid, f"{path}.config")
    if node is not None:
        for port in node.ports:
            if port not in plugin.ports:
                errors.append(FlowError(node=nid, path=f"{path}.ports.{port}", message=f"kind {kind!r} has no port {port!r}; its ports: next, {', '.join(plugin.ports) or '(none)'}"))
    return node


def decode_stored(document: bytes | str) -> model.Flow:
    """Decode a stored, already validated document (plugin kinds become :class:`PluginNode`)."""
    data = msgspec.json.decode(document)
    nodes = [
        msgspec.convert(n, model.CORE_KINDS[n["kind"]] if n.get("kind") in model.CORE_KINDS else model.PluginNode)
        for n in data["nodes"]
    ]
    return _build(data, nodes)


def _build(data: dict, nodes: list) -> model.Flow:
    top = msgspec.convert({**data, "nodes": []}, model.Flow)
    return msgspec.structs.replace(top, nodes=nodes)


_TOP_FIELDS = {f.encode_name: f for f in msgspec.structs.fields(model.Flow)}


# ---------------------------------------------------------------- the rules


def _duration(value: str | None, node: str | None, path: str, errors: list[FlowError], positive: bool = True) -> None:
    if value is None:
        return
    try:
        d = parse_duration(value)
        d.add_to(datetime(2000, 1, 1, tzinfo=timezone.utc))
    except DurationError as exc:
        errors.append(FlowError(node=node, path=path, message=str(exc)))
        return
    except (OverflowError, ValueError):
        errors.append(FlowError(node=node, path=path, message=f"{value!r} is too long a duration"))
        return
    if positive and d.approx().total_seconds() <= 0:
        errors.append(FlowError(node=node, path=path, message=f"{value!r} must be longer than zero"))


def _conditions(cond: Any, path: str) -> Iterator[tuple[Any, str]]:
    yield cond, path
    if isinstance(cond, (model.AllOf, model.AnyOf)):
        for j, c in enumerate(cond.conditions):
            yield from _conditions(c, f"{path}.conditions[{j}]")
    elif isinstance(cond, model.NotCondition):
        yield from _conditions(cond.condition, f"{path}.condition")


def _check_templates(value: Any, node: str, path: str, errors: list[FlowError], html: bool = False) -> None:
    if isinstance(value, str):
        try:
            templates.check(value, html=html)
        except templates.TemplateError as exc:
            errors.append(FlowError(node=node, path=path, message=str(exc)))
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_templates(v, node, f"{path}.{k}", errors, html=k == "html")
    elif isinstance(value, list):
        for j, v in enumerate(value):
            _check_templates(v, node, f"{path}[{j}]", errors, html=html)


def _check_message(channel_name: str, message: dict, template: str | None, registry, node: str, path: str, errors: list[FlowError]) -> None:
    channel = registry.channels.get(channel_name) if registry is not None else None
    if channel is None:
        known = ", ".join(sorted(registry.channels)) if registry is not None else ""
        errors.append(FlowError(node=node, path=f"{path}.channel", message=f"unknown channel {channel_name!r}; installed channels: {known or '(none)'}"))
    elif channel.message_type is not None and not (template and not message):
        _convert(message, channel.message_type, errors, node, f"{path}.message")
    _check_templates(message, node, f"{path}.message", errors)


def _ports(node: Any, i: int) -> list[tuple[str, str, str | None]]:
    """(port name, field path, target) of every outgoing port."""
    p = f"nodes[{i}]"
    if isinstance(node, model.WaitNode):
        out = [("next", f"{p}.next", node.next)]
        if node.until_event is not None:
            out.append(("on_timeout", f"{p}.on_timeout", node.on_timeout))
        return out
    if isinstance(node, model.BranchNode):
        out = [(f"case:{c.name or j}", f"{p}.cases[{j}].next", c.next) for j, c in enumerate(node.cases)]
        return out + [("else", f"{p}.else", node.else_)]
    if isinstance(node, model.SplitNode):
        return [(f"path:{s.name}", f"{p}.paths[{j}].next", s.next) for j, s in enumerate(node.paths) if not s.holdout]
    if isinstance(node, model.ExitNode):
        return []
    if isinstance(node, model.PluginNode):  # as model.ports: next is optional when named ports exist
        out = [("next", f"{p}.next", node.next)] if node.next is not None or not node.ports else []
        return out + [(k, f"{p}.ports.{k}", v) for k, v in node.ports.items()]
    return [("next", f"{p}.next", node.next)]


def _check_node(node: Any, i: int, registry, kinds: dict[str, str], errors: list[FlowError]) -> None:
    nid, p = node.id, f"nodes[{i}]"
    if isinstance(node, model.WaitNode):
        modes = [k for k, v in (("for", node.for_), ("until_time", node.until_time), ("until_date", node.until_date), ("until_event", node.until_event)) if v is not None]
        if len(modes) != 1:
            errors.append(FlowError(node=nid, path=p, message=f"a wait needs exactly one of for, until_time, until_date, until_event; it has {', '.join(modes) or 'none'}"))
        _duration(node.for_, nid, f"{p}.for", errors)
        window = node.until_time
        if window is not None and window.from_ == window.to:
            errors.append(FlowError(node=nid, path=f"{p}.until_time.to", message=f"the window {window.from_}–{window.to} is empty; 'to' must differ from 'from' (a 'to' before 'from' spans midnight)"))
        if window is not None and window.days is not None and not window.days:
            errors.append(FlowError(node=nid, path=f"{p}.until_time.days", message="no days: the wait would never end; list days or leave days out for every day"))
        if node.until_date is not None:
            _duration(node.until_date.offset, nid, f"{p}.until_date.offset", errors, positive=False)
        if node.until_event is not None:
            _duration(node.until_event.timeout, nid, f"{p}.until_event.timeout", errors)
        elif node.on_timeout is not None:
            errors.append(FlowError(node=nid, path=f"{p}.on_timeout", message="on_timeout is only for a wait until_event; remove it"))
    elif isinstance(node, model.BranchNode):
        if not node.cases:
            errors.append(FlowError(node=nid, path=f"{p}.cases", message="a branch needs at least one case"))
        names: set[str] = set()
        for j, case in enumerate(node.cases):
            if case.name is not None:
                if case.name in names:
                    errors.append(FlowError(node=nid, path=f"{p}.cases[{j}].name", message=f"case name {case.name!r} is used twice"))
                names.add(case.name)
            for cond, cpath in _conditions(case.when, f"{p}.cases[{j}].when"):
                _check_condition(cond, cpath, nid, kinds, errors)
    elif isinstance(node, model.SplitNode):
        if not node.paths:
            errors.append(FlowError(node=nid, path=f"{p}.paths", message="a split needs at least one path"))
        total = sum(s.weight for s in node.paths)
        if node.paths and total != 100:
            errors.append(FlowError(node=nid, path=f"{p}.paths", message=f"path weights sum to {total}; they must sum to 100"))
        seen: set[str] = set()
        for j, s in enumerate(node.paths):
            if s.name in seen:
                errors.append(FlowError(node=nid, path=f"{p}.paths[{j}].name", message=f"path name {s.name!r} is used twice"))
            seen.add(s.name)
            if s.holdout and s.next is not None:
                errors.append(FlowError(node=nid, path=f"{p}.paths[{j}].next", message="a holdout path receives nothing and ends the run; remove next"))
    elif isinstance(node, model.SendNode):
        _check_message(node.channel, node.message, node.template, registry, nid, p, errors)
        for j, step in enumerate(node.cascade):
            sp = f"{p}.cascade[{j}]"
            _duration(step.after, nid, f"{sp}.after", errors)
            _check_message(step.channel, step.message, step.template, registry, nid, sp, errors)
    elif isinstance(node, model.AwardNode):
        mechanic = registry.mechanics.get(node.mechanic) if registry is not None else None
        if mechanic is None:
            known = ", ".join(sorted(registry.mechanics)) if registry is not None else ""
            errors.append(FlowError(node=nid, path=f"{p}.mechanic", message=f"unknown mechanic {node.mechanic!r}; installed mechanics: {known or '(none)'}"))
        elif mechanic.config_type is not None:
            _convert(node.config, mechanic.config_type, errors, nid, f"{p}.config")


def _check_condition(cond: Any, path: str, nid: str | None, kinds: dict[str, str], errors: list[FlowError]) -> None:
    if isinstance(cond, model.EventCondition):
        if cond.since is not None and cond.within is not None:
            errors.append(FlowError(node=nid, path=path, message="use either since or within, not both"))
        _duration(cond.within, nid, f"{path}.within", errors)
    elif isinstance(cond, model.EngagementCondition):
        kind = kinds.get(cond.node)
        if kind is None:
            errors.append(FlowError(node=nid, path=f"{path}.node", message=f"no node {cond.node!r} in this flow"))
        elif kind != "send":
            errors.append(FlowError(node=nid, path=f"{path}.node", message=f"node {cond.node!r} is a {kind} node; engagement is about a send node"))


def _check_flow_fields(e: Any, r: Any, goal: Any, errors: list[FlowError]) -> None:
    if isinstance(e, model.SegmentEntry):
        if e.on == "schedule":
            if not e.schedule:
                errors.append(FlowError(node=None, path="entry.schedule", message="entry on schedule needs a cron expression in schedule, e.g. '0 10 * * mon'"))
            elif not croniter.is_valid(e.schedule):
                errors.append(FlowError(node=None, path="entry.schedule", message=f"{e.schedule!r} is not a valid cron expression (five fields: minute hour day month weekday)"))
        elif e.schedule is not None:
            errors.append(FlowError(node=None, path="entry.schedule", message="schedule is only used with on: schedule"))
    elif isinstance(e, model.DateEntry):
        _duration(e.offset, None, "entry.offset", errors, positive=False)
    elif isinstance(e, model.AbandonedCartEntry):
        _duration(e.after, None, "entry.after", errors)
    elif isinstance(e, model.ReplenishmentEntry):
        _duration(e.lead, None, "entry.lead", errors)
    if r is not None:
        if r.policy == "after" and r.cooldown is None:
            errors.append(FlowError(node=None, path="reentry.cooldown", message="re-entry 'after' needs a cooldown, e.g. P90D"))
        elif r.policy != "after" and r.cooldown is not None:
            errors.append(FlowError(node=None, path="reentry.cooldown", message=f"a cooldown is only used with policy 'after', not {r.policy!r}"))
        _duration(r.cooldown, None, "reentry.cooldown", errors)
    if goal is not None:
        _duration(goal.within, None, "goal.within", errors)


def validate(document: bytes | str | dict, registry) -> tuple[model.Flow | None, list[FlowError]]:
    """Validate a flow document against the core rules and the installed plugins.

    Returns the decoded :class:`~kaskad.flow.model.Flow` when there is no error,
    else ``None`` and every error found.
    """
    data, errors = parse_document(document)
    if data is None:
        return None, errors
    try:
        return _validate(data, registry)
    except RecursionError:
        return None, [FlowError(node=None, path="", message=_TOO_DEEP)]


def _validate(data: dict, registry) -> tuple[model.Flow | None, list[FlowError]]:
    errors: list[FlowError] = []
    top: dict[str, Any] = {}
    for key, value in data.items():
        f = _TOP_FIELDS.get(key)
        if f is None:
            errors.append(FlowError(node=None, path=key, message=f"unknown field {key!r}; a flow has: {', '.join(_TOP_FIELDS)}"))
        elif key == "schema" and value != model.SCHEMA_VERSION:
            errors.append(FlowError(node=None, path="schema", message=f"schema must be {model.SCHEMA_VERSION!r}, got {value!r}"))
        elif key != "nodes":
            top[key] = _convert(value, f.type, errors, None, key)
    for f in _TOP_FIELDS.values():
        if f.required and f.encode_name not in data:
            errors.append(FlowError(node=None, path=f.encode_name, message=f"{f.encode_name} is required"))

    raw_nodes = data.get("nodes")
    nodes: list[tuple[int, Any]] = []
    raw_ids: list[tuple[int, str]] = []
    if "nodes" in data and not isinstance(raw_nodes, list):
        errors.append(FlowError(node=None, path="nodes", message="nodes is a list of node objects"))
    elif isinstance(raw_nodes, list):
        if not raw_nodes:
            errors.append(FlowError(node=None, path="nodes", message="a flow needs at least one node"))
        if len(raw_nodes) > MAX_NODES:
            errors.append(FlowError(node=None, path="nodes", message=f"{len(raw_nodes)} nodes; the limit is {MAX_NODES}"))
            raw_nodes = raw_nodes[:MAX_NODES]
        for i, raw in enumerate(raw_nodes):
            nid = _node_id(raw)
            if nid is not None:
                raw_ids.append((i, nid))
            node = _decode_node(raw, i, registry, errors)
            if node is not None:
                nodes.append((i, node))

    # ids and kinds, from the raw nodes too, so a node that failed to decode does not
    # also make every edge to it an "unknown target".
    first: dict[str, int] = {}
    for i, nid in raw_ids:
        if nid in first:
            errors.append(FlowError(node=nid, path=f"nodes[{i}].id", message=f"duplicate id {nid!r}: nodes[{first[nid]}] has it too"))
        else:
            first[nid] = i
    kinds = {nid: raw_nodes[i].get("kind") for i, nid in raw_ids if first[nid] == i}

    for i, node in nodes:
        _check_node(node, i, registry, kinds, errors)

    graph: dict[str, list[str]] = {}
    for i, node in nodes:
        targets = graph.setdefault(node.id, [])
        for port, path, target in _ports(node, i):
            if target is None:
                errors.append(FlowError(node=node.id, path=path, message=f"port {port!r} is not connected; connect it to a node (an exit node ends the run)"))
            elif target not in first:
                errors.append(FlowError(node=node.id, path=path, message=f"port {port!r} leads to {target!r}, which is not a node in this flow"))
            else:
                targets.append(target)

    start = top.get("start") if "start" in data else (raw_ids[0][1] if raw_ids and raw_ids[0][0] == 0 else None)
    if "start" in data and start is not None and start not in first:
        errors.append(FlowError(node=None, path="start", message=f"start names {start!r}, which is not a node in this flow"))
    if start in first and len(nodes) == len(raw_ids) == len(raw_nodes or []):
        seen = reachable(graph, start)
        for i, nid in raw_ids:
            if nid not in seen and first[nid] == i:
                errors.append(FlowError(node=nid, path=f"nodes[{i}]", message=f"node {nid!r} cannot be reached from the start node {start!r}"))
    for comp in cycles_without_wait(graph, kinds):
        errors.append(FlowError(node=comp[0], path=f"nodes[{first[comp[0]]}]", message=f"these nodes form a loop without a wait: {', '.join(comp)}; put a wait node in the loop so a run cannot spin"))

    layout = top.get("layout") or {}
    for nid in layout:
        if nid not in first:
            errors.append(FlowError(node=None, path=f"layout.{nid}", message=f"layout names {nid!r}, which is not a node in this flow"))

    _check_flow_fields(top.get("entry"), top.get("reentry"), top.get("goal"), errors)

    if errors:
        return None, errors
    return _build(data, [n for _, n in nodes]), []

