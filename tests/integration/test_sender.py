"""The sender against the real emulator, in process, on a real SQLite store."""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import AsyncIterator

import msgspec
import pytest

from pinbridge.backoff import EXPIRED_REASON, RetryPolicy
from pinbridge.delivery import DestinationRuntime, Sender
from pinbridge.pinterest.client import PinterestClient
from pinbridge.pinterest.emulator import (
    EmulatorConfig,
    EmulatorTransport,
    FaultSettings,
    create_emulator_app,
)
from pinbridge.pinterest.schema import ConversionEvent, UserData
from pinbridge.ratelimit import TokenBucket
from pinbridge.store import PendingEvent, PendingInput, SqliteStore

pytestmark = pytest.mark.anyio
ACCOUNT = "123456"
TOKEN = "good-token"
H = hashlib.sha256(b"jane@example.com").hexdigest()


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def payload(event_id: str, *, name: str = "checkout", age: int = 0) -> PendingEvent:
    event = ConversionEvent(
        event_name=name,
        action_source="web",
        event_time=int(time.time()) - age,
        event_id=event_id,
        user_data=UserData(em=[H]),
    )
    return PendingEvent(
        event_id=event_id,
        event_name=name,
        event_time=event.event_time,
        payload=msgspec.json.encode(event),
        destinations=("pin",),
    )


class Rig:
    """A store, an emulator, and a sender delivering to it."""

    def __init__(self, tmp_path, faults: FaultSettings | None = None, token: str = TOKEN) -> None:
        self.emulator = create_emulator_app(
            EmulatorConfig(tokens={TOKEN: frozenset({ACCOUNT})}, faults=faults or FaultSettings()),
            rng=random.Random(7),
        )
        self.store = SqliteStore(tmp_path / "pb.db")
        self.clock = Clock()
        self.client = self.make_client(token)
        self.sender = Sender(
            store=self.store,
            destinations=[
                DestinationRuntime("pin", ACCOUNT, self.client, bucket=TokenBucket(10**6))
            ],
            policy=RetryPolicy(base_seconds=1, cap_seconds=10),
            clock=self.clock,
            paused_probe_seconds=60,
            rng=random.Random(1),
        )

    def make_client(self, token: str) -> PinterestClient:
        return PinterestClient(
            token=token,
            base_url="http://emulator.test/v5",
            transport=EmulatorTransport(app=self.emulator),
            timeout=5,
        )

    async def accept(self, *events: PendingEvent) -> None:
        inputs = [PendingInput(input=b"{}", events=(e,)) for e in events]
        await self.store.accept(inputs, now=self.clock(), dedup_window=3600)

    def received(self) -> list[dict]:
        state = self.emulator.state.emulator
        return [msgspec.json.decode(r.event) for r in state.recorded(ACCOUNT)]

    async def close(self) -> None:
        await self.client.aclose()
        await self.store.aclose()


async def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.fixture(name="rig")
async def _rig(tmp_path) -> AsyncIterator[Rig]:
    rig = Rig(tmp_path)
    yield rig
    await rig.close()


