"""The editor in a real browser against a real server: build, validate, publish, reload, export, import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.editor.conftest import ROOT, shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("editor-browser")]

WINBACK = json.loads((ROOT / "flows" / "restaurant-winback.json").read_text())


def drop(page, kind: str, x: int, y: int) -> None:
    """Drag a node kind from the palette onto the canvas at (x, y) inside the canvas."""
    page.drag_and_drop(f".palette-item[data-kind={kind}]", "[data-testid=canvas]", target_position={"x": x, "y": y})


def connect(page, source: str, port: str, target: str) -> None:
    """Drag from a node's output port to another node's input handle."""
    src = page.locator(f'.react-flow__node[data-id="{source}"] .react-flow__handle[data-handleid="{port}"]').bounding_box()
    dst = page.locator(f'.react-flow__node[data-id="{target}"] .react-flow__handle[data-handleid="in"]').bounding_box()
    page.mouse.move(src["x"] + src["width"] / 2, src["y"] + src["height"] / 2)
    page.mouse.down()
    page.mouse.move(dst["x"] + dst["width"] / 2, dst["y"] + dst["height"] / 2, steps=8)
    page.mouse.up()
    page.wait_for_selector(f'.react-flow__edge[data-id="{source}:{port}"]', state="attached") if False else None


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

    # The nodes, dragged from the palette, each filled in through its schema form.
    add_node(page, "award", "offer", 380, 60)
    field(page, "mechanic").select_option("cashback")
    field(page, "config.percent").fill("15")
    field(page, "config.valid_for").fill("P14D")

    add_node(page, "send", "mail", 380, 170)
    field(page, "channel").select_option("email")
    field(page, "message.subject").fill("15% back on your next visit")
    field(page, "message.html").fill("<p>We saved your table. Visit us in the next 14 days and get 15% back.</p>")

    add_node(page, "wait", "wait", 380, 280)
    field(page, "for").fill("P7D")

    add_node(page, "branch", "came", 380, 390)
    page.click('.side [data-path="cases"][data-action="add"]')
    field(page, "cases[0].when").select_option(label="event")
    field(page, "cases[0].when.event").fill("order_placed")
    field(page, "cases[0].when.since").select_option("entry")
    field(page, "cases[0].name").fill("came back")

    add_node(page, "send", "review", 200, 520)
    field(page, "channel").select_option("whatsapp")
    field(page, "message.template").fill("ask_review")
    field(page, "message.language").fill("en")
    page.click('.side [data-path="message.parameters"][data-action="add"]')
    field(page, "message.parameters[0]").fill("{{ contact.attributes.first_name | default('there') }}")

    add_node(page, "award", "gift", 560, 520)
    field(page, "mechanic").select_option("promo_code")
    field(page, "config.percent").fill("100")
    field(page, "config.valid_for").fill("P14D")
    field(page, "config.pattern").fill("GIFT-####")

    add_node(page, "send", "gift_sms", 560, 640)
    field(page, "channel").select_option("sms")
    field(page, "message.text").fill("A free dessert is waiting for you: show code {{ award.code }} within 14 days.")

    add_node(page, "exit", "end", 380, 760)

    # Connect the ports; gift_sms is left loose for now.
    for source, port, target in [("offer", "next", "mail"), ("mail", "next", "wait"), ("wait", "next", "came"),
                                 ("came", "case:came back", "review"), ("came", "else", "gift"),
                                 ("review", "next", "end"), ("gift", "next", "gift_sms")]:
        connect(page, source, port, target)
        page.wait_for_selector(f'.react-flow__edge[data-id="{source}:{port}"]', state="attached")

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
    assert page.locator(".react-flow__edge").count() == 8
    page.click('.react-flow__node[data-id="mail"]')
    assert field(page, "message.subject").input_value() == "15% back on your next visit"

    # Export gives exactly what the API returns.
    with page.expect_download() as info:
        page.click("[data-testid=export]")
    exported = Path(info.value.path()).read_text()
    assert exported == editor_server.api("GET", f"/flows/{WINBACK['key']}").text
    assert info.value.suggested_filename == "restaurant-winback.json"
