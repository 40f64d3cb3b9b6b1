"""pb.js in a real browser: headless Chromium (Debian's) on a shop page, a real ``pinbridge run``.

The shop is a folder of HTML pages served by a small ``http.server`` thread on one port;
pinbridge runs on another (so every request is cross-origin and CORS is exercised) with the
embedded emulator as destination. Each page loads ``/pb.js`` from pinbridge and has a stub
``window.pintrk`` that records its calls, standing in for the Pinterest Tag.

Headless Chromium says ``HeadlessChrome`` in its user agent, which the bot filter drops, as it
should. The shopper's context therefore runs with an ordinary Chrome user agent; a second
context keeps the headless one and shows that a bot's events never reach Pinterest.

Needs ``/usr/bin/chromium`` (``apt-get install chromium``; ``.ci/run`` installs it). Playwright
drives it; ``playwright install`` (which downloads a browser of its own) is never needed.
"""

from __future__ import annotations

import functools
import http.server
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.e2e.conftest import Process, Stack, free_port, running_stack, wait_until

pytestmark = pytest.mark.timeout(90)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ACCOUNT = "549755885175"
WRITE_KEY = "shop-browser-key"
PERSON_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36"
)
#: Seconds to wait for an event to travel browser → pinbridge → emulator.
DELIVERY_TIMEOUT = 15.0

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<script>
  window.pintrkCalls = [];
  window.pintrk = function () {{ window.pintrkCalls.push(Array.prototype.slice.call(arguments)); }};
  {early}
