"""Every validation rule, each with a flow that breaks it; the error names the node and the field."""

from __future__ import annotations

import msgspec
import pytest

from kaskad.flow import model
from kaskad.flow.validate import validate
from kaskad.plugins.manager import load_registry
from kaskad.nodes import NodeKind

from tests.flow.helpers import node, sample


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def errors_of(doc, registry):
    flow, errors = validate(doc, registry)
    assert flow is None and errors, "expected errors"
    return [(e.node, e.path, e.message) for e in errors]


def has(errors, node_id, path, *words):
    hits = [e for e in errors if e[0] == node_id and e[1] == path and all(w in e[2] for w in words)]
    assert hits, f"no error ({node_id}, {path}, {words}) in {errors}"


def test_the_sample_is_valid_and_decodes(registry):
    flow, errors = validate(sample(), registry)
    assert errors == []
    assert isinstance(flow, model.Flow) and flow.start_id == "hello"
    assert isinstance(flow.nodes[2], model.WaitNode)


def test_bytes_and_malformed_json(registry):
    flow, errors = validate(msgspec.json.encode(sample()), registry)
    assert flow is not None and errors == []
    errs = errors_of(b'{"schema": ', registry)
    assert errs[0][0] is None and "malformed JSON" in errs[0][2]
    errs = errors_of(b"[1, 2]", registry)
    assert "JSON object" in errs[0][2] and "list" in errs[0][2]


def test_top_level_fields(registry):
    doc = sample(schema="kaskad.flow/9", key="Bad Key", extra=1)
    del doc["name"], doc["entry"]
    errs = errors_of(doc, registry)
    has(errs, None, "schema", "kaskad.flow/1")
    has(errs, None, "key", "flow key")
    has(errs, None, "extra", "unknown field")
    has(errs, None, "name", "required")
    has(errs, None, "entry", "required")
    errs = errors_of(sample(nodes=[]), registry)
    has(errs, None, "nodes", "at least one node")
    errs = errors_of(sample(nodes={"a": 1}), registry)
    has(errs, None, "nodes", "list")


def test_each_node_is_decoded_alone_and_all_errors_are_reported(registry):
    doc = sample()
    node(doc, "hello")["colour"] = "red"
    node(doc, "pause")["for"] = 3
    doc["nodes"].insert(4, {"id": "odd", "kind": "teleport", "next": "bye"})
    errs = errors_of(doc, registry)
    has(errs, "hello", "nodes[0].colour", "unknown field")
    has(errs, "pause", "nodes[2].for", "Expected `str`".lower()[:8])
    has(errs, "odd", "nodes[4].kind", "unknown node kind 'teleport'", "wait")
    assert len(errs) == 3


def test_plugin_node_kinds_check_their_config(registry):
    class Limit(msgspec.Struct, forbid_unknown_fields=True):
        max: int

    class Throttle(NodeKind):
        name = "throttle"
        config_type = Limit
        ports = ("over",)

    reg = load_registry()
    reg.add_node_kind(Throttle())
    doc = sample()
    doc["nodes"].insert(4, {"id": "thr", "kind": "throttle", "config": {"max": 5}, "next": "bye", "ports": {"over": "bye"}})
    node(doc, "check")["else"] = "thr"
    flow, errors = validate(doc, reg)
    assert errors == [] and isinstance(flow.nodes[4], model.PluginNode)
    node(doc, "thr")["config"] = {"max": "many"}
    node(doc, "thr")["ports"] = {"under": "bye"}
    errs = errors_of(doc, reg)
    has(errs, "thr", "nodes[4].config.max", "int")
    has(errs, "thr", "nodes[4].ports.under", "no port 'under'")


def test_duplicate_ids(registry):
    doc = sample()
    doc["nodes"].append({"id": "pause", "kind": "exit"})
    has(errors_of(doc, registry), "pause", "nodes[5].id", "duplicate id", "nodes[2]")


def test_unknown_and_missing_targets(registry):
    doc = sample()
    node(doc, "hello")["next"] = "nowhere"
    del node(doc, "gift")["next"]
    errs = errors_of(doc, registry)
    has(errs, "hello", "nodes[0].next", "'nowhere'", "not a node")
    has(errs, "gift", "nodes[1].next", "not connected")


def test_start_must_exist(registry):
    has(errors_of(sample(start="nope"), registry), None, "start", "'nope'")


def test_unreachable_nodes(registry):
    doc = sample()
    doc["nodes"].append({"id": "island", "kind": "exit"})
    has(errors_of(doc, registry), "island", "nodes[5]", "cannot be reached")


