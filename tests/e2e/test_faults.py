"""Delivery through the emulator's fault injection, dead letters and replay, a stopped destination.

Backoff is shortened in pinbridge.toml so that retries happen within seconds; everything else
is the product as an operator runs it, over loopback.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.conftest import ACCOUNT, TOKEN, EventLog, Pinbridge, Stack, wait_until

pytestmark = pytest.mark.slow

FAST_RETRIES = """
[delivery]
backoff_base_seconds = 0.05
backoff_cap_seconds = 0.5
poll_interval_seconds = 0.05
paused_probe_seconds = 1
batch_size = 50
"""
QUOTES = """
[transform]
advertiser_event_names = ["quote"]
mapping = {"Quote Requested" = "quote"}
"""
#: Seconds everything gets to arrive despite the faults.
DELIVERY_TIMEOUT = 60.0


def call(message_id: str, event: str = "Product Added") -> dict[str, Any]:
    """A valid Segment track call with an explicit timestamp."""
    return {
        "type": "track",
        "event": event,
        "messageId": message_id,
        "anonymousId": f"anon-{message_id}",
        "timestamp": time.time() - 60,
        "context": {"traits": {"email": f"{message_id}@example.com"}},
        "properties": {"product_id": "sku-9", "price": 5, "currency": "USD"},
    }


def post_all(pinbridge: Pinbridge, ids: list[str], event: str = "Product Added") -> None:
    """Post the calls in batches of 100; each must be accepted."""
    for start in range(0, len(ids), 100):
        calls = [call(i, event) for i in ids[start : start + 100]]
        answer = pinbridge.post("/v1/batch", {"batch": calls})
        assert answer.status_code == 200, answer.text
        assert {r["status"] for r in answer.json()["results"]} == {"accepted"}


def dead_letters(pinbridge: Pinbridge) -> int:
    _, rows = pinbridge.status()
    return int(rows["pinterest"]["dead letters"]) if rows else 0


class TestTransientFaults:
    def test_everything_arrives_despite_429_5xx_latency_and_drops(self, stack: Stack) -> None:
        """429 bursts, 20 % 5xx, latency and dropped connections only delay delivery."""
        emulator = stack.emulator(
            "--burst-429", "3", "--error-rate", "0.2", "--latency-ms", "20",
            "--drop-rate", "0.1", "--seed", "7", "--rate-limit", "0",
        )  # fmt: skip
        pinbridge = stack.pinbridge(emulator, config=FAST_RETRIES)
        ids = [f"fault-{i}" for i in range(600)]
        post_all(pinbridge, ids)
        log = EventLog(emulator)
        wait_until(lambda: not log.missing(set(ids)), timeout=DELIVERY_TIMEOUT, what="delivery")
        stats = emulator.stats()
        statuses = stats["requests_by_status"]
        assert statuses.get("429", 0) >= 3
        assert statuses.get("500", 0) + statuses.get("503", 0) > 0
        assert stats["dropped_connections"] > 0
        # A failed request is never processed by the emulator, so nothing comes twice.
        assert log.resent() == 0
        code, rows = pinbridge.status()
        assert code == 0
        assert rows["pinterest"]["delivered 1h"] == "600"
        assert rows["pinterest"]["dead letters"] == "0"

    def test_faults_set_at_run_time_are_ridden_out(self, stack: Stack) -> None:
        """Faults switched on through POST /_emulator/faults mid-stream are ridden out too."""
        emulator = stack.emulator("--seed", "3", "--rate-limit", "0")
        pinbridge = stack.pinbridge(emulator, config=FAST_RETRIES)
        emulator.set_faults(error_rate=0.5, drop_rate=0.2, burst_429=2, latency_ms=10)
        ids = [f"runtime-{i}" for i in range(200)]
        post_all(pinbridge, ids)
        log = EventLog(emulator)
        wait_until(lambda: not log.missing(set(ids)), timeout=DELIVERY_TIMEOUT, what="delivery")
        assert emulator.stats()["requests_by_status"].get("429", 0) >= 2


class TestPermanentFailure:
    def test_dead_letter_is_replayed_after_the_fix(self, stack: Stack) -> None:
        """An event Pinterest refuses becomes a dead letter with the reason; replay sends it."""
        emulator = stack.emulator()
        pinbridge = stack.pinbridge(emulator, config=FAST_RETRIES + QUOTES)
        answer = pinbridge.post(
            "/v1/batch", {"batch": [call("quote-1", "Quote Requested"), call("fine-1")]}
        )
        assert [r["status"] for r in answer.json()["results"]] == ["accepted", "accepted"]
        log = EventLog(emulator)
        wait_until(lambda: not log.missing({"fine-1"}), timeout=20, what="the valid event")
        wait_until(lambda: dead_letters(pinbridge) == 1, timeout=20, what="a dead letter")
        code, rows = pinbridge.status()
        assert code == 3  # a dead letter added within the hour
        assert rows["pinterest"]["queued"] == "0"
        assert rows["pinterest"]["delivered 1h"] == "1"
        assert emulator.stats()["failed_by_reason"] == {"event_name": 1}

        unrelated = pinbridge.cli("replay", "--reason", "rate limit")
        assert unrelated.returncode == 0, unrelated.stderr
        assert "0 dead letters queued again" in unrelated.stdout
        assert dead_letters(pinbridge) == 1

        emulator.stop()
        emulator.start("--token", f"{TOKEN}={ACCOUNT}", "--advertiser-event", "quote")
        replayed = pinbridge.cli("replay", "--reason", "Invalid event_name")
        assert replayed.returncode == 0, replayed.stderr
        assert "1 dead letters queued again" in replayed.stdout
        log = EventLog(emulator)
        wait_until(lambda: not log.missing({"quote-1"}), timeout=20, what="the replayed event")
        assert log.records[0]["event"]["event_name"] == "quote"
        wait_until(lambda: dead_letters(pinbridge) == 0, timeout=10, what="no dead letters")
        assert pinbridge.status()[1]["pinterest"]["delivered 1h"] == "2"


class TestStoppedDestination:
    def test_401_pauses_keeps_events_and_resumes_after_fix(self, stack: Stack) -> None:
        """A refused token stops the destination (status exits 2) without dropping anything."""
        emulator = stack.emulator("--token", f"another-token={ACCOUNT}")
        pinbridge = stack.pinbridge(emulator, config=FAST_RETRIES)
        ids = [f"paused-{i}" for i in range(120)]
        post_all(pinbridge, ids)
        wait_until(lambda: pinbridge.status()[0] == 2, timeout=20, what="a stopped destination")
        time.sleep(2.5)  # a few probes, all refused
        code, rows = pinbridge.status()
        row = rows["pinterest"]
        assert code == 2
        assert row["state"].startswith("stopped:")
        assert "401" in row["state"]
        assert (row["queued"], row["delivered 1h"], row["dead letters"]) == ("120", "0", "0")
        assert emulator.stats()["requests_by_status"]["401"] >= 2
        assert emulator.stats()["received"] == 0

        emulator.stop()
        emulator.start("--token", f"{TOKEN}={ACCOUNT}")
        log = EventLog(emulator)
        wait_until(lambda: not log.missing(set(ids)), timeout=20, what="delivery after the fix")
        code, rows = pinbridge.status()
        assert code == 0
        assert (rows["pinterest"]["delivered 1h"], rows["pinterest"]["state"]) == ("120", "ok")
