"""The editor in a real browser against a real server: build, validate, publish, reload, export, import."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from tests.editor.conftest import ROOT, shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("editor-browser")]

WINBACK = json.loads((ROOT / "flows" / "restaurant-winback.json").read_text())


def drop(page, kind: str, x: int, y: int) -> None:
    """Drag a node kind from the palette onto the canvas at (x, y) inside the canvas."""
    page.drag_and_drop(f".palette-item[data-kind={kind}]", "[data-testid=canvas]", target_position={"x": x, "y": y})


def connect(page, source: str, port: str, target: str) -> None:
    """Drag from a node's output port to another node's input handle; returns once the edge is drawn.

    If the gesture draws no edge, what was under the mouse at both ends is gathered, the gesture is
    made once more, and a second miss fails with both accounts (a CI log is all there is to go by).
    """
    misses = []
    for _attempt in range(2):
        # The problems bar has a fixed height, but measure only once nothing is waiting to be saved.
        wait_saved(page)
        points = _drag_between_handles(page, source, port, target)
        try:
            page.wait_for_selector(f'.react-flow__edge[data-id="{source}:{port}"]', state="attached", timeout=8_000)
            break
        except Exception:  # noqa: BLE001 - a playwright TimeoutError; described below
            misses.append(_describe_miss(page, points))
    else:
        pytest.fail(f"connecting {source}:{port} -> {target} drew no edge twice: {misses}")
    if misses:
        warnings.warn(f"connecting {source}:{port} -> {target} needed a second gesture: {misses[0]}", stacklevel=2)


def _drag_between_handles(page, source: str, port: str, target: str) -> list[tuple[float, float]]:
    src = page.locator(f'.react-flow__node[data-id="{source}"] .react-flow__handle[data-handleid="{port}"]')
    dst = page.locator(f'.react-flow__node[data-id="{target}"] .react-flow__handle[data-handleid="in"]')
    a, b = src.bounding_box(), dst.bounding_box()
    start = (a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    end = (b["x"] + b["width"] / 2, b["y"] + b["height"] / 2)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=8)
    page.mouse.up()
    return [start, end]


def _describe_miss(page, points) -> dict:
    return page.evaluate(
        """(points) => ({
          under: points.map(([x, y]) => { const e = document.elementFromPoint(x, y);
            return e ? `${e.tagName}.${e.className}`.slice(0, 120) + ` node=${e.closest('.react-flow__node')?.dataset.id}` : null; }),
          points,
          canvas: document.querySelector('[data-testid=canvas]').getBoundingClientRect().toJSON(),
          viewport: document.querySelector('.react-flow__viewport')?.style.transform,
          edges: [...document.querySelectorAll('.react-flow__edge')].map((e) => e.dataset.id),
          status: document.querySelector('[data-testid=save-status]').textContent,
        })""",
        points,
    )


def field(page, path: str):
    return page.locator(f'.side [data-path="{path}"]').first


def add_node(page, kind: str, node_id: str, x: int, y: int) -> None:
    """Drop a node, rename it, and leave it selected with its form open."""
    before = page.locator(".react-flow__node").count()
    drop(page, kind, x, y)
    page.wait_for_function(f"document.querySelectorAll('.react-flow__node').length === {before + 1}")
    page.fill("[data-testid=node-id]", node_id)
    page.press("[data-testid=node-id]", "Enter")
    page.wait_for_selector(f'.react-flow__node[data-id="{node_id}"].selected')


def wait_saved(page) -> None:
    page.wait_for_function("document.querySelector('[data-testid=save-status]').textContent.startsWith('Saved')")


def semantic(flow: dict) -> dict:
    return {k: v for k, v in flow.items() if k != "layout"}


def test_build_the_winback_journey_from_an_empty_canvas(page, editor_server):
    sign_in(page, editor_server, "marketer")
    page.fill("[data-testid=new-key]", WINBACK["key"])
    page.fill("[data-testid=new-name]", WINBACK["name"])
    page.click("[data-testid=create]")
    page.wait_for_selector("[data-testid=panel-flow]")
    assert page.locator(".react-flow__node").count() == 0

    # The flow's own settings, from the flow schema.
    field(page, "description").fill(WINBACK["description"])
    field(page, "entry").select_option(label="segment")
    field(page, "entry.segment").fill("lapsed-big-spenders")
    page.click('.side [data-path="reentry"][data-action="add"]')
    field(page, "reentry.policy").select_option("after")
    field(page, "reentry.cooldown").fill("P90D")
    page.click('.side [data-path="goal"][data-action="add"]')
    field(page, "goal.event").fill("order_placed")
    field(page, "goal.within").fill("P14D")

    # The nodes, dragged from the palette, each filled in through its schema form. They are kept clear
    # of the canvas edges (a connection dragged within 40 px of one pans the canvas under the mouse)
    # and of the minimap in the bottom-right corner.
    add_node(page, "award", "offer", 330, 50)
    field(page, "mechanic").select_option("cashback")
    field(page, "config.percent").fill("15")
    field(page, "config.valid_for").fill("P14D")

    add_node(page, "send", "mail", 330, 145)
    field(page, "channel").select_option("email")
    field(page, "message.subject").fill("15% back on your next visit")
    field(page, "message.html").fill("<p>We saved your table. Visit us in the next 14 days and get 15% back.</p>")

    add_node(page, "wait", "wait", 330, 240)
    field(page, "for").fill("P7D")

    add_node(page, "branch", "came", 330, 335)
    page.click('.side [data-path="cases"][data-action="add"]')
    field(page, "cases[0].when").select_option(label="event")
    field(page, "cases[0].when.event").fill("order_placed")
    field(page, "cases[0].when.since").select_option("entry")
    field(page, "cases[0].name").fill("came back")

    add_node(page, "send", "review", 150, 445)
    field(page, "channel").select_option("whatsapp")
    field(page, "message.template").fill("ask_review")
    field(page, "message.language").fill("en")
    page.click('.side [data-path="message.parameters"][data-action="add"]')
    field(page, "message.parameters[0]").fill("{{ contact.attributes.first_name | default('there') }}")

    add_node(page, "award", "gift", 510, 445)
    field(page, "mechanic").select_option("promo_code")
    field(page, "config.percent").fill("100")
    field(page, "config.valid_for").fill("P14D")
    field(page, "config.pattern").fill("GIFT-####")

    add_node(page, "send", "gift_sms", 510, 550)
    field(page, "channel").select_option("sms")
    field(page, "message.text").fill("A free dessert is waiting for you: show code {{ award.code }} within 14 days.")

    add_node(page, "exit", "end", 330, 650)

    # Connect the ports; gift_sms is left loose for now.
    for source, port, target in [("offer", "next", "mail"), ("mail", "next", "wait"), ("wait", "next", "came"),
                                 ("came", "case:came back", "review"), ("came", "else", "gift"),
                                 ("review", "next", "end"), ("gift", "next", "gift_sms")]:
        connect(page, source, port, target)

    # The server's validation names the loose port on the right node: a badge there, a line in the list.
    wait_saved(page)
    badge = page.locator("[data-testid=badge-gift_sms]")
    badge.wait_for()
    assert page.locator("[data-testid^=badge-]").count() == 1
    problems = page.locator("[data-testid=problems]").inner_text()
    assert "gift_sms" in problems and "not connected" in problems
    assert page.locator("[data-testid=publish]").is_disabled()
    shot(page, "winback-with-error")

    connect(page, "gift_sms", "next", "end")
    badge.wait_for(state="detached")
    wait_saved(page)
    page.wait_for_selector("[data-testid=problems].ok")
    page.click("[data-testid=publish]")
    page.wait_for_selector("[data-testid=message]:has-text('Published version 1')")
    shot(page, "winback-published")

    # What the server holds is the target journey (positions aside), published.
    stored = editor_server.api("GET", f"/flows/{WINBACK['key']}").json()
    assert semantic(stored) == semantic(WINBACK)
    assert set(stored["layout"]) == {n["id"] for n in WINBACK["nodes"]}
    versions = editor_server.api("GET", f"/flows/{WINBACK['key']}/versions").json()
    assert [(v["version"], v["status"], v["current"]) for v in versions] == [(1, "published", True)]

    # A reload brings the same journey back (deep link, token kept in localStorage).
    page.reload()
    page.wait_for_selector('.react-flow__node[data-id="gift_sms"]')
    assert sorted(page.locator(".react-flow__node").evaluate_all("ns => ns.map(n => n.dataset.id)")) == sorted(stored["layout"])
    # edges are drawn once React Flow has measured the nodes' handles, a moment after the nodes
    page.wait_for_function("document.querySelectorAll('.react-flow__edge').length === 8")
    page.click('.react-flow__node[data-id="mail"]')
    assert field(page, "message.subject").input_value() == "15% back on your next visit"

    # Export gives exactly what the API returns.
    with page.expect_download() as info:
        page.click("[data-testid=export]")
    exported = Path(info.value.path()).read_text()
    assert exported == editor_server.api("GET", f"/flows/{WINBACK['key']}").text
    assert info.value.suggested_filename == "restaurant-winback.json"


def node_ids(page) -> list[str]:
    return sorted(page.locator(".react-flow__node").evaluate_all("ns => ns.map(n => n.dataset.id)"))


def edge_ids(page) -> list[str]:
    return sorted(page.locator(".react-flow__edge").evaluate_all("es => es.map(e => e.dataset.id)"))


def ports_of(node: dict) -> dict[str, str]:
    """The connected ports of a flow node, named as the server's model.ports() does."""
    if node["kind"] == "branch":
        out = {f"case:{c.get('name') or i}": c.get("next") for i, c in enumerate(node["cases"])}
        out["else"] = node.get("else")
    elif node["kind"] == "split":
        out = {f"path:{p['name']}": p.get("next") for p in node["paths"] if not p.get("holdout")}
    else:
        out = {p: node.get(p) for p in ("next", "on_timeout")}
    return {k: v for k, v in out.items() if v}


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "flows").glob("*.json")))
def test_importing_a_flow_file_draws_every_node_and_edge(page, editor_server, name):
    path = ROOT / "flows" / name
    flow = json.loads(path.read_text())
    sign_in(page, editor_server, "marketer")
    page.wait_for_selector("[data-testid=flow-list]")
    page.set_input_files("[data-testid=import-list]", str(path))
    page.wait_for_url(f"**/editor/flows/{flow['key']}")
    page.wait_for_selector(".react-flow__node")
    assert node_ids(page) == sorted(n["id"] for n in flow["nodes"])
    expected_edges = sorted(f"{n['id']}:{port}" for n in flow["nodes"] for port in ports_of(n))
    page.wait_for_function(f"document.querySelectorAll('.react-flow__edge').length === {len(expected_edges)}")
    assert edge_ids(page) == expected_edges
    for n in flow["nodes"]:  # drawn where the layout says, relative to the first node
        assert page.locator(f'.react-flow__node[data-id="{n["id"]}"]').is_visible()
    page.wait_for_selector("[data-testid=problems].ok")
    shot(page, f"import-{flow['key']}")
    assert semantic(editor_server.api("GET", f"/flows/{flow['key']}").json()) == semantic(flow)