class TestSender:
    async def test_processed_events_are_delivered(self, rig):
        """Queued events reach the emulator byte for byte and are marked delivered."""
        items = [payload(f"e{i}") for i in range(3)]
        await rig.accept(*items)
        assert await rig.sender.run_once("pin") == 3
        assert [msgspec.json.encode(e) for e in rig.received()] == [i.payload for i in items]
        [stats] = await rig.store.stats(now=rig.clock())
        assert (stats.queued, stats.delivered, stats.dead) == (0, 3, 0)
        assert await rig.sender.run_once("pin") == 0

    @pytest.mark.parametrize("linger", [0.0, 30.0])
    async def test_partial_batch_lingers_until_stopped(self, rig, linger):
        """After a batch that was not full the loop waits ``linger`` before claiming again
        (events that arrive meanwhile go out together); a stop ends the wait at once."""
        sender = Sender(
            store=rig.store,
            destinations=list(rig.sender.destinations.values()),
            policy=RetryPolicy(base_seconds=1, cap_seconds=10),
            clock=rig.clock,
            poll_interval=0.05,
            linger=linger,
        )
        await rig.accept(payload("first"))
        stop = asyncio.Event()
        loops = asyncio.ensure_future(sender.run(stop))
        await wait_for(lambda: len(rig.received()) == 1)
        await rig.accept(payload("second"))
        sender.wake()
        await asyncio.sleep(0.5)
        assert len(rig.received()) == (1 if linger else 2)
        stop.set()
        await asyncio.wait_for(loops, timeout=5)

    async def test_batch_with_three_failures(self, rig):
        """In a batch of 1,000, the 3 events Pinterest refuses become dead letters."""
        bad = {10, 500, 999}
        items = [payload(f"e{i}", name="purchase" if i in bad else "checkout") for i in range(1000)]
        await rig.accept(*items)
        assert await rig.sender.run_once("pin") == 1000
        letters = await rig.store.dead_letters()
        assert sorted(d.event_id for d in letters) == sorted(f"e{i}" for i in bad)
        assert all("purchase" in d.reason or "event_name" in d.reason for d in letters)
        [stats] = await rig.store.stats(now=rig.clock())
        assert (stats.delivered, stats.dead, stats.queued) == (997, 3, 0)

    async def test_retry_then_delivered(self, tmp_path):
        """A 503 answer schedules a retry; once due, the event is delivered."""
        rig = Rig(tmp_path, faults=FaultSettings(error_rate=1.0, error_statuses=(503,)))
        try:
            await rig.accept(payload("e1"))
            await rig.sender.run_once("pin")
            [stats] = await rig.store.stats(now=rig.clock())
            assert (stats.queued, stats.retrying, stats.delivered) == (1, 1, 0)
            assert await rig.sender.run_once("pin") == 0  # the backoff has not passed
            rig.emulator.state.emulator.set_faults(FaultSettings())
            rig.clock.now += 2  # past the first backoff ceiling (1 s)
            assert await rig.sender.run_once("pin") == 1
            [stats] = await rig.store.stats(now=rig.clock())
            assert (stats.queued, stats.delivered) == (0, 1)
        finally:
            await rig.close()

    async def test_retry_after_is_honoured(self, tmp_path):
        """After a 429 the event is not due before Retry-After has passed."""
        rig = Rig(tmp_path, faults=FaultSettings(burst_429=1, retry_after_seconds=30))
        try:
            await rig.accept(payload("e1"))
            await rig.sender.run_once("pin")
            rig.clock.now += 29
            assert await rig.sender.run_once("pin") == 0
            rig.clock.now += 2
            assert await rig.sender.run_once("pin") == 1
            assert len(rig.received()) == 1
        finally:
            await rig.close()

    async def test_retry_past_expiry_is_a_dead_letter(self, tmp_path):
        """A retry that would pass the event's 7-day expiry ends as a dead letter."""
        rig = Rig(tmp_path, faults=FaultSettings(error_rate=1.0, error_statuses=(500,)))
        try:
            await rig.accept(payload("old", age=7 * 86400 - 5))
            rig.sender._policy = RetryPolicy(base_seconds=3600, cap_seconds=3600)
            rig.sender._rng = random.Random(0)
            # With this seed the jittered delay is about 3,000 s: past the 5 s left.
            await rig.sender.run_once("pin")
            [letter] = await rig.store.dead_letters()
            assert letter.reason.startswith(EXPIRED_REASON)
        finally:
            await rig.close()

    async def test_unauthorized_pauses_and_keeps_events(self, tmp_path):
        """A 401 pauses the destination, keeps the events, and a later probe resumes it."""
        rig = Rig(tmp_path, token="wrong-token")
        try:
            await rig.accept(payload("e1"), payload("e2"))
            await rig.sender.run_once("pin")
            assert "401" in (await rig.store.paused())["pin"]
            [stats] = await rig.store.stats(now=rig.clock())
            assert (stats.queued, stats.retrying, stats.dead) == (2, 0, 0)
            assert await rig.sender.run_once("pin") == 0  # paused: nothing sent
            await rig.client.aclose()
            rig.client = rig.make_client(TOKEN)
            rig.sender.destinations["pin"].client = rig.client
            rig.clock.now += 61
            assert await rig.sender.run_once("pin") == 1  # the probe: one event
            assert await rig.store.paused() == {}
            assert await rig.sender.run_once("pin") == 1
            assert sorted(e["event_id"] for e in rig.received()) == ["e1", "e2"]
        finally:
            await rig.close()


class TestIsolation:
    async def test_schema_refusal_is_isolated(self, rig):
        """A payload Pinterest refuses with 400 becomes a dead letter alone; the rest go."""
        items = [payload(f"e{i}") for i in range(7)]
        broken = msgspec.json.decode(items[4].payload)
        broken["colour"] = "red"  # an unknown key: the whole request would be a 400
        items[4] = msgspec.structs.replace(items[4], payload=msgspec.json.encode(broken))
        await rig.accept(*items)
        assert await rig.sender.run_once("pin") == 7
        [letter] = await rig.store.dead_letters()
        assert letter.event_id == "e4" and letter.http_status == 400
        assert "colour" in letter.reason
        assert sorted(e["event_id"] for e in rig.received()) == [
            f"e{i}" for i in range(7) if i != 4
        ]

    async def test_expired_at_claim_is_not_sent(self, rig):
        """An event already past its expiry when claimed becomes a dead letter, unsent."""
        await rig.accept(payload("old", age=7 * 86400 - 1), payload("new"))
        rig.clock.now += 5
        assert await rig.sender.run_once("pin") == 2
        [letter] = await rig.store.dead_letters()
        assert letter.event_id == "old" and letter.reason == EXPIRED_REASON
        assert [e["event_id"] for e in rig.received()] == ["new"]
