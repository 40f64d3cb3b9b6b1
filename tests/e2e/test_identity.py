"""Identity end to end, through ``pinbridge run`` and the emulator.

The cross-device story: a phone lands from a Pinterest ad (``epik``, anonymous id A) and signs
in (email). Three days later a desktop (anonymous id B) checks out with the same email. The
checkout delivered to a destination with a 30-day click window carries the phone's click id;
one with a 1-day window gets none, and both carry the email.

Then what must not happen: a second customer on a shared browser getting the first one's
email, and a click seen again on a later visit counting as a new click.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pytest

from tests.e2e.conftest import ACCOUNT, TOKEN, Stack, wait_until

pytestmark = pytest.mark.slow
SHORT_ACCOUNT = "2222"
CONFIG = f"""
[[destinations]]
name = "long"
ad_account_id = "{ACCOUNT}"
click_window_days = 30

[[destinations]]
name = "short"
ad_account_id = "{SHORT_ACCOUNT}"
click_window_days = 1
"""
EMAIL = "Jane.Doe@Example.com"
EM = hashlib.sha256(b"jane.doe@example.com").hexdigest()
PHONE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Mobile/15E148 Safari/604.1"
DESKTOP_UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Safari/605.1.15"


def test_click_on_a_phone_reaches_a_later_desktop_checkout(stack: Stack):
    """The desktop checkout carries the phone's click id within the window, not outside it."""
    emulator = stack.emulator("--token", f"{TOKEN}={ACCOUNT},{SHORT_ACCOUNT}")
    pinbridge = stack.pinbridge(emulator, config=CONFIG)
    now = time.time()
    three_days_ago = now - 3 * 86400
    phone = {"ip": "198.51.100.7", "userAgent": PHONE_UA}
    landing = {
        "type": "page",
        "anonymousId": "A",
        "messageId": "phone-landing",
        "timestamp": three_days_ago,
        "context": {
            **phone,
            "page": {"url": "https://shop.example/mug?epik=PHONE-EPIK&utm_campaign=spring"},
        },
    }
    sign_in = {
        "type": "identify",
        "anonymousId": "A",
        "messageId": "phone-sign-in",
        "timestamp": three_days_ago + 60,
        "traits": {"email": EMAIL},
        "context": phone,
    }
    checkout = {
        "type": "track",
        "event": "Order Completed",
        "anonymousId": "B",
        "messageId": "desktop-order",
        "timestamp": now,
        "context": {
            "ip": "203.0.113.20",
            "userAgent": DESKTOP_UA,
            "traits": {"email": EMAIL},
            "page": {"url": "https://shop.example/thanks"},
        },
        "properties": {"order_id": "1001", "revenue": 42, "currency": "USD"},
    }
    for message in (landing, sign_in, checkout):
        response = pinbridge.post("/v1/batch", {"batch": [message]})
        assert response.status_code == 200, response.text

    def delivered(account: str) -> dict | None:
        answer = emulator.http.get("/_emulator/events", params={"ad_account_id": account})
        found = [
            e["event"]
            for e in answer.raise_for_status().json()["events"]
            if e["event"]["event_id"] == "desktop-order"
        ]
        return found[0] if found else None

    long_window = wait_until(lambda: delivered(ACCOUNT), timeout=30, what="30-day checkout")
    short_window = wait_until(lambda: delivered(SHORT_ACCOUNT), timeout=30, what="1-day checkout")
    assert long_window["user_data"]["click_id"] == "PHONE-EPIK"
    assert "click_id" not in short_window["user_data"]
    assert long_window["user_data"]["em"] == short_window["user_data"]["em"] == [EM]
    assert long_window["user_data"]["client_user_agent"] == DESKTOP_UA
    report = pinbridge.cli("report", "attribution", "--window", "7d", "--json")
    assert report.returncode == 0, report.stderr
    rows = json.loads(report.stdout)
    assert rows == [
        {
            "campaign": "spring",
            "event_name": "checkout",
            "currency": "USD",
            "conversions": 1,
            "value": "42",
            "by_delay": {"<= 7d": 1},
        }
    ]
    outside = json.loads(pinbridge.cli("report", "attribution", "--window", "1d", "--json").stdout)
    assert [(r["campaign"], r["conversions"]) for r in outside] == [("(no click)", 1)]


