"""A real `kaskad serve` (own KASKAD_HOME, free loopback port) and Debian's chromium driven by playwright."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from kaskad.testing.servers import free_port, wait_port

ROOT = Path(__file__).parents[2]
DIST = ROOT / "web-editor" / "dist" / "index.html"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class EditorServer:
    """`kaskad serve` on the embedded default, with an admin token and tokens of other roles on demand."""

    def __init__(self, home: Path):
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KASKAD_")}
        self.env.update(KASKAD_HOME=str(home), KASKAD_PORT=str(self.port))
        self.proc = subprocess.Popen([sys.executable, "-m", "kaskad", "serve"], cwd=ROOT, env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=open(home / "server.log", "w"))
        wait_port(self.port, timeout=90)
        self.admin = (home / "admin-token").read_text().strip()
        self._tokens = {"admin": self.admin}

    def token(self, role: str) -> str:
        if role not in self._tokens:
            out = subprocess.run([sys.executable, "-m", "kaskad", "token", "create", "--role", role], cwd=ROOT,
                                 env=self.env, capture_output=True, text=True, check=True)
            self._tokens[role] = out.stdout.strip().splitlines()[-1]
        return self._tokens[role]

    def api(self, method: str, path: str, role: str = "admin", **kw) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(role)}"}
        return httpx.request(method, f"{self.url}/api/v1{path}", headers=headers, timeout=30, **kw)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing browser test shows the end of its server's log: what the page could not say."""
    outcome = yield
    report = outcome.get_result()
    server = item.funcargs.get("editor_server") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(server, EditorServer):
        log = (server.home / "server.log").read_text(errors="replace").splitlines()
        report.sections.append(("kaskad serve log (last 60 lines)", "\n".join(log[-60:])))


@pytest.fixture(scope="module")
def editor_server():
    if not DIST.exists():
        pytest.fail("the editor is not built: run `make test` (or `cd web-editor && npm ci && npm run build`)")
    with tempfile.TemporaryDirectory(prefix="kaskad-editor-") as home:
        server = EditorServer(Path(home))
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, request):
    """A fresh page (own localStorage); page errors fail the test; a screenshot is kept after it."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(20_000)  # a loaded CI box (the other xdist worker runs multi-process tests)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ARTIFACTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"editor-{request.node.name}-end.png"))
    context.close()
    assert not errors, f"errors in the page: {errors}"


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"editor-{name}.png"))


def sign_in(page, server: EditorServer, role: str = "marketer", path: str = "/editor/") -> None:
    page.goto(server.url + path)
    page.fill("[data-testid=token]", server.token(role))
    page.click("[data-testid=signin-submit]")
