"""Offline conversions end to end: a CRM file matched to an earlier click, imported twice."""

from __future__ import annotations

import csv
import hashlib
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Stack, wait_until

pytestmark = pytest.mark.slow
PHONE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Mobile/15E148 Safari/604.1"


def iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


def test_crm_file_matches_click_once_and_reports_bad_rows(stack: Stack, tmp_path: Path):
    """Rows matched by phone carry the earlier click; re-import sends nothing; bad rows reported."""
    emulator = stack.emulator()
    pinbridge = stack.pinbridge(emulator)
    now = time.time()
    # A day ago: a click on a phone, and a sign-up there with a phone number.
    for message in (
        {
            "type": "page",
            "anonymousId": "A",
            "messageId": "landing",
            "timestamp": now - 86400,
            "context": {
                "ip": "198.51.100.7",
                "userAgent": PHONE_UA,
                "page": {"url": "https://shop.example/?epik=CRM-EPIK"},
            },
        },
        {
            "type": "identify",
            "anonymousId": "A",
            "timestamp": now - 86000,
            "traits": {"phone": "+1 (650) 555-0199"},
        },
    ):
        assert pinbridge.post("/v1/batch", {"batch": [message]}).status_code == 200
    crm = tmp_path / "crm.csv"
    # As Excel's "CSV UTF-8" export writes it: with a byte-order mark before the first name.
    with crm.open("w", newline="", encoding="utf-8-sig") as stream:
        writer = csv.writer(stream)
        writer.writerow(["Order", "Phone", "Email", "Total", "Currency", "Purchased"])
        writer.writerow(["S-1", "650-555-0199", "", "120.50", "USD", iso(now - 3600)])
        writer.writerow(["S-2", "", "walkin@example.com", "15", "USD", iso(now - 7200)])
        writer.writerow(["S-3", "", "old@example.com", "9", "USD", iso(now - 10 * 86400)])
        writer.writerow(["S-4", "", "bad@example.com", "lots", "USD", iso(now - 60)])
    args = (
        "import",
        str(crm),
        "--map",
        "order_id=Order",
        "--map",
        "value=Total",
        "--map",
        "time=Purchased",
    )
    first = pinbridge.cli(*args)
    assert first.returncode == 1, first.stderr  # rows were rejected
    assert "4 rows: 2 accepted, 0 already imported, 2 rejected" in first.stdout
    with (tmp_path / "crm.csv.report.csv").open() as stream:
        report = list(csv.DictReader(stream))
    assert [(r["row"], r["status"]) for r in report] == [
        ("1", "accepted"),
        ("2", "accepted"),
        ("3", "rejected"),
        ("4", "rejected"),
    ]
    assert "Purchased (time)" in report[2]["reasons"] and "7 days" in report[2]["reasons"]
    assert "Total (value)" in report[3]["reasons"]

    def received() -> dict[str, dict]:
        return {e["event"]["event_id"]: e["event"] for e in emulator.events()[0]}

    wait_until(lambda: {"S-1", "S-2"} <= set(received()), timeout=30, what="offline rows")
    store_sale = received()["S-1"]
    assert store_sale["action_source"] == "offline"
    assert store_sale["user_data"]["click_id"] == "CRM-EPIK"
    assert store_sale["user_data"]["ph"] == [hashlib.sha256(b"16505550199").hexdigest()]
    assert store_sale["custom_data"]["value"] == "120.50"
    assert "click_id" not in received()["S-2"]["user_data"]

    again = pinbridge.cli(*args)
    assert "0 accepted, 2 already imported, 2 rejected" in again.stdout
    time.sleep(1.0)
    ids = [e["event"]["event_id"] for e in emulator.events()[0]]
    assert ids.count("S-1") == 1 and ids.count("S-2") == 1
