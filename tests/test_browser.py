"""The HTML report in a real browser: opened from disk, every image loads and nothing is fetched.

Debian's Chromium headless shell (package chromium-headless-shell: the same Blink as the full
browser, the engine Playwright itself uses for headless runs), driven by Playwright's Python
package with its bundled node driver only (never ``playwright install``). Two nets catch
requests: the page's own request events, and an HTTP proxy on loopback that every connection the
browser makes must go through. Nothing listens behind that proxy: it records the request and
hangs up. The full Debian ``chromium`` fails that second net whatever the flags: it asks
accounts.google.com for signed-in accounts and update.googleapis.com for an on-device model
manifest; the shell has no sign-in or component updater, so any request it makes is the page's.

A missing browser fails the test, pointing at scripts/setup-browser.sh; only
AEBENCH_SKIP_BROWSER=1 skips it on purpose. AEBENCH_SCREENSHOT names the demo page's screenshot;
the repository report's goes beside it as ``<stem>-report.png``.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from aebench.report.html import write_html
from tests.test_html import demo_document

# The binary itself: /usr/bin/chromium-headless-shell is a wrapper that does not exec it.
CHROMIUM = Path("/usr/lib/chromium/chromium-headless-shell")
SKIP_ENV = "AEBENCH_SKIP_BROWSER"
SCREENSHOT_ENV = "AEBENCH_SCREENSHOT"
REPO_REPORT = Path(__file__).resolve().parents[1] / "reports" / "index.html"
VIEWPORT = {"width": 1280, "height": 900}
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Every image's state, read in the page once it has loaded.
IMAGES_JS = """() => Array.from(document.images).map(img => ({
    src: img.src.slice(0, 40), complete: img.complete, width: img.naturalWidth
}))"""
# Whether anything is wider than the viewport (a table must scroll in its box instead).
LAYOUT_JS = """() => ({
    page: document.documentElement.scrollWidth, viewport: window.innerWidth,
    wraps: Array.from(document.querySelectorAll('.table-wrap'))
        .map(w => ({scroll: w.scrollWidth, client: w.clientWidth}))
})"""


def require_browser() -> None:
    """Fail loudly when the browser or its driver is missing: CI must not skip this silently."""
    problems = []
    if not os.access(CHROMIUM, os.X_OK):
        problems.append(f"no Chromium at {CHROMIUM}")
    if importlib.util.find_spec("playwright") is None:
        problems.append("the playwright package is not installed in this environment")
    if not problems:
        return
    message = "; ".join(problems) + ": run scripts/setup-browser.sh"
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{message} ({SKIP_ENV}=1)")
    pytest.fail(f"{message} (or set {SKIP_ENV}=1 to skip the browser test on purpose)")


class RequestTrap:
    """A loopback 'proxy' that records the first line of every connection and closes it.

    Chromium is told to send all traffic through it, so a request made by the browser itself
    (updates, safe browsing, DNS-over-HTTPS), not only by the page, shows up here.
    """

    def __init__(self) -> None:
        self.requests: list[str] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        host, port = self._server.getsockname()[:2]
        return f"http://{host}:{port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._server.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(2)
                try:
                    first = connection.recv(1024).split(b"\r\n", 1)[0]
                except OSError:
                    first = b"(nothing sent)"
                self.requests.append(first.decode("latin-1") or "(empty)")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.close()


@dataclass
class Visit:
    """What one page load did: requests it made, its images, errors it logged, its layout."""

    url: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    layout: dict[str, Any] = field(default_factory=dict)


@dataclass
class Browser:
    context: Any  # playwright BrowserContext
    trap: RequestTrap

    def visit(self, path: Path, screenshot: Path) -> Visit:
        """Open ``path`` via file://, wait for it to load, record everything, screenshot it."""
        visit = Visit(url=path.resolve().as_uri())
        page = self.context.new_page()
        page.on("request", lambda request: visit.requests.append(request.url))
        page.on("console", lambda m: visit.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: visit.errors.append(str(error)))
        try:
            page.goto(visit.url, wait_until="load")
            visit.images = page.evaluate(IMAGES_JS)
            visit.layout = page.evaluate(LAYOUT_JS)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            page.close()
        return visit


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """One headless Chromium for the module, with a fresh profile and the request trap."""
    require_browser()
    from playwright.sync_api import sync_playwright

    trap = RequestTrap()
    profile = tmp_path_factory.mktemp("chromium-profile")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                str(profile),
                executable_path=str(CHROMIUM),
                headless=True,
                args=[*CHROMIUM_FLAGS, f"--proxy-server={trap.address}"],
                viewport=VIEWPORT,
                timeout=60_000,
            )
            try:
                yield Browser(context, trap)
            finally:
                context.close()
    finally:
        trap.close()
    assert trap.requests == [], f"the browser reached for the network: {trap.requests}"


def screenshot_path(tmp_path: Path, name: str) -> Path:
    """The demo's screenshot at $AEBENCH_SCREENSHOT, others beside it; else in tmp_path."""
    chosen = os.environ.get(SCREENSHOT_ENV)
    if not chosen:
        return tmp_path / f"{name}.png"
    base = Path(chosen)
    return base if name == "demo" else base.with_name(f"{base.stem}-{name}.png")


