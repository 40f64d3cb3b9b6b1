"""From the collector to the emulator, through real ``pinbridge run`` and emulator processes."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from pinbridge.transform import Transformer
from tests.e2e.conftest import EventLog, Pinbridge, running_stack, wait_until

pytestmark = pytest.mark.slow

#: Seconds an accepted event gets to reach the emulator.
DELIVERY_TIMEOUT = 20.0


@dataclass
class Pipeline:
    """The running pair and what the emulator received."""

    pinbridge: Pinbridge
    log: EventLog


@pytest.fixture(name="pipeline", scope="module")
def _pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """One emulator and one pinbridge with default settings, shared by this module's tests."""
    with running_stack(tmp_path_factory.mktemp("pipeline")) as stack:
        emulator = stack.emulator()
        yield Pipeline(stack.pinbridge(emulator), EventLog(emulator))


def iso(seconds_ago: int) -> str:
    """An explicit timestamp, so that event_time does not depend on when pinbridge reads it."""
    return datetime.fromtimestamp(int(time.time()) - seconds_ago, UTC).isoformat()


def order(message_id: str, **changes: Any) -> dict[str, Any]:
    """A Segment ``Order Completed`` call with PII, products and an explicit timestamp."""
    call: dict[str, Any] = {
        "type": "track",
        "event": "Order Completed",
        "messageId": message_id,
        "userId": f"user-{message_id}",
        "timestamp": iso(120),
        "context": {
            "ip": "203.0.113.9",
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
            "page": {"url": "https://shop.example/done?epik=dj0yJnU9abc"},
            "traits": {
                "email": " Someone@Example.COM ",
                "phone": "+1 (650) 555-0101",
                "firstName": "Zoë",
                "address": {"city": "San Francisco", "state": "California", "country": "US"},
            },
        },
        "properties": {
            "order_id": f"order-{message_id}",
            "revenue": 72.39,
            "currency": "USD",
            "products": [
                {"product_id": "sku-1", "price": 30, "quantity": 1},
                {"product_id": "sku-2", "price": 42.39, "quantity": 1},
            ],
        },
    }
    call.update(changes)
    return call


def transformed(inputs: list[Any]) -> dict[str, Any]:
    """What the transform makes of the inputs, by event_id, as JSON values."""
    transformer = Transformer()
    expected: dict[str, Any] = {}
    for item in inputs:
        result = transformer(item, now=int(time.time()))
        assert result.ok, result.errors
        for event in result.events:
            expected[event.event_id] = msgspec.json.decode(msgspec.json.encode(event))
    return expected


def arrived(log: EventLog, expected: dict[str, Any]) -> dict[str, Any]:
    """Wait until every expected event reached the emulator; the events as received."""
    wait_until(lambda: not log.missing(set(expected)), timeout=DELIVERY_TIMEOUT, what="delivery")
    return {
        r["event"]["event_id"]: r["event"]
        for r in log.records
        if r["event"]["event_id"] in expected
    }


