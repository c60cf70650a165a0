"""Graph rules of a flow: what the start reaches, and loops a run could spin in."""

from __future__ import annotations


def reachable(graph: dict[str, list[str]], start: str) -> set[str]:
    """Node ids reachable from ``start`` (``graph``: node id → target ids)."""
    seen, todo = {start}, [start]
    while todo:
        for t in graph.get(todo.pop(), []):
            if t not in seen:
                seen.add(t)
                todo.append(t)
    return seen


def cycles_without_wait(graph: dict[str, list[str]], kinds: dict[str, str]) -> list[list[str]]:
    """Strongly connected components (Tarjan, iterative) among non-wait nodes that form a cycle."""
    sub = {n: [t for t in ts if t in graph and kinds.get(t) != "wait"] for n, ts in graph.items() if kinds.get(n) != "wait"}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sub:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            v, pi = work.pop()
            if pi == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on.add(v)
            recurse = False
            for k in range(pi, len(sub[v])):
                w = sub[v][k]
                if w not in index:
                    work.append((v, k + 1))
                    work.append((w, 0))
                    recurse = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if recurse:
                continue
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1 or v in sub[v]:
                    out.append(sorted(comp))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return out