</script>
<script src="{pinbridge}/pb.js" data-write-key="{key}"></script>
</head><body><h1>{title}</h1>
<script>{script}</script>
</body></html>
"""
#: Calls queued before pb.js loads (they run before its automatic page view).
EARLY = {"denied": "window.pinbridge = [['consent', {ads: false}]];"}
SCRIPTS = {
    "landing": "",
    "checkout": """
      pinbridge.identify('user-42', {email: 'Buyer@Example.com'});
      window.checkoutId = pinbridge.track('Order Completed',
        {order_id: 'o-1001', revenue: 42.5, currency: 'USD'});
    """,
    "denied": """
      window.checkoutId = pinbridge.track('Order Completed',
        {order_id: 'o-denied', revenue: 10, currency: 'USD'});
    """,
    "robot": """
      window.checkoutId = pinbridge.track('Order Completed',
        {order_id: 'o-robot', revenue: 10, currency: 'USD'});
    """,
}


class Shop:
    """The shop's pages on a port of their own, served by a thread."""

    def __init__(self, folder: Path, pinbridge_url: str) -> None:
        folder.mkdir()
        for name, script in SCRIPTS.items():
            html = PAGE.format(
                title=name,
                pinbridge=pinbridge_url,
                key=WRITE_KEY,
                early=EARLY.get(name, ""),
                script=script,
            )
            (folder / f"{name}.html").write_text(html)
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class Site:
    """A ``pinbridge run`` (embedded emulator) and the shop whose origin it allows."""

    def __init__(self, stack: Stack, folder: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.shop = Shop(folder / "shop", self.url)
        config = folder / "pinbridge.toml"
        config.write_text(
            f'[server]\nwrite_keys = ["{WRITE_KEY}"]\n'
            f'cors_origins = {{ "{WRITE_KEY}" = ["{self.shop.url}"] }}\n'
        )
        env = {**stack.base_env, "PINBRIDGE_DATABASE_URL": f"sqlite:///{folder / 'pb.db'}"}
        args = [sys.executable, "-m", "pinbridge", "run", "--port", str(self.port)]
        self.process: Process = stack.spawn("pinbridge", [*args, "--config", str(config)], env)
        self.process.wait_ready(f"{self.url}/healthz")
        self.http = stack.client(base_url=self.url, timeout=10.0)

    def delivered(self) -> dict[str, dict[str, Any]]:
        """Events the embedded emulator received, by event id."""
        answer = self.http.get(
            "/emulator/_emulator/events", params={"ad_account_id": ACCOUNT}
        ).raise_for_status()
        return {r["event"]["event_id"]: r["event"] for r in answer.json()["events"]}

    def dropped(self, reason: str) -> float:
        """``pinbridge_events_dropped_total{reason=...}`` from /metrics."""
        text = self.http.get("/metrics").raise_for_status().text
        found = re.search(
            rf'^pinbridge_events_dropped_total{{reason="{reason}"}} (\S+)$', text, re.M
        )
        return float(found.group(1)) if found else 0.0


@pytest.fixture(name="site", scope="module")
def _site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("browser")
    with running_stack(folder) as stack:
        site = Site(stack, folder)
        try:
            yield site
        finally:
            site.shop.close()


@pytest.fixture(name="browser", scope="module")
def _browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


def open_page(context: Any, url: str) -> Any:
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(url)
    page.wait_for_function("!!(window.pinbridge && window.pinbridge.track)")
    return page


def cookie(context: Any, name: str) -> dict[str, Any] | None:
    return next((c for c in context.cookies() if c["name"] == name), None)


def checkout_call(page: Any) -> dict[str, Any]:
    """What the stub Pinterest Tag received for the checkout."""
    calls = page.evaluate("window.pintrkCalls")
    found = [c for c in calls if c[:2] == ["track", "checkout"]]
    assert len(found) == 1, calls
    return found[0][2]


class TestBrowser:
    def test_click_id_user_agent_and_event_id_reach_pinterest(self, site, browser):
        """A landing with ?epik= sets the cookie; a later checkout carries that click id, the
        browser's user agent and the event id the Pinterest Tag got."""
        context = browser.new_context(user_agent=PERSON_UA)
        try:
            landing = open_page(context, f"{site.shop.url}/landing.html?epik=TESTEPIK")
            epik = wait_until(lambda: cookie(context, "_epik"), timeout=10, what="_epik cookie")
            assert epik["value"] == "TESTEPIK"
            assert epik["sameSite"] == "Lax" and epik["path"] == "/"
            anonymous = cookie(context, "_pb_aid")
            assert anonymous is not None and anonymous["httpOnly"]
            tag_page_visit = landing.evaluate("window.pintrkCalls")
            assert [c[:2] for c in tag_page_visit] == [["track", "pagevisit"]]
            landing.close()

            page = open_page(context, f"{site.shop.url}/checkout.html")
            assert "epik" not in page.url
            user_agent = page.evaluate("navigator.userAgent")
            event_id = page.evaluate("window.checkoutId")
            tagged = checkout_call(page)
            assert tagged["event_id"] == event_id
            assert (tagged["value"], tagged["currency"]) == (42.5, "USD")

            delivered = wait_until(
                lambda: site.delivered().get(event_id),
                timeout=DELIVERY_TIMEOUT,
                what="the checkout at the emulator",
            )
            assert delivered["event_name"] == "checkout"
            assert delivered["user_data"]["click_id"] == "TESTEPIK"
            assert delivered["user_data"]["client_user_agent"] == user_agent == PERSON_UA
            assert delivered["user_data"]["client_ip_address"] == "127.0.0.1"
            assert delivered["custom_data"]["order_id"] == "o-1001"
            # The landing's page view went too, with the click id from its URL.
            landing_visit = tag_page_visit[0][2]["event_id"]
            visit = wait_until(lambda: site.delivered().get(landing_visit), timeout=5)
            assert visit["event_name"] == "page_visit"
            assert visit["user_data"]["click_id"] == "TESTEPIK"
        finally:
            context.close()

    def test_headless_bot_is_dropped_and_counted(self, site, browser):
        """Headless Chromium's own user agent is a bot's: nothing is delivered, bots are counted."""
        before = site.dropped("bot")
        context = browser.new_context()
        try:
            page = open_page(context, f"{site.shop.url}/robot.html")
            assert "HeadlessChrome" in page.evaluate("navigator.userAgent")
            event_id = page.evaluate("window.checkoutId")
            # The page view and the checkout, both dropped.
            wait_until(lambda: site.dropped("bot") >= before + 2, timeout=10, what="bot count")
        finally:
            context.close()
        assert event_id not in site.delivered()

    def test_consent_denied_is_not_delivered(self, site, browser):
        """With ads consent denied (before pb.js loaded) events are dropped, counted, kept from
        the tag, and no click id cookie is set."""
        before = site.dropped("consent")
        context = browser.new_context(user_agent=PERSON_UA)
        try:
            page = open_page(context, f"{site.shop.url}/denied.html?epik=DENIED")
            event_id = page.evaluate("window.checkoutId")
            # The page view and the checkout.
            wait_until(lambda: site.dropped("consent") >= before + 2, timeout=10, what="consent")
            calls = page.evaluate("window.pintrkCalls")
            assert ["setconsent", False] in calls
            assert not any(c[:2] == ["track", "checkout"] for c in calls)
            # The choice is remembered: the next page's events carry it too.
            again = open_page(context, f"{site.shop.url}/landing.html")
            wait_until(lambda: site.dropped("consent") >= before + 3, timeout=10, what="consent")
            assert again.evaluate("window.pintrkCalls") == []
            assert cookie(context, "_epik") is None
        finally:
            context.close()
        assert event_id not in site.delivered()


def test_pb_js_is_small(site):
    """pb.js stays small, as served: under 12 kB, and under 4 kB gzipped."""
    plain = httpx2.get(f"{site.url}/pb.js", headers={"Accept-Encoding": "identity"})
    zipped = httpx2.get(f"{site.url}/pb.js", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert len(plain.content) < 12_000
    assert int(zipped.headers["content-length"]) < 4_096
