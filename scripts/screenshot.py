"""Screenshot the dashboard with demo data: ``.venv/bin/python scripts/screenshot.py``.

Starts pinbridge in this process with the embedded emulator and a clock that runs from 55
minutes ago to now, sends an hour of demo traffic (checkouts, product views, add-to-carts,
duplicates from a Tag that fires too, a bot, a few late events), loads a small catalog with
``pinbridge catalog load``, logs in to ``/ui`` in headless Chromium (Debian's, through
Playwright) and writes ``docs/dashboard.png`` and ``docs/dashboard-event.png``.

Nothing leaves loopback; the database lives in a temporary folder.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx2
import uvicorn
from playwright.sync_api import sync_playwright

from pinbridge.config import load_settings
from pinbridge.service import build_service

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "demo-password-not-secret"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15"
)
CATALOG = "id,title,description,link,image_link,price,availability\n" + "".join(
    f"sku-{i},Mug {i},A mug,https://shop.example/p/{i},https://shop.example/i/{i}.jpg,"
    f"{9 + i}.99 USD,in stock\n"
    for i in range(1, 9)
)


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _call(rng: random.Random, now: float, n: int) -> dict[str, Any]:
    """One demo event: mostly complete, sometimes missing signals, on purpose."""
    kind = rng.choices(["Order Completed", "Product Viewed", "Product Added"], [2, 5, 3])[0]
    sku = f"sku-{rng.randint(1, 10)}"  # sku-9 and sku-10 are not in the catalog
    traits: dict[str, Any] = {"email": f"shopper{rng.randint(1, 40)}@example.com"}
    if rng.random() < 0.6:
        traits |= {"firstName": "Ada", "lastName": "Lovelace", "phone": "+1 415 555 0100"}
    context: dict[str, Any] = {"traits": traits, "userAgent": UA, "ip": f"203.0.113.{n % 200}"}
    if rng.random() < 0.05:
        del context["ip"]  # an event without IP: the resilience level drops to Poor
    props: dict[str, Any] = {"currency": "USD", "products": [{"product_id": sku, "price": 12}]}
    if kind == "Order Completed":
        props |= {"order_id": f"o-{n}", "revenue": round(rng.uniform(20, 200), 2)}
    late = 5400 if rng.random() < 0.04 else rng.uniform(1, 30)
    return {
        "type": "track",
        "event": kind,
        "messageId": f"demo-{n}",
        "anonymousId": f"anon-{rng.randint(1, 40)}",
        "timestamp": now - late,
        "context": context,
        "properties": props,
    }


def _traffic(base: str, offset: list[float]) -> None:
    rng = random.Random(7)
    http = httpx2.Client(base_url=base, auth=("dev-write-key", ""), timeout=30)
    sent: list[dict[str, Any]] = []
    n = 0
    for minute in range(56):
        offset[0] = -3300.0 + minute * 60
        now = time.time() + offset[0]
        batch = []
        for _ in range(rng.randint(5, 25) + (20 if 20 <= minute <= 30 else 0)):
            n += 1
            batch.append(_call(rng, now, n))
        # The Tag fired too: some events arrive twice, with the same event id.
        batch += [dict(c, timestamp=c["timestamp"]) for c in rng.sample(sent, min(len(sent), 3))]
        sent = batch[-10:]
        http.post("/v1/batch", json={"batch": batch}).raise_for_status()
        time.sleep(0.12)
    offset[0] = 0.0
    time.sleep(1.0)
    http.close()


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="pinbridge-demo-"))
    port = _port()
    base = f"http://127.0.0.1:{port}"
    database = f"sqlite:///{folder / 'pb.db'}"
    env = {"PINBRIDGE_DATABASE_URL": database, "PINBRIDGE_DASHBOARD_PASSWORD": PASSWORD}
    settings = load_settings(None, env)
    offset = [-3300.0]
    service = build_service(settings, clock=lambda: time.time() + offset[0])
    server = uvicorn.Server(
        uvicorn.Config(service.app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        try:
            if httpx2.get(f"{base}/healthz").status_code == 200:
                break
        except httpx2.TransportError:
            time.sleep(0.05)
    (folder / "feed.csv").write_text(CATALOG)
    subprocess.run(
        [sys.executable, "-m", "pinbridge", "catalog", "load", str(folder / "feed.csv")],
        env={**os.environ, **env},
        cwd=folder,
        check=True,
        capture_output=True,
    )
    _traffic(base, offset)
    docs = ROOT / "docs"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{base}/ui/login")
        page.fill("input[name=user]", "admin")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("#chart-throughput canvas")
        page.wait_for_timeout(300)
        page.screenshot(path=str(docs / "dashboard.png"), full_page=True)
        page.goto(f"{base}/ui/events?q=o-12")
        page.screenshot(path=str(docs / "dashboard-event.png"), full_page=False)
        browser.close()
    server.should_exit = True
    thread.join(timeout=10)
    print(f"wrote {docs / 'dashboard.png'} and {docs / 'dashboard-event.png'}")


if __name__ == "__main__":
    main()
