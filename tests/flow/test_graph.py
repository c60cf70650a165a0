"""Graph rules against a brute-force answer on random graphs."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from kaskad.flow.graph import cycles_without_wait, reachable

NAMES = [f"n{i}" for i in range(7)]


@settings(max_examples=300, deadline=None)
@given(
    edges=st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(NAMES)), max_size=14),
    waits=st.sets(st.sampled_from(NAMES)),
)
def test_cycles_without_wait_finds_exactly_the_nodes_on_such_cycles(edges, waits):
    graph = {n: [] for n in NAMES}
    for a, b in edges:
        graph[a].append(b)
    kinds = {n: "wait" if n in waits else "send" for n in NAMES}
    sub = {n: [t for t in ts if kinds[t] != "wait"] for n, ts in graph.items() if kinds[n] != "wait"}
    expected = {n for n in sub if any(n in reachable(sub, s) for s in sub[n])}
    found = cycles_without_wait(graph, kinds)
    assert {n for comp in found for n in comp} == expected
    assert all(kinds[n] != "wait" for comp in found for n in comp)


def test_reachable():
    assert reachable({"a": ["b"], "b": ["c"], "c": [], "d": ["a"]}, "a") == {"a", "b", "c"}