def open_flow(page, server, flow: dict, role: str = "marketer", publish: bool = False) -> None:
    r = server.api("POST", "/flows", json=flow)
    assert r.status_code == 200, r.text
    if publish:
        assert server.api("POST", f"/flows/{flow['key']}/publish").status_code == 200
    sign_in(page, server, role, path=f"/editor/flows/{flow['key']}")
    page.wait_for_selector('.react-flow__node[data-id="end"]')


def test_an_integrator_token_edits_drafts_but_cannot_publish(page, editor_server):
    flow = {**WINBACK, "key": "winback-integrator"}
    open_flow(page, editor_server, flow, role="integrator")
    publish = page.locator("[data-testid=publish]")
    assert publish.is_disabled()
    assert "integrator" in publish.get_attribute("title")
    page.click('.react-flow__node[data-id="wait"]')
    field(page, "for").fill("P5D")
    wait_saved(page)
    assert editor_server.api("GET", f"/flows/{flow['key']}").json()["nodes"][2]["for"] == "P5D"
    # And the server agrees: an integrator's publish is refused.
    assert editor_server.api("POST", f"/flows/{flow['key']}/publish", role="integrator").status_code == 403


def test_editing_undo_copy_paste_layout_autosave_versions(page, editor_server):
    flow = {**WINBACK, "key": "winback-editing"}
    open_flow(page, editor_server, flow, publish=True)
    key = flow["key"]

    # Delete with the keyboard; the node it fed now has a loose port; undo and redo.
    page.click('.react-flow__node[data-id="gift_sms"]')
    page.keyboard.press("Delete")
    page.wait_for_selector('.react-flow__node[data-id="gift_sms"]', state="detached")
    page.locator("[data-testid=badge-gift]").wait_for()
    page.keyboard.press("Control+z")
    page.wait_for_selector('.react-flow__node[data-id="gift_sms"]')
    page.locator("[data-testid=badge-gift]").wait_for(state="detached")
    page.keyboard.press("Control+Shift+z")
    page.wait_for_selector('.react-flow__node[data-id="gift_sms"]', state="detached")
    page.keyboard.press("Control+z")
    page.wait_for_selector('.react-flow__node[data-id="gift_sms"]')

    # Copy and paste two nodes: fresh ids, the edge between them follows.
    page.click('.react-flow__node[data-id="gift"]')
    page.click('.react-flow__node[data-id="gift_sms"]', modifiers=["Control"])
    page.keyboard.press("Control+c")
    page.keyboard.press("Control+v")
    page.wait_for_selector('.react-flow__node[data-id="gift_sms_copy"]')
    page.wait_for_selector('.react-flow__edge[data-id="gift_copy:next"]', state="attached")
    assert "gift_copy" in node_ids(page)
    page.keyboard.press("Control+z")
    page.wait_for_selector('.react-flow__node[data-id="gift_copy"]', state="detached")

    # Drag a node: its new position is kept in layout.
    box = page.locator('.react-flow__node[data-id="end"]').bounding_box()
    page.mouse.move(box["x"] + 60, box["y"] + 20)
    page.mouse.down()
    page.mouse.move(box["x"] + 160, box["y"] + 20, steps=6)
    page.mouse.up()
    wait_saved(page)
    moved = editor_server.api("GET", f"/flows/{key}").json()["layout"]["end"]
    assert moved["x"] > WINBACK["layout"]["end"]["x"] + 50

    # Auto-layout rewrites every position.
    page.click("[data-testid=auto-layout]")
    wait_saved(page)
    laid = editor_server.api("GET", f"/flows/{key}").json()
    assert laid["layout"] != WINBACK["layout"] and set(laid["layout"]) == {n["id"] for n in WINBACK["nodes"]}
    assert semantic(laid) == semantic(flow)

    # An edit autosaves into a new draft (v2, the published v1 is untouched) and survives a reload.
    page.click('.react-flow__node[data-id="mail"]')
    field(page, "message.subject").fill("A table is waiting")
    wait_saved(page)
    page.reload()
    page.click('.react-flow__node[data-id="mail"]')
    assert field(page, "message.subject").input_value() == "A table is waiting"
    versions = editor_server.api("GET", f"/flows/{key}/versions").json()
    assert [(v["version"], v["status"]) for v in versions] == [(1, "published"), (2, "draft")]

    # A change not yet sent to the server is kept in the browser and comes back after a reload.
    field(page, "message.subject").fill("Typed just before the reload")
    page.evaluate("() => { window.beforeTheReload = true; }")
    page.reload()
    assert page.evaluate("() => window.beforeTheReload") is None  # a real reload, not a cancelled one
    page.click('.react-flow__node[data-id="mail"]')
    assert field(page, "message.subject").input_value() == "Typed just before the reload"
    wait_saved(page)
    assert editor_server.api("GET", f"/flows/{key}").json()["nodes"][1]["message"]["subject"] == "Typed just before the reload"

    # View the published version read-only, then restore it into a new draft.
    page.click("[data-testid=versions] h4")
    page.click("[data-testid=version-1]")
    page.wait_for_selector("[data-testid=viewing]")
    page.click('.react-flow__node[data-id="mail"]')
    assert field(page, "message.subject").input_value() == "15% back on your next visit"
    assert field(page, "message.subject").is_disabled()
    shot(page, "viewing-version-1")
    page.click("[data-testid=restore]")
    page.wait_for_selector("[data-testid=message]:has-text('restored')")
    wait_saved(page)
    versions = editor_server.api("GET", f"/flows/{key}/versions").json()
    assert [(v["version"], v["status"]) for v in versions] == [(1, "published"), (2, "draft"), (3, "draft")]
    assert semantic(editor_server.api("GET", f"/flows/{key}").json()) == semantic(flow)


def test_a_save_the_server_refused_is_tried_again_by_itself(page, editor_server):
    flow = {**WINBACK, "key": "winback-retry"}
    open_flow(page, editor_server, flow)
    refused = []

    def once_unavailable(route):
        if route.request.method == "POST" and not refused:
            refused.append(route.request.post_data)
            return route.fulfill(status=503, json={"status_code": 503, "detail": "the database is busy"})
        return route.continue_()

    page.route("**/api/v1/flows", once_unavailable)
    page.click('.react-flow__node[data-id="wait"]')
    field(page, "for").fill("P3D")
    page.wait_for_selector("[data-testid=save-status]:has-text('trying again')")
    assert editor_server.api("GET", f"/flows/{flow['key']}").json()["nodes"][2]["for"] == "P7D"
    # No further edit: the editor sends the same draft again and the server takes it.
    wait_saved(page)
    assert len(refused) == 1 and '"P3D"' in refused[0]
    assert editor_server.api("GET", f"/flows/{flow['key']}").json()["nodes"][2]["for"] == "P3D"