def test_branch_needs_else_and_cases(registry):
    doc = sample()
    del node(doc, "check")["else"]
    has(errors_of(doc, registry), "check", "nodes[3].else", "not connected")
    doc = sample()
    node(doc, "check")["cases"] = []
    has(errors_of(doc, registry), "check", "nodes[3].cases", "at least one case")


def test_split_weights_and_holdout(registry):
    doc = sample()
    check = node(doc, "check")
    check.clear()
    check.update(
        {
            "id": "check",
            "kind": "split",
            "paths": [
                {"name": "a", "weight": 50, "next": "bye"},
                {"name": "a", "weight": 40, "next": "bye"},
                {"name": "control", "weight": 5, "holdout": True, "next": "bye"},
            ],
        }
    )
    errs = errors_of(doc, registry)
    has(errs, "check", "nodes[3].paths", "sum to 95")
    has(errs, "check", "nodes[3].paths[1].name", "used twice")
    has(errs, "check", "nodes[3].paths[2].next", "holdout")
    node(doc, "check")["paths"] = [{"name": "a", "weight": 90, "next": "bye"}, {"name": "control", "weight": 10, "holdout": True}]
    assert validate(doc, registry)[1] == []


def test_cycle_without_a_wait(registry):
    doc = sample()
    node(doc, "check")["else"] = "hello"  # through the wait: fine
    assert validate(doc, registry)[1] == []
    node(doc, "gift")["next"] = "hello"
    errs = errors_of(doc, registry)
    has(errs, "gift", "nodes[1]", "loop without a wait", "hello")


def test_unknown_channel_and_mechanic(registry):
    doc = sample()
    node(doc, "hello")["channel"] = "pigeon"
    node(doc, "gift")["mechanic"] = "magic"
    node(doc, "hello")["cascade"] = [{"after": "P1D", "channel": "smoke", "message": {"text": "x"}}]
    errs = errors_of(doc, registry)
    has(errs, "hello", "nodes[0].channel", "unknown channel 'pigeon'", "test")
    has(errs, "hello", "nodes[0].cascade[0].channel", "unknown channel 'smoke'")
    has(errs, "gift", "nodes[1].mechanic", "unknown mechanic 'magic'", "noop")


def test_message_and_award_config_follow_the_plugins_structs(registry):
    doc = sample()
    node(doc, "hello")["message"] = {"txt": "typo"}
    node(doc, "hello")["cascade"] = [{"after": "PT2H", "channel": "test", "message": {"text": 5}}]
    node(doc, "gift")["config"] = {"label": 7}
    errs = errors_of(doc, registry)
    has(errs, "hello", "nodes[0].message.txt", "unknown field")
    has(errs, "hello", "nodes[0].cascade[0].message.text", "str")
    has(errs, "gift", "nodes[1].config.label", "str")


def test_template_syntax_errors_name_the_field(registry):
    doc = sample()
    node(doc, "hello")["message"] = {"text": "Hi {{ name", "subject": "{% if %}"}
    errs = errors_of(doc, registry)
    has(errs, "hello", "nodes[0].message.text", "line 1")
    has(errs, "hello", "nodes[0].message.subject", "syntax")


def test_bad_durations(registry):
    doc = sample(goal={"event": "order_placed", "within": "P99999999999D"})
    node(doc, "pause")["for"] = "PT0S"
    errs = errors_of(doc, registry)
    has(errs, "pause", "nodes[2].for", "longer than zero")
    has(errs, None, "goal.within", "too long")
    node(doc, "pause")["for"] = "3 days"
    has(errors_of(doc, registry), "pause", "nodes[2].for", "ISO-8601 duration")


def test_wait_modes_and_timeout_port(registry):
    doc = sample()
    node(doc, "pause")["until_time"] = {"from": "09:00", "to": "18:00"}
    has(errors_of(doc, registry), "pause", "nodes[2]", "exactly one", "for, until_time")
    doc = sample()
    del node(doc, "pause")["for"]
    has(errors_of(doc, registry), "pause", "nodes[2]", "exactly one", "none")
    doc = sample()
    node(doc, "pause")["on_timeout"] = "bye"
    has(errors_of(doc, registry), "pause", "nodes[2].on_timeout", "only for a wait until_event")
    doc = sample()
    del node(doc, "pause")["for"]
    node(doc, "pause")["until_event"] = {"event": "order_placed", "timeout": "P2D"}
    has(errors_of(doc, registry), "pause", "nodes[2].on_timeout", "not connected")
    node(doc, "pause")["on_timeout"] = "bye"
    assert validate(doc, registry)[1] == []


