"""PinterestClient against the emulator, in process (ASGI) and over real HTTP on loopback."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx2
import msgspec
import pytest

from pinbridge.pinterest.batching import plan_chunks
from pinbridge.pinterest.client import Outcome, PinterestClient
from pinbridge.pinterest.emulator import EmulatorConfig, EmulatorTransport, create_emulator_app
from pinbridge.pinterest.errors import ApiError
from pinbridge.pinterest.schema import ConversionEvent, UserData
from tests.integration.conftest import (
    ACCOUNT,
    OTHER_TOKEN,
    TOKEN,
    TOKENS,
    H,
    LiveEmulator,
    event,
)

pytestmark = pytest.mark.anyio

DAY = 86400


class Target:
    """An emulator reached through a PinterestClient, with its control API beside."""

    def __init__(
        self,
        base_url: str,
        control: httpx2.AsyncClient,
        transport: httpx2.AsyncBaseTransport | None,
    ) -> None:
        self.base_url = base_url
        self.control = control
        self.transport = transport
        self.clients: list[PinterestClient] = []

    def client(self, token: str = TOKEN, **options: Any) -> PinterestClient:
        """A PinterestClient to this emulator, closed at teardown."""
        client = PinterestClient(
            token=token, base_url=self.base_url, transport=self.transport, **options
        )
        self.clients.append(client)
        return client

    async def faults(self, **change: Any) -> None:
        """Change the injected faults."""
        response = await self.control.post("/_emulator/faults", json=change)
        assert response.status_code == 200, response.text

    async def recorded(self) -> list[str]:
        """The event ids recorded for the test account, in arrival order."""
        answer = (await self.control.get(f"/_emulator/events?ad_account_id={ACCOUNT}")).json()
        return [record["event"]["event_id"] for record in answer["events"]]

    async def stats(self) -> dict[str, Any]:
        """The emulator's counters."""
        return dict((await self.control.get("/_emulator/stats")).json())


