"""pb.js with several tabs of one shop: no queued event is lost, none is sent twice.

Each tab keeps its unsent events under a ``localStorage`` key of its own; a tab that is gone
(left, or silent for longer than the lease) leaves its queue to the others. These tests run two
or three tabs of one browser context (one ``localStorage``) in Debian's Chromium against a real
``pinbridge run`` with the embedded emulator, reusing ``test_browser``'s shop and fixtures.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

from tests.e2e.conftest import wait_until
from tests.e2e.test_browser import (  # noqa: F401 (fixtures)
    ACCOUNT,
    DELIVERY_TIMEOUT,
    PERSON_UA,
    Site,
    _browser,
    _site,
    open_page,
)

pytestmark = pytest.mark.timeout(120)


def duplicates(site: Site) -> float:
    """``pinbridge_events_total{outcome="duplicate"}``: events the collector had already."""
    text = site.http.get("/metrics").raise_for_status().text
    line = 'pinbridge_events_total{outcome="duplicate"} '
    found = [row for row in text.splitlines() if row.startswith(line)]
    return float(found[0].removeprefix(line)) if found else 0.0


def track(page: Any, name: str) -> str:
    """``pinbridge.track(name)`` on the page; returns the event id."""
    event_id = page.evaluate("(n) => pinbridge.track(n, {order_id: n})", name)
    assert isinstance(event_id, str), event_id
    return event_id


def page_view(page: Any) -> str:
    """The event id of the page's automatic page view (given to the stub Pinterest Tag)."""
    return page.evaluate("window.pintrkCalls")[0][2]["event_id"]


def queued(page: Any) -> dict[str, Any]:
    """pb.js's queue keys in the page's ``localStorage``, with their values."""
    return page.evaluate(
        """() => Object.fromEntries(Object.keys(localStorage)
            .filter((k) => k.startsWith('_pb_q')).map((k) => [k, JSON.parse(localStorage[k])]))"""
    )


def unsent(page: Any) -> int:
    """How many events all of pb.js's queues in ``localStorage`` hold."""
    return page.evaluate(
        """() => Object.keys(localStorage).filter((k) => k.startsWith('_pb_q'))
            .map((k) => JSON.parse(localStorage[k])).map((v) => v.q || v)
            .reduce((n, q) => n + q.length, 0)"""
    )


def received(site: Site) -> Counter[str]:
    """How many times the embedded emulator received each event id."""
    answer = site.http.get(
        "/emulator/_emulator/events", params={"ad_account_id": ACCOUNT}
    ).raise_for_status()
    return Counter(r["event"]["event_id"] for r in answer.json()["events"])


#: A left tab's queue is taken over on load, when back online, or once its lease has run out
#: (checked every sixth of it). A closed tab's last write may be lost (seen with Playwright's
#: page.close: the queue keeps a live lease), so the tests use a 6 s lease
#: (``pinbridgeConfig.tabLeaseSeconds``) rather than wait out the default 2 minutes.
TAB_LEASE_SECONDS = 6
ADOPTION_TIMEOUT = DELIVERY_TIMEOUT + 2 * TAB_LEASE_SECONDS