class TestDelivery:
    def test_single_track_arrives_as_transformed(self, pipeline: Pipeline) -> None:
        """A /v1/track call reaches the emulator as exactly the event the transform made."""
        call = order("single-1")
        answer = pipeline.pinbridge.post("/v1/track", call)
        assert answer.status_code == 200
        assert answer.json()["results"] == [
            {"index": 0, "status": "accepted", "event_ids": ["single-1"]}
        ]
        expected = transformed([call])
        assert arrived(pipeline.log, expected) == expected

    def test_batch_rejects_bad_event_by_index_and_field(self, pipeline: Pipeline) -> None:
        """A batch with one bad event accepts and delivers the others, and names the bad one."""
        bad = order("batch-bad", properties={"order_id": "o-bad", "revenue": "abc"})
        page = {
            "type": "page",
            "messageId": "batch-page",
            "anonymousId": "anon-1",
            "timestamp": iso(60),
            "context": {"ip": "198.51.100.4", "userAgent": "Mozilla/5.0 Safari/605.1"},
            "properties": {"url": "https://shop.example/shoes"},
        }
        calls = [order("batch-1"), bad, page]
        answer = pipeline.pinbridge.post("/v1/batch", {"batch": calls})
        assert answer.status_code == 200
        results = answer.json()["results"]
        assert [r["status"] for r in results] == ["accepted", "rejected", "accepted"]
        assert results[1]["index"] == 1
        assert results[1]["errors"] == [
            {"field": "properties.revenue", "message": "must be a number"}
        ]
        expected = transformed([calls[0], calls[2]])
        assert arrived(pipeline.log, expected) == expected
        assert "batch-bad" not in pipeline.log.refresh().received

    def test_pinterest_events_arrive_hashed(self, pipeline: Pipeline) -> None:
        """Pinterest-shaped events with raw PII arrive hashed, as the transform made them."""
        now = int(time.time())
        events = [
            {
                "event_name": "lead",
                "action_source": "web",
                "event_time": now - 90,
                "event_id": f"native-{i}",
                "user_data": {"em": [f"Person{i}@Example.com"], "ph": ["+44 20 7946 0958"]},
                "custom_data": {"value": "12.5", "currency": "EUR"},
            }
            for i in range(3)
        ]
        answer = pipeline.pinbridge.post("/v1/pinterest/events", {"data": events})
        assert answer.status_code == 200
        assert {r["status"] for r in answer.json()["results"]} == {"accepted"}
        expected = transformed(events)
        received = arrived(pipeline.log, expected)
        assert received == expected
        assert all(len(e["user_data"]["em"][0]) == 64 for e in received.values())

    def test_gzip_batch_is_accepted_and_delivered(self, pipeline: Pipeline) -> None:
        """A gzip-compressed batch is read, accepted and delivered like a plain one."""
        calls = [order(f"gzip-{i}") for i in range(5)]
        body = gzip.compress(msgspec.json.encode({"batch": calls}))
        answer = pipeline.pinbridge.http.post(
            "/v1/batch",
            content=body,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        assert answer.status_code == 200
        assert {r["status"] for r in answer.json()["results"]} == {"accepted"}
        expected = transformed(calls)
        assert arrived(pipeline.log, expected) == expected

    def test_duplicate_is_answered_and_not_delivered_twice(self, pipeline: Pipeline) -> None:
        """The same messageId again is answered ``duplicate`` and reaches the emulator once."""
        call = order("dup-1")
        first = pipeline.pinbridge.post("/v1/track", call).json()["results"][0]["status"]
        again = pipeline.pinbridge.post("/v1/batch", {"batch": [call, call]}).json()["results"]
        assert first == "accepted"
        assert [r["status"] for r in again] == ["duplicate", "duplicate"]
        # Whatever was queued before the sentinel has been sent once the sentinel arrives.
        sentinel = order("dup-sentinel")
        assert pipeline.pinbridge.post("/v1/track", sentinel).status_code == 200
        arrived(pipeline.log, transformed([sentinel]))
        assert pipeline.log.received["dup-1"] == 1


class TestRefusals:
    def test_forwarded_address_from_an_untrusted_peer_is_ignored(self, pipeline: Pipeline) -> None:
        """No trusted proxy is configured: a loopback client's X-Forwarded-For is not believed
        (the server in front of the app must not believe it either)."""
        page = {
            "type": "page",
            "messageId": "forwarded-1",
            "anonymousId": "anon-forwarded",
            "timestamp": iso(60),
            "context": {"userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"},
        }
        answer = pipeline.pinbridge.post(
            "/v1/collect", page, headers={"X-Forwarded-For": "198.51.100.77"}
        )
        assert answer.json()["results"][0]["status"] == "accepted"
        received = arrived(pipeline.log, {"forwarded-1": None})
        assert received["forwarded-1"]["user_data"]["client_ip_address"] == "127.0.0.1"

    def test_unknown_write_key_gets_401(self, pipeline: Pipeline) -> None:
        """A write key that is not configured is refused with 401 and nothing is accepted."""
        answer = pipeline.pinbridge.http.post(
            "/v1/track", json=order("unknown-key"), auth=("not-a-key", "")
        )
        assert answer.status_code == 401
        assert answer.json()["success"] is False

    def test_second_configured_write_key_is_accepted(self, pipeline: Pipeline) -> None:
        """Every key of PINBRIDGE_WRITE_KEYS is accepted."""
        answer = pipeline.pinbridge.http.post(
            "/v1/track", json=order("second-key"), auth=("second-key", "")
        )
        assert answer.status_code == 200

    def test_body_over_the_limit_gets_413(self, pipeline: Pipeline) -> None:
        """A body over the default 512,000-byte limit is refused with 413."""
        calls = [order(f"big-{i}", properties={"note": "x" * 10_000}) for i in range(60)]
        answer = pipeline.pinbridge.post("/v1/batch", {"batch": calls})
        assert answer.status_code == 413
        assert "512000" in answer.json()["message"]
        assert "big-0" not in pipeline.log.refresh().received