@pytest.fixture(name="target", params=["asgi", "http"])
async def _target(request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    """The emulator with the test tokens, in process or behind uvicorn; fresh for each test."""
    if request.param == "asgi":
        app = create_emulator_app(EmulatorConfig(tokens=TOKENS, seed=1))
        transport: httpx2.AsyncBaseTransport | None = EmulatorTransport(app=app)
        control = httpx2.AsyncClient(transport=transport, base_url="http://emulator")
        base_url = "http://emulator/v5"
    else:
        live = request.getfixturevalue("emulator_server")
        transport, control, base_url = None, httpx2.AsyncClient(base_url=live.url), live.url + "/v5"
        await control.post("/_emulator/reset")
    target = Target(base_url, control, transport)
    yield target
    for client in target.clients:
        await client.aclose()
    await control.post("/_emulator/reset")
    await control.aclose()


def encode(*events: dict[str, Any]) -> list[bytes]:
    """Each event JSON-encoded, as the sender hands them over."""
    return [msgspec.json.encode(e) for e in events]


def kinds(outcomes: list[Outcome]) -> list[str]:
    return [o.kind for o in outcomes]


class TestOutcomeClasses:
    """Every outcome class, from the emulator's real answers."""

    async def test_processed_with_warning(self, target: Target) -> None:
        """Accepted events are processed; a warning is kept; both are recorded."""
        now = int(time.time())
        typed = ConversionEvent(
            event_name="checkout", action_source="web", event_time=now, event_id="a",
            user_data=UserData(em=[H]),
        )  # fmt: skip
        payloads = [msgspec.json.encode(typed)]
        payloads += encode(event(now, event_id="b", custom_data={"currency": "usd"}))
        outcomes = await target.client().send(ACCOUNT, payloads)
        assert kinds(outcomes) == ["processed", "processed"]
        assert outcomes[0].warning == "" and outcomes[0].http_status == 200
        assert "currency 'usd'" in outcomes[1].warning
        assert await target.recorded() == ["a", "b"]

    async def test_failed_events(self, target: Target) -> None:
        """An unhashed email and a too-old event fail with Pinterest's message; the rest pass."""
        now = int(time.time())
        payloads = encode(
            event(now, event_id="a"),
            event(now, event_id="b", user_data={"em": ["someone@example.com"]}),
            event(now, event_id="c", event_time=now - 8 * DAY),
        )
        outcomes = await target.client().send(ACCOUNT, payloads)
        assert kinds(outcomes) == ["processed", "failed", "failed"]
        assert {o.http_status for o in outcomes} == {422}
        assert "not in hashed format" in outcomes[1].message
        assert "Given timestamp is in the past" in outcomes[2].message
        assert await target.recorded() == ["a"]

    async def test_schema_error(self, target: Target) -> None:
        """A payload with an unknown key makes Pinterest refuse the request: all failed."""
        now = int(time.time())
        payloads = encode(event(now, event_id="a"), event(now, event_id="b", extra=1))
        outcomes = await target.client().send(ACCOUNT, payloads)
        assert kinds(outcomes) == ["failed", "failed"]
        assert "('extra' was unexpected)" in outcomes[0].message
        assert "(HTTP 400, code 4196)" in outcomes[0].message
        assert await target.recorded() == []

    @pytest.mark.parametrize(
        ("token", "status", "text"),
        [("tok-unknown", 401, "Authentication failed. (HTTP 401, code 2)"),
         (OTHER_TOKEN, 403, "not permitted to access that resource. (HTTP 403, code 29)")],
    )  # fmt: skip
    async def test_stopped(self, target: Target, token: str, status: int, text: str) -> None:
        """A refused token or account stops the destination; the events are kept."""
        outcomes = await target.client(token).send(ACCOUNT, encode(event(int(time.time()))))
        assert kinds(outcomes) == ["stopped"]
        assert outcomes[0].http_status == status and text in outcomes[0].message

    async def test_rate_limited(self, target: Target) -> None:
        """A burst of 429 gives retry with Retry-After; the next call goes through."""
        await target.faults(burst_429=1, retry_after_seconds=7)
        client = target.client()
        [outcome] = await client.send(ACCOUNT, encode(event(int(time.time()))))
        assert (outcome.kind, outcome.http_status, outcome.retry_after) == ("retry", 429, 7.0)
        assert kinds(await client.send(ACCOUNT, encode(event(int(time.time()))))) == ["processed"]

    @pytest.mark.parametrize(("status", "text"), [(500, "code 1"), (503, "code 4197")])
    async def test_server_errors(self, target: Target, status: int, text: str) -> None:
        """Injected 500 and 503 (ramped down) answers are retries."""
        await target.faults(error_rate=1.0, error_statuses=[status])
        outcomes = await target.client().send(ACCOUNT, encode(event(int(time.time()))))
        assert kinds(outcomes) == ["retry"]
        assert outcomes[0].http_status == status and text in outcomes[0].message

    async def test_timeout(self, target: Target) -> None:
        """An answer slower than the timeout is a retry."""
        await target.faults(latency_ms=300)
        client = target.client(timeout=0.05)
        outcomes = await client.send(ACCOUNT, encode(event(int(time.time()))))
        assert kinds(outcomes) == ["retry"] and "timed out" in outcomes[0].message
        await anyio.sleep(0.4)  # let the server finish the slow request before the reset

    async def test_dropped_connection(self, target: Target) -> None:
        """A connection dropped mid-answer is a retry naming the protocol failure."""
        await target.faults(drop_rate=1.0)
        outcomes = await target.client().send(ACCOUNT, encode(event(int(time.time()))))
        assert kinds(outcomes) == ["retry"]
        assert "RemoteProtocolError" in outcomes[0].message
        assert outcomes[0].http_status is None

    async def test_test_mode(self, target: Target) -> None:
        """``?test=true`` (per client or per call) is answered alike and records nothing."""
        now = int(time.time())
        testing = target.client(test=True)
        assert kinds(await testing.send(ACCOUNT, encode(event(now, event_id="t1")))) == [
            "processed"
        ]
        plain = target.client()
        assert kinds(await plain.send(ACCOUNT, encode(event(now, event_id="t2")), test=True)) == [
            "processed"
        ]
        assert await target.recorded() == []
        assert (await target.stats())["test_requests"] == 2
        await testing.send(ACCOUNT, encode(event(now, event_id="real")), test=False)
        assert await target.recorded() == ["real"]


class TestBatches:
    """Large calls: positions of failures, splitting by count and by bytes."""

    async def test_three_failures_in_a_thousand(self, target: Target) -> None:
        """Of 1,000 events, exactly the 3 invalid ones fail, at their positions."""
        now = int(time.time())
        events = [event(now, event_id=f"e{i}") for i in range(1000)]
        events[3]["user_data"] = {"em": ["plain@example.com"]}
        events[500]["event_time"] = now - 8 * DAY
        events[999]["event_name"] = "purchase"
        outcomes = await target.client().send(ACCOUNT, encode(*events))
        failed = [i for i, o in enumerate(outcomes) if o.kind == "failed"]
        assert failed == [3, 500, 999]
        assert kinds(outcomes).count("processed") == 997
        assert "hashed format" in outcomes[3].message
        assert "in the past" in outcomes[500].message
        assert "event_name" in outcomes[999].message
        recorded = await target.recorded()
        assert recorded == [f"e{i}" for i in range(1000) if i not in (3, 500, 999)]

    async def test_split_by_count(self, target: Target) -> None:
        """2,500 events go as 3 requests and arrive all, in order."""
        now = int(time.time())
        payloads = encode(*[event(now, event_id=f"e{i}") for i in range(2500)])
        outcomes = await target.client().send(ACCOUNT, payloads)
        assert kinds(outcomes) == ["processed"] * 2500
        assert (await target.stats())["requests_by_status"] == {"200": 3}
        assert await target.recorded() == [f"e{i}" for i in range(2500)]

    async def test_split_by_bytes_with_oversized(self, target: Target) -> None:
        """A byte budget splits the call; an event over it alone fails and is never sent."""
        now = int(time.time())
        events = [event(now, event_id=f"e{i}") for i in range(20)]
        events[7]["custom_data"] = {"content_name": "x" * 5000}
        payloads = encode(*events)
        outcomes = await target.client(max_body_bytes=1500).send(ACCOUNT, payloads)
        assert [i for i, o in enumerate(outcomes) if o.kind != "processed"] == [7]
        assert outcomes[7].kind == "failed" and "not sent" in outcomes[7].message
        plan = plan_chunks([len(p) for p in payloads], max_body_bytes=1500)
        assert len(plan.chunks) > 1
        assert (await target.stats())["requests_by_status"] == {"200": len(plan.chunks)}
        assert await target.recorded() == [f"e{i}" for i in range(20) if i != 7]


class TestConversionEqs:
    """``conversion_eqs`` through the client."""

    async def test_scores(self, target: Target) -> None:
        """The emulator's scores come back decoded; a bad query raises ApiError."""
        client = target.client()
        await client.send(ACCOUNT, encode(event(int(time.time()))))
        scores = await client.conversion_eqs(ACCOUNT, lookback_period="14d")
        assert [s["source_platform"] for s in scores] == ["WEB"]
        with pytest.raises(ApiError) as info:
            await client.conversion_eqs(ACCOUNT, lookback_period="7d")
        assert info.value.http_status == 400


async def test_keep_alive(
    emulator_server: LiveEmulator,
    live_emulator: httpx2.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Over a real socket, successive requests of a client reuse one connection."""
    caplog.set_level(logging.DEBUG, logger="httpcore2")
    async with PinterestClient(token=TOKEN, base_url=emulator_server.url + "/v5") as client:
        for number in range(3):
            payloads = encode(event(int(time.time()), event_id=f"k{number}"))
            assert kinds(await client.send(ACCOUNT, payloads)) == ["processed"]
    connects = [r for r in caplog.records if r.getMessage().startswith("connect_tcp.started")]
    assert len(connects) == 1


async def test_token_never_logged(target: Target, caplog: pytest.LogCaptureFixture) -> None:
    """At DEBUG, across success, refusal, drop and timeout, no log record shows the token."""
    caplog.set_level(logging.DEBUG)
    client = target.client(timeout=0.05)
    payloads = encode(event(int(time.time())))
    assert kinds(await client.send(ACCOUNT, payloads)) == ["processed"]
    await target.faults(drop_rate=1.0)
    assert kinds(await client.send(ACCOUNT, payloads)) == ["retry"]
    await target.faults(drop_rate=0.0, latency_ms=200)
    assert kinds(await client.send(ACCOUNT, payloads)) == ["retry"]
    await anyio.sleep(0.3)
    assert kinds(await target.client("wrong-token").send(ACCOUNT, payloads)) == ["stopped"]
    assert caplog.records
    assert not [r for r in caplog.records if TOKEN in r.getMessage() or TOKEN in str(r.args)]