def wait_delivered(site: Site, events: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Wait until the emulator has every event of ``events`` (event id → what it is)."""
    deadline = time.monotonic() + ADOPTION_TIMEOUT
    while not events.keys() <= (got := site.delivered()).keys():
        if time.monotonic() > deadline:
            missing = sorted(what for e, what in events.items() if e not in got)
            pytest.fail(f"never delivered: {missing}")
        time.sleep(0.1)
    return got


#: How the second tab ends while still offline: it stays, the shopper leaves the shop in it, or
#: closes it.
ENDINGS = {
    "stays": lambda page: None,
    "navigates": lambda page: page.goto("about:blank"),
    "closes": lambda page: page.close(run_before_unload=True),
}


class TestTabs:
    @pytest.mark.parametrize("ending", list(ENDINGS))
    def test_offline_tabs_lose_and_repeat_nothing(self, site, browser, ending):
        """Two offline tabs track interleaved events; back online, every event of both reaches
        Pinterest once, and the collector never gets one twice, whether the second tab is still
        open, was left or was closed."""
        context = browser.new_context(user_agent=PERSON_UA)
        lease = f"window.pinbridgeConfig = {{tabLeaseSeconds: {TAB_LEASE_SECONDS}}}"
        context.add_init_script(lease)
        try:
            first = open_page(context, f"{site.shop.url}/landing.html")
            second = open_page(context, f"{site.shop.url}/landing.html")
            events = {page_view(first): "page view A", page_view(second): "page view B"}
            wait_delivered(site, events)
            before = duplicates(site)

            context.set_offline(True)
            wait_until(lambda: second.evaluate("!navigator.onLine"), timeout=5, what="offline")
            offline = {}
            for n in range(3):
                for tab, page in (("A", first), ("B", second)):
                    offline[track(page, f"{tab}{n}")] = f"{tab}{n}"
            ENDINGS[ending](second)
            assert site.delivered().keys().isdisjoint(offline)
            # All are kept in localStorage: even a crash of both tabs now would lose none.
            # (localStorage reaches other tabs' processes a moment later: wait for it.)
            wait_until(lambda: unsent(first) == len(offline), timeout=5, what="all queued")
            events.update(offline)

            context.set_offline(False)
            # A new tab of the shop: the next page, where older pb.js took up what was queued.
            third = open_page(context, f"{site.shop.url}/landing.html")
            events[page_view(third)] = "page view C"
            delivered = wait_delivered(site, events)
            for event_id, what in offline.items():
                assert delivered[event_id]["custom_data"]["order_id"] == what
            wait_until(lambda: not unsent(third), timeout=ADOPTION_TIMEOUT, what="no queue")
            counts = received(site)
            assert {counts[e] for e in events} == {1}
            if ending != "closes":
                # A closing tab's last write may reach localStorage after its queue was taken
                # over, so that queue is taken once more when its lease runs out: the collector
                # answers those `duplicate` (same event_id) and Pinterest still gets each once.
                assert duplicates(site) == before
        finally:
            context.close()

    def test_a_gone_tab_queue_is_adopted_a_live_one_is_not(self, site, browser):
        """The next page sends the queue of a tab that stopped renewing its lease (crashed) and
        the single queue of older pb.js, and leaves alone one whose lease is current."""
        context = browser.new_context(user_agent=PERSON_UA)
        try:
            page = open_page(context, f"{site.shop.url}/landing.html")
            wait_delivered(site, {page_view(page): "page view"})
            ids = page.evaluate(
                """() => {
                  const q = (n) => [{type: 'track', event: 'Product Added',
                    properties: {order_id: n}, messageId: crypto.randomUUID(),
                    timestamp: new Date().toISOString()}];
                  const old = q('old'), crashed = q('crashed'), live = q('live');
                  localStorage.setItem('_pb_q', JSON.stringify(old));
                  localStorage.setItem('_pb_q.crashed',
                    JSON.stringify({t: Date.now() - 600000, q: crashed}));
                  // 'z' sorts after every tab id: this live tab does not win the adoption.
                  localStorage.setItem('_pb_q.zz-live', JSON.stringify({t: Date.now(), q: live}));
                  return [old, crashed, live].map((q) => q[0].messageId);
                }"""
            )
            page.reload()
            page.wait_for_function("!!(window.pinbridge && window.pinbridge.track)")
            delivered = wait_delivered(
                site, {ids[0]: "old", ids[1]: "crashed", page_view(page): "page view"}
            )
            assert ids[2] not in delivered
            keys = queued(page)
            assert keys["_pb_q.zz-live"]["q"][0]["messageId"] == ids[2]
            assert "_pb_q" not in keys and "_pb_q.crashed" not in keys
        finally:
            context.close()
