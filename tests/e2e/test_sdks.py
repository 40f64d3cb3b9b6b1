"""Segment's and RudderStack's Python SDKs, unchanged, against a real ``pinbridge run``.

Both SDKs post ``{"batch": [...], "sentAt": ...}`` to ``/v1/batch`` with the write key as
the HTTP Basic user name, ``context.library`` set, and a ``messageId`` per call; Segment
gzips when asked, RudderStack by default. What reaches the emulator is checked call by call:
the Pinterest event name, ``event_id`` equal to the SDK's ``messageId``, the hashed email,
and an ``event_time`` that ``sentAt`` corrected.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
import rudderstack.analytics as rudder_analytics
import rudderstack.analytics.client as rudder_client_module
import rudderstack.analytics.consumer as rudder_consumer
import rudderstack.analytics.request as rudder_request
import segment.analytics.client as segment_client_module
import segment.analytics.consumer as segment_consumer
import segment.analytics.request as segment_request
from rudderstack.analytics import Client as RudderClient
from segment.analytics import Client as SegmentClient

from pinbridge.config import ServerSettings
from tests.e2e.conftest import WRITE_KEY, Emulator, EventLog, Pinbridge, running_stack, wait_until

pytestmark = pytest.mark.slow

DELIVERY_TIMEOUT = 20.0
EMAIL = " Someone@Example.COM "
EMAIL_HASH = hashlib.sha256(b"someone@example.com").hexdigest()
PINTEREST_NAMES = {"track": "checkout", "page": "page_visit"}
CONTEXT = {
    "ip": "203.0.113.9",
    "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
    "traits": {"email": EMAIL},
}


@dataclass
class Pipeline:
    emulator: Emulator
    pinbridge: Pinbridge
    log: EventLog


@pytest.fixture(name="pipeline", scope="module")
def _pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """One emulator and one pinbridge with default settings, shared by this module's tests."""
    with running_stack(tmp_path_factory.mktemp("sdks")) as stack:
        emulator = stack.emulator()
        yield Pipeline(emulator, stack.pinbridge(emulator), EventLog(emulator))


@dataclass
class Sent:
    """What an SDK handed to its ``post``: the batches, and errors reported to ``on_error``."""

    batches: list[list[dict[str, Any]]] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)

    def on_error(self, error: Exception, batch: object) -> None:
        self.errors.append(error)


def record_posts(monkeypatch: pytest.MonkeyPatch, module: Any) -> Sent:
    """Wrap the ``post`` a consumer module calls, recording every batch it uploads."""
    sent = Sent()
    original = module.post

    def post(*args: Any, **kwargs: Any) -> Any:
        sent.batches.append(list(kwargs["batch"]))
        return original(*args, **kwargs)

    monkeypatch.setattr(module, "post", post)
    return sent


