"""Scale-out on one PostgreSQL: two collectors, three senders, one sender killed with kill -9.

(``run --no-sender`` makes the collectors collectors only; without the flag each ``run`` would
be a fourth and fifth sender, which the test would count as such.)

Two ``pinbridge run --no-sender`` processes (collectors only) take a bounded load (about
20,000 events in about 20 s, posted by one thread per collector); three ``pinbridge worker``
processes deliver to the emulator. Midway, one worker is killed with SIGKILL; right after, the
rows it held leased are read from the database: that is its in-flight batch.

Must hold:

* every event answered ``accepted`` reaches the emulator;
* no event is claimed by two live senders at once: the only events the emulator receives more
  than once are the killed sender's in-flight ones (a double claim by live senders would show
  as a re-sent event outside that set);
* the number of re-sends is counted and reported.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import httpx2
import psycopg
import pytest

from tests.e2e.conftest import (
    ACCOUNT,
    TOKEN,
    WRITE_KEY,
    EventLog,
    Process,
    Stack,
    free_port,
    wait_until,
)

pytestmark = pytest.mark.slow

EVENTS = 20_000
POST_SIZE = 100
BATCH_SIZE = 200
CONFIG = f"""
[delivery]
lease_seconds = 5
timeout_seconds = 4
batch_size = {BATCH_SIZE}
poll_interval_seconds = 0.05
rate_limit_per_minute = 1_000_000

[store]
pool_size = 4
"""
DRAIN_TIMEOUT = 90.0


class Load(threading.Thread):
    """Posts ``count`` events in batches to one collector; keeps the ids answered accepted."""

    def __init__(self, url: str, first: int, count: int, pace: float) -> None:
        super().__init__(name=f"load-{first}", daemon=True)
        self.url, self.first, self.count, self.pace = url, first, count, pace
        self.accepted: set[str] = set()
        self.error: BaseException | None = None

    def calls(self, start: int) -> list[dict[str, Any]]:
        stamp = time.time() - 30
        return [
            {
                "type": "track",
                "event": "Product Added",
                "messageId": f"scale-{n}",
                "anonymousId": f"anon-{n % 2000}",
                "timestamp": stamp,
                "context": {
                    "ip": "203.0.113.7",
                    "userAgent": "Mozilla/5.0 Firefox/140.0",
                    "traits": {"email": f"user{n % 2000}@example.com"},
                },
                "properties": {"product_id": "sku-1", "price": 9.5, "currency": "USD"},
            }
            for n in range(start, start + POST_SIZE)
        ]

    def run(self) -> None:
        try:
            with httpx2.Client(base_url=self.url, auth=(WRITE_KEY, ""), timeout=30) as client:
                started = time.monotonic()
                for k, start in enumerate(range(self.first, self.first + self.count, POST_SIZE)):
                    calls = self.calls(start)
                    answer = client.post("/v1/batch", json={"batch": calls})
                    answer.raise_for_status()
                    for call, result in zip(calls, answer.json()["results"], strict=True):
                        assert result["status"] == "accepted", result
                        self.accepted.add(call["messageId"])
                    # Spread the load over the run instead of bursting it all at once.
                    delay = started + (k + 1) * self.pace - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
        except BaseException as exc:  # reported by the test
            self.error = exc


def leased_by(url: str, pid: int) -> set[str]:
    """Event ids of rows a sender process holds leased (its in-flight claims)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT e.event_id FROM deliveries d JOIN events e ON e.id = d.event_row"
            " WHERE d.state = 'queued' AND d.lease_owner LIKE %s",
            (f"%:{pid}:%",),
        ).fetchall()
    return {r[0] for r in rows}


def test_two_collectors_three_senders_one_killed(
    stack: Stack, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every accepted event is delivered; re-sends are only the killed sender's batch."""
    # Each send takes 150 ms, so that a sender spends most of its time holding a batch.
    emulator = stack.emulator("--rate-limit", "0", "--latency-ms", "150")
    config = stack.folder / "pinbridge.toml"
    config.write_text(CONFIG)
    env = {
        **stack.base_env,
        "PINBRIDGE_DATABASE_URL": postgres_url,
        "PINTEREST_AD_ACCOUNT_ID": ACCOUNT,
        "PINTEREST_ACCESS_TOKEN": TOKEN,
        "PINTEREST_API_BASE": f"{emulator.url}/v5",
        "PINBRIDGE_WRITE_KEYS": WRITE_KEY,
    }
    base = [sys.executable, "-m", "pinbridge"]
    collectors: list[tuple[Process, str]] = []
    for n in range(2):
        port = free_port()
        args = [*base, "run", "--no-sender", "--port", str(port), "--config", str(config)]
        collectors.append((stack.spawn(f"collector-{n}", args, env), f"http://127.0.0.1:{port}"))
    senders = [
        stack.spawn(f"sender-{n}", [*base, "worker", "--config", str(config)], env)
        for n in range(3)
    ]
    for process, url in collectors:
        process.wait_ready(f"{url}/healthz")
    log = EventLog(emulator)
    half = EVENTS // 2
    loads = [
        Load(url, n * half, half, pace=20.0 / (half / POST_SIZE))
        for n, (_, url) in enumerate(collectors)
    ]
    started = time.monotonic()
    for load in loads:
        load.start()
    # Midway: kill one sender while it delivers, then read what it held.
    wait_until(
        lambda: len(log.refresh().received) >= EVENTS // 3,
        timeout=60,
        what="a third of the events delivered",
    )
    victim = senders[0]
    assert all(s.alive() for s in senders), victim.tail()
    wait_until(
        lambda: leased_by(postgres_url, victim.pid), timeout=30, interval=0.01, what="a claim"
    )
    victim.kill()
    in_flight = leased_by(postgres_url, victim.pid)
    assert in_flight, "the sender was killed holding a batch"
    for load in loads:
        load.join(timeout=120)
    for load in loads:
        assert load.error is None, load.error
    accepted = set().union(*(load.accepted for load in loads))
    assert len(accepted) == EVENTS
    wait_until(
        lambda: not log.missing(accepted),
        timeout=DRAIN_TIMEOUT,
        interval=0.5,
        what="every accepted event at the emulator",
    )
    elapsed = time.monotonic() - started
    resent_ids = {e for e, count in log.received.items() if count > 1}
    resent = log.resent()
    with capsys.disabled():
        print(
            f"\nscale test: {len(accepted):,} accepted by 2 collectors, delivered by 3 senders "
            f"(one killed) in {elapsed:.1f} s; killed sender held {len(in_flight)} leased; "
            f"{resent} re-sent ({len(resent_ids)} events), all from its in-flight batch"
        )
    assert all(s.alive() for s in senders[1:]), senders[1].tail()
    assert resent_ids <= in_flight, sorted(resent_ids - in_flight)[:10]
    assert all(count <= 2 for count in log.received.values())
    assert set(log.received) == accepted
