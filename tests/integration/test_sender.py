"""The sender against the real emulator, in process, on a real SQLite store."""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import AsyncIterator

import httpx2
import msgspec
import pytest
import structlog.testing
from msgspec.structs import replace

from pinbridge.backoff import EXPIRED_REASON, RetryPolicy
from pinbridge.config import Destination, Settings, StoreSettings
from pinbridge.delivery import DestinationRuntime, Sender
from pinbridge.pinterest.client import PinterestClient
from pinbridge.pinterest.emulator import (
    EmulatorConfig,
    EmulatorTransport,
    FaultSettings,
    create_emulator_app,
)
from pinbridge.pinterest.schema import ConversionEvent, UserData
from pinbridge.service import build_service
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


class CountingBucket:
    """A rate limit that never waits and counts the tokens taken."""

    def __init__(self) -> None:
        self.taken = 0

    async def reserve(self, now: float) -> float:
        self.taken += 1
        return 0.0


class Gate(EmulatorTransport):
    """The emulator transport, counting requests; ``answer`` may answer one instead (with a
    status, or a whole response)."""

    def __init__(self, app) -> None:
        super().__init__(app=app)
        self.requests: list[int] = []  # events per request
        self.answer = lambda count, number: None

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        count = len(msgspec.json.decode(request.content)["data"])
        self.requests.append(count)
        status = self.answer(count, len(self.requests))
        if isinstance(status, httpx2.Response):
            return status
        if status is not None:
            return httpx2.Response(status, json={"code": 1, "message": f"scripted {status}"})
        return await super().handle_async_request(request)