def assert_self_contained(visit: Visit, trap: RequestTrap) -> None:
    """Only the page itself was requested; every image decoded; nothing went to the network."""
    assert visit.requests, "no request was seen at all: the recorder is not working"
    strays = [url for url in visit.requests if url != visit.url and not url.startswith("data:")]
    assert strays == [], f"the page requested more than itself: {strays}"
    assert trap.requests == [], f"the browser reached for the network: {trap.requests}"
    assert visit.errors == [], f"the page logged errors: {visit.errors}"
    broken = [img for img in visit.images if not (img["complete"] and img["width"] > 0)]
    assert broken == [], f"images did not load: {broken}"
    assert all(img["src"].startswith("data:image/png;base64,") for img in visit.images)
    assert visit.layout["page"] <= visit.layout["viewport"], "the page is wider than the window"


def assert_real_screenshot(path: Path, min_height: int) -> None:
    """A full-page PNG of the viewport's width, with real content rather than a blank canvas."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        assert image.width == VIEWPORT["width"] and image.height >= min_height, image.size
        grey = image.convert("L")
        low, high = grey.getextrema()
        colours = grey.getcolors(maxcolors=256) or []
    assert high - low > 128 and len(colours) > 16, "the screenshot looks blank"


def test_demo_page_is_self_contained_in_chromium(browser: Browser, tmp_path: Path) -> None:
    doc, figures = demo_document(tmp_path)
    page = tmp_path / "report" / "index.html"
    write_html(doc, tmp_path, page)
    shot = screenshot_path(tmp_path, "demo")
    visit = browser.visit(page, shot)
    assert_self_contained(visit, browser.trap)
    assert len(visit.images) == len(figures)
    wide = [w for w in visit.layout["wraps"] if w["scroll"] > w["client"]]
    assert len(wide) == 1, f"the wide table should scroll inside its box: {visit.layout}"
    assert_real_screenshot(shot, min_height=VIEWPORT["height"])


def test_repository_report_is_self_contained_in_chromium(browser: Browser, tmp_path: Path) -> None:
    if not REPO_REPORT.is_file():
        pytest.skip(f"{REPO_REPORT} not built yet (dvc repro makes it)")
    shot = screenshot_path(tmp_path, "report")
    visit = browser.visit(REPO_REPORT, shot)
    assert_self_contained(visit, browser.trap)
    assert_real_screenshot(shot, min_height=200)


def test_both_nets_catch_a_page_that_reaches_out(browser: Browser, tmp_path: Path) -> None:
    """Guards the guards: outside URLs must show up in the page's events and at the trap.

    The trap only records and hangs up, so nothing leaves the machine; ``.invalid`` never
    resolves anyway.
    """
    leaky = tmp_path / "leaky.html"
    urls = ["http://example.invalid/a.png", "https://example.invalid/b.png"]
    leaky.write_text("<!DOCTYPE html>" + "".join(f'<img src="{url}">' for url in urls))
    try:
        visit = browser.visit(leaky, tmp_path / "leaky.png")
        assert set(urls) <= set(visit.requests)
        assert any("example.invalid/a.png" in line for line in browser.trap.requests)
        assert any(line.startswith("CONNECT example.invalid:443") for line in browser.trap.requests)
        assert all(img["width"] == 0 for img in visit.images)
    finally:
        browser.trap.requests.clear()


def test_published_site_history_point_to_commit_page_and_back(
    browser: Browser, tmp_path: Path
) -> None:
    """The site as a user meets it: from the front page to the history, a chart point to its
    commit's report, and back; the planted regression listed, the change within noise not."""
    from aebench.history.site import publish
    from tests.test_history import build_repository

    repo = build_repository(tmp_path / "repo")
    site = tmp_path / "site"
    publish(repo.path, site)
    regression, noise = repo.commits["regression"], repo.commits["noise"]
    page = browser.context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        page.goto((site / "index.html").resolve().as_uri(), wait_until="load")
        page.locator("nav.site a", has_text="History").click()
        page.wait_for_url("**/history/index.html")
        changes = page.locator("#changes + p + .table-wrap").inner_text()
        assert regression in changes and "regression" in changes
        assert noise not in changes
        assert page.locator("svg a").count() >= 2 * 7  # every point of every chart is a link
        link = page.locator(f"#{repo.anchors['regression']} a")
        link.click()
        page.wait_for_url("**/reports/*.html")
        assert "as committed at" in page.locator("nav.site").inner_text()
        page.locator("nav.site a", has_text="back to the history").click()
        page.wait_for_url("**/history/index.html")
        assert page.locator("#changes").is_visible()
        # a chart point is a link too: it opens the report of its commit
        page.locator("svg a").first.click()
        page.wait_for_url("**/reports/*.html")
        screenshot = screenshot_path(tmp_path, "site")
        page.screenshot(path=str(screenshot), full_page=False)
    finally:
        page.close()
    assert all(url.startswith("file://") or url.startswith("data:") for url in requests), requests
    assert browser.trap.requests == []
