"""How fast flows validate, save and export: prints figures, asserts nothing.

    .venv/bin/python bench/flow_validate.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from kaskad.config import Settings
from kaskad.flow import service
from kaskad.flow.validate import validate
from kaskad.plugins.manager import load_registry
from kaskad.runtime import Runtime
from kaskad.store.engine import transaction

ROOT = Path(__file__).parents[1]


def big_flow(n: int) -> dict:
    nodes = []
    for i in range(n):
        nxt = f"n{i + 1}" if i + 1 < n else "end"
        kind = i % 3
        if kind == 0:
            nodes.append({"id": f"n{i}", "kind": "send", "channel": "test", "message": {"text": "Hi {{ contact.email }}"}, "next": nxt})
        elif kind == 1:
            nodes.append({"id": f"n{i}", "kind": "wait", "for": "P1D", "next": nxt})
        else:
            nodes.append({"id": f"n{i}", "kind": "branch", "cases": [{"when": {"kind": "tag", "tag": "vip"}, "next": nxt}], "else": nxt})
    nodes.append({"id": "end", "kind": "exit"})
    return {"schema": "kaskad.flow/1", "key": "big", "name": "Big", "entry": {"kind": "api"}, "nodes": nodes}


def rate(label: str, fn, seconds: float = 1.5) -> None:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        count += 1
    elapsed = time.perf_counter() - start
    print(f"{label:<45} {count / elapsed:>10.1f} /s  ({elapsed / count * 1000:.2f} ms each)")


def main() -> None:
    registry = load_registry()
    docs = [p.read_bytes() for p in sorted((ROOT / "flows").glob("*.json"))]
    rate(f"validate all of flows/ ({len(docs)} files)", lambda: [validate(d, registry) for d in docs])
    big = big_flow(999)
    rate("validate a 1000-node flow", lambda: validate(big, registry))
    with tempfile.TemporaryDirectory() as home:
        runtime = Runtime.create(Settings(home=Path(home)), registry=registry)

        edits = iter(range(10**9))

        def save():
            with transaction(runtime.sessions) as s:
                service.save(s, registry, {**big, "name": f"Big {next(edits)}"})

        rate("autosave a changed 1000-node draft, SQLite", save)

        def export():
            with runtime.sessions() as s:
                service.export(s, "big")

        rate("export a 1000-node flow, SQLite", export)
        runtime.close()


if __name__ == "__main__":
    main()
