"""Canvas responsiveness with a big flow, in Debian's chromium against a real `kaskad serve`.

Builds a flow of N nodes (default 200: chains of sends and waits, branches every few
nodes, all ending in exits), stores it, opens it in the editor and prints:
- load: navigation to every node drawn;
- select: click on a node until its form is shown;
- drag: frames while dragging one node across the canvas (median and worst frame interval);
- drop: mouse up to the flow holding the new position (one undo step, autosave queued);
- auto-layout: the button press to every node moved.

    .venv/bin/python bench/editor.py [--nodes 200] [--runs 3]

Needs the built editor (`make run` or `cd web-editor && npm run build`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# bench/ itself must not be on the path: bench/email.py would shadow the standard library's email.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).parents[1]))

from tests.editor.conftest import CHROMIUM_ARGS, DIST, EditorServer  # noqa: E402


def big_flow(n: int) -> dict:
    """A valid flow of about n nodes: a spine of send -> wait -> branch, each branch's case exits."""
    nodes, layout = [], {}
    i = 0
    prev = None

    def add(node, x, y):
        nonlocal prev
        nodes.append(node)
        layout[node["id"]] = {"x": x, "y": y}

    while len(nodes) < n - 1:
        y = i * 110
        sid, wid, bid, xid = f"send{i}", f"wait{i}", f"check{i}", f"done{i}"
        if prev:
            prev_node, port = prev
            if port == "else":
                prev_node["else"] = sid
            else:
                prev_node["next"] = sid
        add({"kind": "send", "id": sid, "channel": "test", "message": {"text": f"step {i}"}, "next": wid}, 0, y * 3)
        add({"kind": "wait", "id": wid, "for": "P1D", "next": bid}, 0, y * 3 + 110)
        branch = {"kind": "branch", "id": bid, "cases": [{"name": "bought", "when": {"kind": "event", "event": "order_placed", "since": "entry"}, "next": xid}]}
        add(branch, 0, y * 3 + 220)
        add({"kind": "exit", "id": xid}, 260, y * 3 + 220)
        prev = (branch, "else")
        i += 1
    add({"kind": "exit", "id": "end"}, 0, i * 330)
    prev[0]["else"] = "end"
    # A grid, so that fit-to-screen shows all of them at once: the worst case for drawing.
    layout = {node["id"]: {"x": (k % 16) * 220, "y": (k // 16) * 120} for k, node in enumerate(nodes)}
    return {"schema": "kaskad.flow/1", "key": "bench-editor", "name": f"{len(nodes)} nodes", "entry": {"kind": "api"},
            "nodes": nodes, "layout": layout}


FRAME_RECORDER = """() => {
  window.__frames = [];
  let last = performance.now();
  const tick = (t) => { window.__frames.push(t - last); last = t; if (window.__recording) requestAnimationFrame(tick); };
  window.__recording = true;
  requestAnimationFrame(tick);
}"""


def measure(page, server, flow, n_nodes) -> dict:
    out = {}
    t0 = time.perf_counter()
    page.goto(f"{server.url}/editor/flows/{flow['key']}")
    page.wait_for_function(f"document.querySelectorAll('.react-flow__node').length >= {n_nodes}", timeout=60_000)
    out["load_ms"] = (time.perf_counter() - t0) * 1000
    out["drawn"] = page.locator(".react-flow__node").count()

    target = page.locator('.react-flow__node[data-id="wait3"]')
    t0 = time.perf_counter()
    target.click()
    page.wait_for_selector('[data-testid=panel-node] [data-path="for"]')
    out["select_ms"] = (time.perf_counter() - t0) * 1000

    box = target.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + 10
    page.mouse.move(x, y)
    page.mouse.down()
    page.evaluate(FRAME_RECORDER)
    steps = 40
    t0 = time.perf_counter()
    for s in range(1, steps + 1):
        page.mouse.move(x + s * 4, y + s * 2)
    out["drag_total_ms"] = (time.perf_counter() - t0) * 1000
    frames = page.evaluate("() => { window.__recording = false; return window.__frames.slice(1); }")
    t0 = time.perf_counter()
    page.mouse.up()
    page.wait_for_function("document.querySelector('[data-testid=save-status]').textContent.startsWith('Unsaved')")
    out["drop_ms"] = (time.perf_counter() - t0) * 1000
    out["frame_median_ms"] = statistics.median(frames) if frames else float("nan")
    out["frame_worst_ms"] = max(frames) if frames else float("nan")
    out["per_move_ms"] = out["drag_total_ms"] / steps
    out["frames_per_s"] = 1000 * len(frames) / sum(frames) if frames else float("nan")

    before = page.locator('.react-flow__node[data-id="done0"]').get_attribute("style")
    t0 = time.perf_counter()
    page.click("[data-testid=auto-layout]")
    page.wait_for_function(
        "(before) => { const el = document.querySelector('.react-flow__node[data-id=\"done0\"]'); return !el || el.getAttribute('style') !== before; }", arg=before)
    out["auto_layout_ms"] = (time.perf_counter() - t0) * 1000
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if not DIST.exists():
        sys.exit("the editor is not built: run `cd web-editor && npm ci && npm run build`")
    from playwright.sync_api import sync_playwright

    flow = big_flow(args.nodes)
    with tempfile.TemporaryDirectory(prefix="kaskad-bench-editor-") as home:
        server = EditorServer(Path(home))
        try:
            r = server.api("POST", "/flows", json=flow)
            assert r.status_code == 200 and r.json()["valid"], r.text
            results = []
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                for _ in range(args.runs):
                    context = browser.new_context(viewport={"width": 1400, "height": 900})
                    page = context.new_page()
                    page.goto(server.url + "/editor/")
                    page.evaluate("t => localStorage.setItem('kaskad.token', t)", server.admin)
                    results.append(measure(page, server, flow, len(flow["nodes"])))
                    context.close()
                    server.api("POST", "/flows", json=flow)  # back to the stored flow for the next run
                browser.close()
        finally:
            server.stop()
    print(f"editor canvas, {len(flow['nodes'])} nodes ({results[0]['drawn']} on screen), {args.runs} runs in headless chromium "
          f"(software rendering; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    for name in ["load_ms", "select_ms", "per_move_ms", "frames_per_s", "frame_median_ms", "frame_worst_ms", "drop_ms", "auto_layout_ms"]:
        values = [r[name] for r in results]
        print(f"  {name:16} median {statistics.median(values):8.1f}   min {min(values):8.1f}   max {max(values):8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