class Rig:
    """A store, an emulator, and a sender delivering to it."""

    def __init__(self, tmp_path, faults: FaultSettings | None = None, token: str = TOKEN) -> None:
        self.emulator = create_emulator_app(
            EmulatorConfig(tokens={TOKEN: frozenset({ACCOUNT})}, faults=faults or FaultSettings()),
            rng=random.Random(7),
        )
        self.store = SqliteStore(tmp_path / "pb.db")
        self.clock = Clock()
        self.gate = Gate(self.emulator)
        self.bucket = CountingBucket()
        self.client = self.make_client(token)
        self.sender = Sender(
            store=self.store,
            destinations=[DestinationRuntime("pin", ACCOUNT, self.client, bucket=self.bucket)],
            policy=RetryPolicy(base_seconds=1, cap_seconds=10),
            clock=self.clock,
            paused_probe_seconds=60,
            rng=random.Random(1),
        )

    def make_client(self, token: str) -> PinterestClient:
        return PinterestClient(
            token=token,
            base_url="http://emulator.test/v5",
            transport=self.gate,
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


def broken(item: PendingEvent) -> PendingEvent:
    """The event with an unknown key: Pinterest refuses any request carrying it (400)."""
    event = msgspec.json.decode(item.payload)
    event["colour"] = "red"
    return msgspec.structs.replace(item, payload=msgspec.json.encode(event))


async def use_client(rig: Rig, **options) -> None:
    """Give the rig's destination a client with these options (e.g. ``max_body_bytes``)."""
    await rig.client.aclose()
    options = {"timeout": 5, **options}
    rig.client = PinterestClient(
        token=TOKEN, base_url="http://emulator.test/v5", transport=rig.gate, **options
    )
    rig.sender.destinations["pin"].client = rig.client


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

    async def test_the_log_says_why_events_wait_or_fail(self, rig):
        """A round that is not all processed logs its HTTP statuses and the first reason;
        a clean round logs counts only (at info level)."""
        rig.gate.answer = lambda count, number: 503 if number == 1 else None
        await rig.accept(payload("e1"), payload("e2"))
        with structlog.testing.capture_logs() as logs:
            await rig.sender.run_once("pin")
            rig.clock.now += 20
            await rig.sender.run_once("pin")
        sent = [e for e in logs if e["event"] == "batch sent"]
        assert [(e["log_level"], e.get("statuses")) for e in sent] == [
            ("warning", {"503": 2}),
            ("info", None),
        ]
        assert "503" in sent[0]["reason"] and "scripted 503" in sent[0]["reason"]
        assert TOKEN not in repr(logs)

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

    async def test_probe_is_not_spent_on_expired_events(self, rig):
        """After a pause longer than events live, the probe dead-letters the expired head of
        the queue in bulk, unsent, and sends the first live event: the destination resumes
        in one round."""
        await rig.accept(*(payload(f"old{i}", age=7 * 86400 - 1) for i in range(30)))
        await rig.accept(payload("new"))
        await rig.store.pause("pin", "HTTP 401", now=rig.clock())
        rig.clock.now += 5
        assert await rig.sender.run_once("pin") == 31
        assert await rig.store.paused() == {}
        assert rig.gate.requests == [1]
        assert [e["event_id"] for e in rig.received()] == ["new"]
        letters = await rig.store.dead_letters()
        assert len(letters) == 30 and {d.reason for d in letters} == {EXPIRED_REASON}

    async def test_probe_round_of_only_expired_events_keeps_the_probe(self, rig):
        """A probe round bounded before it met a live event sends nothing and does not wait
        for the next probe time: the next round goes on draining, then probes."""
        sender = Sender(
            store=rig.store,
            destinations=list(rig.sender.destinations.values()),
            policy=RetryPolicy(base_seconds=1, cap_seconds=10),
            clock=rig.clock,
            batch_size=4,
            paused_probe_seconds=60,
        )
        await rig.accept(*(payload(f"old{i}", age=7 * 86400 - 1) for i in range(100)))
        await rig.accept(payload("new"))
        await rig.store.pause("pin", "HTTP 401", now=rig.clock())
        rig.clock.now += 5
        first = await sender.run_once("pin")
        assert 0 < first < 100 and rig.gate.requests == []
        assert await sender.run_once("pin") == 101 - first
        assert rig.gate.requests == [1]
        assert await rig.store.paused() == {}

    async def test_wrong_base_url_pauses_and_keeps_events(self, rig):
        """A base URL without /v5 gets 404 for the whole request: the destination is paused
        with a reason naming the base URL, and no event becomes a dead letter."""
        await rig.client.aclose()
        rig.client = PinterestClient(
            token=TOKEN, base_url="http://emulator.test", transport=rig.gate, timeout=5
        )
        rig.sender.destinations["pin"].client = rig.client
        await rig.accept(payload("e1"), payload("e2"))
        assert await rig.sender.run_once("pin") == 2
        assert "check the base URL" in (await rig.store.paused())["pin"]
        [stats] = await rig.store.stats(now=rig.clock())
        assert (stats.queued, stats.dead) == (2, 0)


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

    async def test_every_request_takes_a_token(self, rig):
        """Split halves are rate limited like the first request: one token each."""
        items = [payload(f"e{i}") for i in range(8)]
        items[5] = broken(items[5])
        await rig.accept(*items)
        assert await rig.sender.run_once("pin") == 8
        assert len(rig.gate.requests) > 1
        assert rig.bucket.taken == len(rig.gate.requests)

    async def test_splitting_is_bounded_when_everything_is_refused(self, rig):
        """Against an API that refuses every request, a round of 64 events sends at most
        1 + 4 x 6 requests (not 127); single events refused are dead letters, the events
        the round could not decide are retried later."""
        await rig.accept(*(broken(payload(f"e{i:02}")) for i in range(64)))
        assert await rig.sender.run_once("pin") == 64
        assert len(rig.gate.requests) <= 1 + 4 * 6
        assert rig.bucket.taken == len(rig.gate.requests)
        letters = await rig.store.dead_letters()
        assert letters and all(letter.http_status == 400 for letter in letters)
        assert len(letters) == rig.gate.requests.count(1)
        [stats] = await rig.store.stats(now=rig.clock())
        assert stats.retrying == 64 - len(letters)

    @pytest.mark.parametrize("status", [429, 503])
    async def test_transient_answer_ends_the_round(self, rig, status):
        """A 429 or 5xx on one half: the other half is not sent; both are retried later."""
        items = [payload(f"e{i}") for i in range(8)]
        items[6] = broken(items[6])
        await rig.accept(*items)
        rig.gate.answer = lambda count, number: status if number == 2 else None
        assert await rig.sender.run_once("pin") == 8
        assert rig.gate.requests == [8, 4]  # the 400, then the first half; not the second
        assert rig.bucket.taken == 2
        [stats] = await rig.store.stats(now=rig.clock())
        assert (stats.retrying, stats.dead, stats.delivered) == (8, 0, 0)

    async def test_too_large_is_split_not_dead(self, rig):
        """A 413 for the whole request splits it: every event is delivered."""
        await rig.accept(*(payload(f"e{i}") for i in range(8)))
        rig.gate.answer = lambda count, number: 413 if count > 2 else None
        assert await rig.sender.run_once("pin") == 8
        assert len(rig.received()) == 8
        assert await rig.store.dead_letters() == []

    async def test_refused_request_among_several_is_split(self, rig):
        """A claim cut by size into requests of 4, 4 and 2 events: the one request refused
        (400) is split until its bad event stands alone, though the others were taken."""
        await use_client(rig, max_body_bytes=800)
        items = [payload(f"e{i}") for i in range(10)]
        items[1] = broken(items[1])
        await rig.accept(*items)
        assert await rig.sender.run_once("pin") == 10
        assert rig.gate.requests[:3] == [4, 4, 2]
        [letter] = await rig.store.dead_letters()
        assert letter.event_id == "e1" and letter.http_status == 400
        assert sorted(e["event_id"] for e in rig.received()) == sorted(
            f"e{i}" for i in range(10) if i != 1
        )

    async def test_set_aside_event_does_not_stop_splitting(self, rig):
        """An event set aside as oversized (failed, never sent) does not keep the refused
        request beside it from being split: only it and the bad event are dead letters."""
        await use_client(rig, max_body_bytes=800)
        items = [payload(f"e{i}") for i in range(5)]
        huge = msgspec.json.decode(items[0].payload)
        huge["custom_data"] = {"content_name": "x" * 2000}
        items[0] = msgspec.structs.replace(items[0], payload=msgspec.json.encode(huge))
        items[3] = broken(items[3])
        await rig.accept(*items)
        assert await rig.sender.run_once("pin") == 5
        letters = await rig.store.dead_letters()
        assert sorted(d.event_id for d in letters) == ["e0", "e3"]
        assert sorted(e["event_id"] for e in rig.received()) == ["e1", "e2", "e4"]

    async def test_refused_request_before_an_ending_answer_is_retried(self, rig):
        """A refused request that cannot be split because a later request of the round got
        429 is not decided: its events are retried, not dead letters."""
        await use_client(rig, max_body_bytes=800)
        items = [payload(f"e{i}") for i in range(10)]
        items[1] = broken(items[1])
        await rig.accept(*items)
        rig.gate.answer = lambda count, number: 429 if number == 2 else None
        assert await rig.sender.run_once("pin") == 10
        assert rig.gate.requests == [4, 4]
        [stats] = await rig.store.stats(now=rig.clock())
        assert (stats.retrying, stats.dead, stats.delivered) == (10, 0, 0)

    async def test_expired_at_claim_is_not_sent(self, rig):
        """An event already past its expiry when claimed becomes a dead letter, unsent."""
        await rig.accept(payload("old", age=7 * 86400 - 1), payload("new"))
        rig.clock.now += 5
        assert await rig.sender.run_once("pin") == 2
        [letter] = await rig.store.dead_letters()
        assert letter.event_id == "old" and letter.reason == EXPIRED_REASON
        assert [e["event_id"] for e in rig.received()] == ["new"]


def too_many(seconds: int) -> httpx2.Response:
    """Pinterest's 429 with ``Retry-After``."""
    body = {"code": 8, "message": "rate limited"}
    return httpx2.Response(429, json=body, headers={"Retry-After": str(seconds)})


class TestRetryAfter:
    async def test_429_holds_every_destination_of_the_ad_account(self, rig):
        """After a 429 with Retry-After: 60, neither the destination nor another one on the
        same ad account sends anything before the minute is over; then both do."""
        client = rig.make_client(TOKEN)
        other = DestinationRuntime("pin2", ACCOUNT, client, bucket=rig.bucket)
        sender = Sender(
            store=rig.store,
            destinations=[rig.sender.destinations["pin"], other],
            policy=RetryPolicy(base_seconds=1, cap_seconds=10),
            clock=rig.clock,
            batch_size=5,
        )
        both = ("pin", "pin2")
        await rig.accept(*(replace(payload(f"e{i}"), destinations=both) for i in range(10)))
        rig.gate.answer = lambda count, number: too_many(60) if number == 1 else None
        try:
            assert await sender.run_once("pin") == 5
            assert rig.gate.requests == [5]
            rig.clock.now += 59
            assert await sender.run_once("pin") == 0
            assert await sender.run_once("pin2") == 0
            assert rig.gate.requests == [5]
            rig.clock.now += 2
            assert await sender.run_once("pin2") == 5
            assert await sender.run_once("pin") == 5
        finally:
            await client.aclose()

    async def test_a_test_mode_429_does_not_hold_live_destinations(self, rig):
        """Test calls have their own limit: a test destination's 429 holds the account's
        test destinations, not its live one (and the other way round)."""
        client = rig.make_client(TOKEN)
        staging = DestinationRuntime("staging", ACCOUNT, client, test=True, bucket=rig.bucket)
        sender = Sender(
            store=rig.store,
            destinations=[rig.sender.destinations["pin"], staging],
            policy=RetryPolicy(base_seconds=1, cap_seconds=10),
            clock=rig.clock,
        )
        both = ("pin", "staging")
        await rig.accept(*(replace(payload(f"e{i}"), destinations=both) for i in range(4)))
        rig.gate.answer = lambda count, number: too_many(60) if number == 1 else None
        try:
            assert await sender.run_once("staging") == 4
            assert await sender.run_once("pin") == 4
            assert [e["event_id"] for e in rig.received()] == ["e0", "e1", "e2", "e3"]
            assert sender.held(staging, rig.clock()) > 59
            assert sender.held(rig.sender.destinations["pin"], rig.clock()) == 0
        finally:
            await client.aclose()

    async def test_429_stops_the_loops_sending(self, rig):
        """Against an API answering every request 429 with Retry-After: 60, the loops of a
        destination send no more than one request each (not one per batch queued)."""
        sender = Sender(
            store=rig.store,
            destinations=list(rig.sender.destinations.values()),
            policy=RetryPolicy(base_seconds=1, cap_seconds=10),
            clock=rig.clock,
            batch_size=100,
            poll_interval=0.01,
            concurrency=2,
        )
        await rig.accept(*(payload(f"e{i}") for i in range(1000)))
        rig.gate.answer = lambda count, number: too_many(60)
        stop = asyncio.Event()
        loops = asyncio.ensure_future(sender.run(stop))
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.wait_for(loops, timeout=5)
        assert 1 <= len(rig.gate.requests) <= 2
        [stats] = await rig.store.stats(now=rig.clock())
        assert stats.retrying <= 200  # at most the two rounds in flight when the 429 came

    async def test_503_with_retry_after_holds_the_split(self, rig):
        """A 503 with Retry-After ends the round and holds the account like a 429."""
        items = [payload(f"e{i}") for i in range(8)]
        await rig.accept(*items)
        rig.gate.answer = lambda count, number: httpx2.Response(
            503, json={"code": 4197, "message": "down"}, headers={"Retry-After": "30"}
        )
        assert await rig.sender.run_once("pin") == 8
        await rig.accept(payload("late"))
        assert await rig.sender.run_once("pin") == 0
        assert rig.gate.requests == [8]
        rig.clock.now += 31
        rig.gate.answer = lambda count, number: None
        assert await rig.sender.run_once("pin") == 9


class LeaseWatch:
    """A rate limit that waits ``wait`` seconds per call and notes how many of the store's
    rows were leased when each call was made."""

    def __init__(self, store, clock, wait: float = 0.0) -> None:
        self.store, self.clock, self.wait = store, clock, wait
        self.in_flight: list[int] = []

    async def reserve(self, now: float) -> float:
        [stats] = await self.store.stats(now=self.clock()) or [None]
        self.in_flight.append(stats.in_flight if stats else 0)
        return self.wait


class OwnerRecorder:
    """The real store, noting the owner of every claim."""

    def __init__(self, store) -> None:
        self.store = store
        self.owners: set[str] = set()

    def __getattr__(self, name):
        return getattr(self.store, name)

    async def claim(self, destination, *, owner, **options):
        self.owners.add(owner)
        return await self.store.claim(destination, owner=owner, **options)


class TestLease:
    async def test_rate_limit_wait_comes_before_the_claim(self, rig):
        """The wait for a round's first request is taken before claiming: no lease is held
        while waiting for the rate limit."""
        watch = LeaseWatch(rig.store, rig.clock)
        rig.sender.destinations["pin"].bucket = watch
        await rig.accept(*(payload(f"e{i}") for i in range(5)))
        assert await rig.sender.run_once("pin") == 5
        assert rig.gate.requests == [5]
        assert watch.in_flight == [0]

    async def test_round_stops_before_its_lease_ends(self, rig):
        """A round whose rate-limit waits would outlast its lease stops sending in time: the
        events not sent are retried later, every outcome is recorded under the lease."""
        await use_client(rig, max_body_bytes=400, timeout=0.2)  # 2 events a request
        rig.sender.destinations["pin"].bucket = LeaseWatch(rig.store, rig.clock, wait=0.3)
        sender = Sender(
            store=rig.store,
            destinations=list(rig.sender.destinations.values()),
            policy=RetryPolicy(base_seconds=1, cap_seconds=10),
            clock=rig.clock,
            lease_seconds=1.0,
        )
        await rig.accept(*(payload(f"e{i}") for i in range(10)))
        started = time.monotonic()
        assert await sender.run_once("pin") == 10
        took = time.monotonic() - started - 0.3  # less the wait before the claim
        assert took < 1.0
        sent = len(rig.gate.requests)
        assert 1 <= sent < 5
        [stats] = await rig.store.stats(now=rig.clock())
        assert (stats.delivered, stats.retrying) == (2 * sent, 10 - 2 * sent)
        assert len(rig.received()) == 2 * sent

    async def test_each_loop_has_its_own_owner(self, rig):
        """The loops of a destination claim under different owners, so the completion of a
        round that lost its lease cannot pass for the other loop's."""
        store = OwnerRecorder(rig.store)
        sender = Sender(
            store=store,
            destinations=list(rig.sender.destinations.values()),
            policy=RetryPolicy(base_seconds=1, cap_seconds=10),
            clock=rig.clock,
            batch_size=5,
            poll_interval=0.01,
            concurrency=2,
        )
        await rig.accept(*(payload(f"e{i}") for i in range(20)))
        stop = asyncio.Event()
        loops = asyncio.ensure_future(sender.run(stop))
        await wait_for(lambda: len(rig.received()) == 20)
        stop.set()
        await asyncio.wait_for(loops, timeout=5)
        assert len(store.owners) == 2


class TestRateLimits:
    async def test_test_mode_has_its_own_lower_limit(self):
        """Test destinations also take from test mode's budget (10 requests a second, shared);
        a destination that is not in test mode has only its ad account's."""
        settings = Settings(
            store=StoreSettings(url="memory:"),
            destinations=(
                Destination(name="a", ad_account_id="111", token="t", test=True),
                Destination(name="b", ad_account_id="222", token="t", test=True),
                Destination(name="live", ad_account_id="333", token="t"),
            ),
        )
        service = build_service(settings, with_collector=False)
        try:
            runtimes = service.sender.destinations
            now = time.time()
            waits = [await runtimes[n].bucket.reserve(now) for n in ("a", "b") * 5]
            assert waits == [0.0] * 10
            assert await runtimes["a"].bucket.reserve(now) == pytest.approx(0.1)
            assert await runtimes["b"].bucket.reserve(now) == pytest.approx(0.2)
            assert [await runtimes["live"].bucket.reserve(now) for _ in range(20)] == [0.0] * 20
        finally:
            for client in service.clients:
                await client.aclose()
            await service.store.aclose()
