"""Crash test: ``kill -9`` pinbridge under load, again and again; nothing accepted is lost.

A client thread posts batches continuously and remembers every event answered ``accepted``.
Meanwhile the pinbridge process is killed with SIGKILL at random moments and restarted on
the same database. When the load stops and the queue drains, every accepted event must have
reached the emulator. Events may reach it twice only when they were in flight at a kill: at
most one claimed batch (``batch_size`` events, one destination) per kill.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import httpx2
import pytest

from tests.e2e.conftest import WRITE_KEY, EventLog, Pinbridge, Stack, wait_until

pytestmark = pytest.mark.slow

KILLS = 6
BATCH_SIZE = 100
POST_SIZE = 50
CONFIG = f"""
[delivery]
lease_seconds = 2
timeout_seconds = 1.5
batch_size = {BATCH_SIZE}
poll_interval_seconds = 0.05
"""
#: Seconds the queue gets to drain after the last restart.
DRAIN_TIMEOUT = 60.0


class Load(threading.Thread):
    """Posts batches until stopped; keeps the ids answered ``accepted`` and those in doubt."""

    def __init__(self, pinbridge: Pinbridge) -> None:
        super().__init__(name="e2e-load", daemon=True)
        self.url = pinbridge.url
        self.stop = threading.Event()
        self.accepted: set[str] = set()
        self.in_doubt: set[str] = set()
        self.posts = 0
        self.failures = 0
        self.error: BaseException | None = None

    def batch(self, start: int) -> list[dict[str, Any]]:
        stamp = time.time() - 30
        return [
            {
                "type": "track",
                "event": "Product Added",
                "messageId": f"load-{n}",
                "anonymousId": f"anon-{n % 500}",
                "timestamp": stamp,
                "context": {
                    "ip": "203.0.113.7",
                    "userAgent": "Mozilla/5.0 Firefox/140.0",
                    "traits": {"email": f"user{n % 500}@example.com"},
                },
                "properties": {"product_id": "sku-1", "price": 9.5, "currency": "USD"},
            }
            for n in range(start, start + POST_SIZE)
        ]

    def run(self) -> None:
        try:
            with httpx2.Client(base_url=self.url, auth=(WRITE_KEY, ""), timeout=10) as client:
                self._post_until_stopped(client)
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc

    def _post_until_stopped(self, client: httpx2.Client) -> None:
        next_id = 0
        while not self.stop.is_set():
            calls = self.batch(next_id)
            ids = [c["messageId"] for c in calls]
            next_id += POST_SIZE
            try:
                answer = client.post("/v1/batch", json={"batch": calls})
            except httpx2.TransportError:
                # Killed mid-request: these may or may not have been committed.
                self.in_doubt.update(ids)
                self.failures += 1
                time.sleep(0.05)
                continue
            if answer.status_code != 200:
                self.in_doubt.update(ids)
                self.failures += 1
                continue
            self.posts += 1
            for event_id, result in zip(ids, answer.json()["results"], strict=True):
                assert result["status"] == "accepted", result
                self.accepted.add(event_id)


def test_every_accepted_event_survives_kill_9(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    """After repeated kill -9 and restarts, every accepted event arrives; re-sends are bounded."""
    emulator = stack.emulator("--rate-limit", "0")
    pinbridge = stack.pinbridge(emulator, config=CONFIG)
    log = EventLog(emulator)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    load = Load(pinbridge)
    load.start()
    started = time.monotonic()
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.3, 2.0))
            pinbridge.kill()
            pinbridge.start()
        time.sleep(1.0)
    finally:
        load.stop.set()
        load.join(timeout=30)
    assert load.error is None, load.error
    assert not load.is_alive()
    wait_until(
        lambda: not log.missing(load.accepted),
        timeout=DRAIN_TIMEOUT,
        interval=0.5,
        what="every accepted event at the emulator",
    )
    elapsed = time.monotonic() - started
    resent = log.resent()
    flagged = sum(1 for r in log.records if r["duplicate"])
    with capsys.disabled():
        print(
            f"\ncrash test (seed {seed}): {KILLS} kills in {elapsed:.1f} s; "
            f"{len(load.accepted):,} accepted in {load.posts:,} posts, "
            f"{len(load.in_doubt):,} in doubt ({load.failures} failed posts); "
            f"{len(log.received):,} distinct events at the emulator, {resent} re-sent "
            f"(bound {KILLS * BATCH_SIZE})"
        )
    assert load.posts > KILLS
    assert resent <= KILLS * BATCH_SIZE
    assert flagged == resent
    assert set(log.received) <= load.accepted | load.in_doubt