def sent_event(emulator: Any, account: str, event_id: str) -> dict[str, Any] | None:
    """The event the emulator received for an ad account, or ``None`` yet."""
    answer = emulator.http.get("/_emulator/events", params={"ad_account_id": account})
    found = [
        e["event"]
        for e in answer.raise_for_status().json()["events"]
        if e["event"]["event_id"] == event_id
    ]
    return found[0] if found else None


def test_second_customer_on_a_shared_browser_gets_no_email(stack: Stack):
    """Bob buying on the browser where Alice signed in is sent without Alice's email."""
    emulator = stack.emulator("--token", f"{TOKEN}={ACCOUNT},{SHORT_ACCOUNT}")
    pinbridge = stack.pinbridge(emulator, config=CONFIG)
    now = time.time()
    browser = {"ip": "203.0.113.20", "userAgent": DESKTOP_UA}
    alice = {
        "type": "identify",
        "userId": "alice",
        "anonymousId": "shared-browser",
        "messageId": "alice-sign-in",
        "timestamp": now - 3600,
        "traits": {"email": EMAIL},
        "context": browser,
    }
    bob = {
        "type": "track",
        "event": "Order Completed",
        "userId": "bob",
        "anonymousId": "shared-browser",
        "messageId": "bob-order",
        "timestamp": now,
        "context": {**browser, "page": {"url": "https://shop.example/thanks"}},
        "properties": {"order_id": "2002", "revenue": 10, "currency": "USD"},
    }
    for message in (alice, bob):
        response = pinbridge.post("/v1/batch", {"batch": [message]})
        assert response.status_code == 200, response.text
    sent = wait_until(
        lambda: sent_event(emulator, ACCOUNT, "bob-order"), timeout=30, what="Bob's order"
    )
    assert "em" not in sent["user_data"]
    assert sent["user_data"]["external_id"] == [hashlib.sha256(b"bob").hexdigest()]


def test_a_click_counts_from_when_it_happened(stack: Stack):
    """A click from 3 days ago, carried again by the ``_epik`` cookie an hour ago, reaches a
    checkout under a 30-day window, not under a 1-day one."""
    emulator = stack.emulator("--token", f"{TOKEN}={ACCOUNT},{SHORT_ACCOUNT}")
    pinbridge = stack.pinbridge(emulator, config=CONFIG)
    now = time.time()
    phone = {"ip": "198.51.100.7", "userAgent": PHONE_UA}
    landing = {
        "type": "page",
        "anonymousId": "C",
        "messageId": "landing",
        "timestamp": now - 3 * 86400,
        "context": {**phone, "page": {"url": "https://shop.example/mug?epik=OLD-EPIK"}},
    }
    visit = {
        "type": "page",
        "anonymousId": "C",
        "messageId": "visit",
        "timestamp": now - 3600,
        "context": {
            **phone,
            "page": {"url": "https://shop.example/cart"},
            "cookies": {"_epik": "OLD-EPIK"},
        },
    }
    order = {
        "type": "track",
        "event": "Order Completed",
        "anonymousId": "C",
        "messageId": "order",
        "timestamp": now,
        "context": {**phone, "page": {"url": "https://shop.example/thanks"}},
        "properties": {"order_id": "3003", "revenue": 5, "currency": "USD"},
    }
    for message in (landing, visit, order):
        response = pinbridge.post("/v1/batch", {"batch": [message]})
        assert response.status_code == 200, response.text
    long_window = wait_until(
        lambda: sent_event(emulator, ACCOUNT, "order"), timeout=30, what="30-day order"
    )
    short_window = wait_until(
        lambda: sent_event(emulator, SHORT_ACCOUNT, "order"), timeout=30, what="1-day order"
    )
    assert long_window["user_data"]["click_id"] == "OLD-EPIK"
    assert "click_id" not in short_window["user_data"]