def skew_clock(monkeypatch: pytest.MonkeyPatch, seconds: float, *modules: Any) -> None:
    """Make ``datetime.now()`` in the SDK's modules run ``seconds`` behind: a device's bad clock."""

    class Skewed(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> Skewed:
            return cls.fromtimestamp(time.time() - seconds, tz)

    for module in modules:
        monkeypatch.setattr(module, "datetime", Skewed)


def delivered(pipeline: Pipeline, ids: set[str]) -> dict[str, dict[str, Any]]:
    """Wait until every id reached the emulator; the Pinterest events by event_id."""
    wait_until(
        lambda: not pipeline.log.missing(ids),
        timeout=DELIVERY_TIMEOUT,
        what=f"{len(ids)} events at the emulator",
    )
    return {
        r["event"]["event_id"]: r["event"]
        for r in pipeline.log.records
        if r["event"]["event_id"] in ids
    }


def calls(client: Any, user: str, count: int) -> dict[str, tuple[str, str]]:
    """``count`` rounds of track, page and identify; messageId → (type, Pinterest name)."""
    made: dict[str, tuple[str, str]] = {}
    for n in range(count):
        _, message = client.track(
            user,
            "Order Completed",
            {"order_id": f"{user}-{n}", "revenue": 10 + n, "currency": "USD"},
            context=copy.deepcopy(CONTEXT),
        )
        made[message["messageId"]] = ("track", "checkout")
        _, message = client.page(
            user,
            name="Home",
            properties={"url": "https://shop.example/"},
            context=copy.deepcopy(CONTEXT),
        )
        made[message["messageId"]] = ("page", "page_visit")
        _, message = client.identify(user, {"email": EMAIL})
        made[message["messageId"]] = ("identify", "")
    return made


def check_delivery(
    pipeline: Pipeline, made: dict[str, tuple[str, str]], started: float, *, skew: float = 0
) -> None:
    """Every track and page arrived as its Pinterest event; no identify was sent."""
    wanted = {m for m, (_, name) in made.items() if name}
    events = delivered(pipeline, wanted)
    finished = time.time()
    for message_id in wanted:
        event = events[message_id]
        assert event["event_name"] == made[message_id][1]
        assert event["event_id"] == message_id
        assert event["user_data"]["em"] == [EMAIL_HASH]
        # sentAt corrects the device's clock: the event is stamped by the server's time.
        assert started - 2 <= event["event_time"] <= finished + 2, (skew, event["event_time"])
    identifies = {m for m, (kind, _) in made.items() if kind == "identify"}
    assert not identifies & set(pipeline.log.refresh().received)


def segment(pipeline: Pipeline, sent: Sent, **options: Any) -> SegmentClient:
    """A Segment client on the test's pinbridge, gzip on, errors recorded."""
    options = {"max_retries": 3, **options}
    return SegmentClient(
        write_key=WRITE_KEY,
        host=pipeline.pinbridge.url,
        gzip=True,
        on_error=sent.on_error,
        **options,
    )


def rudder(pipeline: Pipeline, sent: Sent, **options: Any) -> RudderClient:
    """A RudderStack client on the test's pinbridge (gzip is its default), errors recorded."""
    options = {"max_retries": 3, **options}
    return RudderClient(
        write_key=WRITE_KEY, host=pipeline.pinbridge.url, on_error=sent.on_error, **options
    )


def stop(client: Any) -> None:
    """Flush and end the client's consumer thread."""
    client.flush()
    client.join()


class TestSegment:
    def test_batched_calls(self, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
        """Background batches of track, page and identify (gzip) all arrive, once each."""
        sent = record_posts(monkeypatch, segment_consumer)
        started = time.time()
        client = segment(pipeline, sent)
        made = calls(client, "seg-batch", 60)
        stop(client)
        assert not sent.errors
        assert max(len(b) for b in sent.batches) == 100  # the SDK's upload_size
        assert sum(len(b) for b in sent.batches) == len(made)
        assert all(m["context"]["library"]["name"] == "analytics-python" for m in sent.batches[0])
        check_delivery(pipeline, made, started)

    def test_sync_mode(self, pipeline: Pipeline) -> None:
        """In sync mode every call is its own gzip request, answered before the call returns."""
        started = time.time()
        client = segment(pipeline, Sent(), sync_mode=True)
        check_delivery(pipeline, calls(client, "seg-sync", 2), started)

    def test_device_clock_corrected(
        self, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A device clock an hour behind stamps timestamp and sentAt alike; the event is on time."""
        skew_clock(monkeypatch, 3600, segment_client_module, segment_request)
        sent = record_posts(monkeypatch, segment_consumer)
        started = time.time()
        client = segment(pipeline, sent)
        made = calls(client, "seg-skew", 2)
        stop(client)
        stamp = sent.batches[0][0]["timestamp"]
        assert dt.datetime.fromisoformat(stamp).timestamp() < started - 3500
        check_delivery(pipeline, made, started, skew=3600)

    def test_largest_batch(self, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
        """The biggest batch the SDK builds (under 475 KB of calls, then one of 32 KB) is taken."""

        def size(notes: int) -> int:
            _, message = measure.track(
                "seg-big", "Product Added", {"notes": "x" * notes}, context=copy.deepcopy(CONTEXT)
            )
            return len(json.dumps(message))

        measure = SegmentClient(write_key=WRITE_KEY, send=False)
        overhead = size(0)
        small = (segment_consumer.BATCH_SIZE_LIMIT - 1) // 15 - overhead
        largest = segment_consumer.MAX_MSG_SIZE - overhead
        sent = record_posts(monkeypatch, segment_consumer)
        client = segment(pipeline, sent, max_retries=0)
        made = {}
        for n in range(16):
            _, message = client.track(
                "seg-big",
                "Product Added",
                {"notes": "x" * (small if n < 15 else largest)},
                context=copy.deepcopy(CONTEXT),
            )
            made[message["messageId"]] = ("track", "add_to_cart")
        stop(client)
        assert not sent.errors
        assert [len(b) for b in sent.batches] == [16]
        body = json.dumps({"batch": sent.batches[0], "sentAt": "x" * 32, "writeKey": WRITE_KEY})
        assert 507_000 < len(body) <= ServerSettings().max_body_bytes
        check_delivery(pipeline, made, time.time() - 30)

    def test_retry_after(
        self, pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A 429 with Retry-After makes the SDK wait and send again; nothing is lost."""
        with running_stack(tmp_path) as stack:
            limited = stack.pinbridge(
                pipeline.emulator, config="[server]\nrequests_per_minute_per_key = 60\n"
            )
            for _ in range(60):
                limited.post("/v1/batch", {"batch": []})
            assert limited.post("/v1/batch", {"batch": []}).status_code == 429
            answers: list[int] = []
            original = segment_request._session.post

            def post(*args: Any, **kwargs: Any) -> Any:
                response = original(*args, **kwargs)
                answers.append(response.status_code)
                return response

            monkeypatch.setattr(segment_request._session, "post", post)
            sent = Sent()
            started = time.time()
            client = SegmentClient(
                write_key=WRITE_KEY, host=limited.url, gzip=True, on_error=sent.on_error
            )
            made = calls(client, "seg-429", 1)
            stop(client)
            assert not sent.errors
            assert answers[0] == 429 and answers[-1] == 200
            check_delivery(pipeline, made, started)


class TestRudderStack:
    def test_module_api(self, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
        """The documented setup (write_key, dataPlaneUrl on the module) delivers batches."""
        sent = record_posts(monkeypatch, rudder_consumer)
        monkeypatch.setattr(rudder_analytics, "write_key", WRITE_KEY)
        monkeypatch.setattr(rudder_analytics, "dataPlaneUrl", pipeline.pinbridge.url)
        monkeypatch.setattr(rudder_analytics, "on_error", sent.on_error)
        monkeypatch.setattr(rudder_analytics, "default_client", None)
        started = time.time()
        made: dict[str, tuple[str, str]] = {}
        for n in range(60):
            user = "rudder-module"
            rudder_analytics.track(
                user,
                "Order Completed",
                {"order_id": f"{user}-{n}", "revenue": 3},
                context=copy.deepcopy(CONTEXT),
            )
            rudder_analytics.page(user, name="Home", context=copy.deepcopy(CONTEXT))
            rudder_analytics.identify(user, {"email": EMAIL})
        client = rudder_analytics.default_client
        stop(client)
        assert not sent.errors
        assert max(len(b) for b in sent.batches) == 100
        for batch in sent.batches:
            for message in batch:
                assert message["context"]["library"]["name"] == "analytics-python"
                kind = message["type"]
                made[message["messageId"]] = (kind, PINTEREST_NAMES.get(kind, ""))
        assert len(made) == 180
        check_delivery(pipeline, made, started)

    def test_sync_mode_and_clock(self, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
        """Sync mode (gzip by default) works, and a clock an hour behind is corrected."""
        skew_clock(monkeypatch, 3600, rudder_client_module, rudder_request)
        started = time.time()
        client = rudder(pipeline, Sent(), sync_mode=True)
        check_delivery(pipeline, calls(client, "rudder-sync", 2), started, skew=3600)

    def test_refusal_not_retried(self, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
        """An unknown write key is a 401 with ``code``, which the SDK does not retry."""
        sent = record_posts(monkeypatch, rudder_consumer)
        attempts: list[int] = []
        original = rudder_request._session.post

        def post(*args: Any, **kwargs: Any) -> Any:
            response = original(*args, **kwargs)
            attempts.append(response.status_code)
            return response

        monkeypatch.setattr(rudder_request._session, "post", post)
        client = RudderClient(
            write_key="not-a-key",
            host=pipeline.pinbridge.url,
            on_error=sent.on_error,
            max_retries=1,
        )
        client.track("rudder-401", "Order Completed", {"order_id": "x"})
        stop(client)
        assert attempts == [401]
        [error] = sent.errors
        assert isinstance(error, rudder_request.APIError)
        assert (error.status, error.code) == (401, "unauthorized")


def test_error_answers_name_a_code(pipeline: Pipeline) -> None:
    """Error answers carry ``code`` and ``message``, which both SDKs read."""
    answer = httpx2.post(f"{pipeline.pinbridge.url}/v1/batch", json={"batch": []}, timeout=10)
    assert answer.status_code == 401
    assert answer.json() == {
        "success": False,
        "code": "unauthorized",
        "message": "unknown or missing write key",
    }