def test_reentry_after_needs_a_cooldown(registry):
    has(errors_of(sample(reentry={"policy": "after"}), registry), None, "reentry.cooldown", "cooldown")
    has(errors_of(sample(reentry={"policy": "once", "cooldown": "P1D"}), registry), None, "reentry.cooldown", "only used")
    assert validate(sample(reentry={"policy": "after", "cooldown": "P30D"}), registry)[1] == []


def test_segment_schedule_needs_a_valid_cron(registry):
    doc = sample(entry={"kind": "segment", "segment": "vip", "on": "schedule", "schedule": "every monday"})
    has(errors_of(doc, registry), None, "entry.schedule", "not a valid cron")
    doc = sample(entry={"kind": "segment", "segment": "vip", "on": "schedule"})
    has(errors_of(doc, registry), None, "entry.schedule", "needs a cron")
    doc = sample(entry={"kind": "segment", "segment": "vip", "on": "schedule", "schedule": "0 10 * * mon"})
    assert validate(doc, registry)[1] == []


def test_layout_keys_must_name_nodes(registry):
    doc = sample(layout={"hello": {"x": 0, "y": 0}, "ghost": {"x": 1, "y": 1}})
    errs = errors_of(doc, registry)
    has(errs, None, "layout.ghost", "'ghost'")
    assert len(errs) == 1


def test_event_condition_since_or_within(registry):
    doc = sample()
    node(doc, "check")["cases"][0]["when"] = {"kind": "event", "event": "order_placed", "since": "entry", "within": "P7D"}
    has(errors_of(doc, registry), "check", "nodes[3].cases[0].when", "either since or within")


def test_engagement_must_name_a_send_node(registry):
    doc = sample()
    node(doc, "check")["cases"][0]["when"] = {
        "kind": "all",
        "conditions": [
            {"kind": "engagement", "node": "pause", "status": "opened"},
            {"kind": "not", "condition": {"kind": "engagement", "node": "ghost", "status": "clicked"}},
        ],
    }
    errs = errors_of(doc, registry)
    has(errs, "check", "nodes[3].cases[0].when.conditions[0].node", "wait node")
    has(errs, "check", "nodes[3].cases[0].when.conditions[1].condition.node", "no node 'ghost'")


def test_unknown_condition_kind_is_named(registry):
    doc = sample()
    node(doc, "check")["cases"][0]["when"] = {"kind": "horoscope"}
    has(errors_of(doc, registry), "check", "nodes[3].cases[0].when.kind", "unknown kind")


def test_case_names_are_unique(registry):
    doc = sample()
    node(doc, "check")["cases"] = [
        {"name": "x", "when": {"kind": "tag", "tag": "a"}, "next": "bye"},
        {"name": "x", "when": {"kind": "tag", "tag": "b"}, "next": "bye"},
    ]
    has(errors_of(doc, registry), "check", "nodes[3].cases[1].name", "used twice")


# Whatever arrives, validation answers with errors; it never raises.
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_REG = load_registry()


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


_SAMPLE_PATHS = [p for p in _paths(sample()) if p]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(_SAMPLE_PATHS), value=_json)
def test_any_mutation_of_a_valid_flow_gives_errors_not_exceptions(path, value):
    doc = sample()
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    flow, errors = validate(doc, _REG)
    assert (flow is None) == bool(errors)
    assert all(isinstance(e.path, str) and e.message for e in errors)


@settings(max_examples=200, deadline=None)
@given(value=_json)
def test_any_json_gives_errors_not_exceptions(value):
    flow, errors = validate(msgspec.json.encode(value), _REG)
    assert flow is None and errors


def test_time_windows_must_be_able_to_open(registry):
    doc = sample()
    del node(doc, "pause")["for"]
    node(doc, "pause")["until_time"] = {"from": "10:00", "to": "10:00", "days": []}
    errs = errors_of(doc, registry)
    has(errs, "pause", "nodes[2].until_time.to", "empty")
    has(errs, "pause", "nodes[2].until_time.days", "never end")
    node(doc, "pause")["until_time"] = {"from": "22:00", "to": "06:00"}  # overnight
    assert validate(doc, registry)[1] == []


def test_deeply_nested_documents_are_an_error_not_a_crash(registry):
    doc = msgspec.json.encode(sample())
    nested = b'{"kind":"not","condition":' * 20000 + b'{"kind":"tag","tag":"x"}' + b"}" * 20000
    bad = doc.replace(b'{"kind":"engagement","node":"hello","status":"opened"}', nested)
    assert bad != doc
    flow, errors = validate(bad, registry)
    assert flow is None and "nested too deeply" in errors[0].message
