"""The cross-device story, end to end: a click on a phone attributed to a desktop checkout.

A phone lands from a Pinterest ad (``epik``, anonymous id A) and signs in (email). Three days
later a desktop (anonymous id B) checks out with the same email. The checkout delivered to a
destination with a 30-day click window carries the phone's click id; one with a 1-day window
gets none, and both carry the email.
"""

from __future__ import annotations

import hashlib
import json
import time

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
