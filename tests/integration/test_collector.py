"""The collector over HTTP (in process): Segment's API, Pinterest-shaped events, limits."""

from __future__ import annotations

import base64
import gzip
import json
import sqlite3
from collections.abc import AsyncIterator

import httpx2
import msgspec
import pytest
import structlog.testing
from starlette.applications import Starlette

from pinbridge.accept import Acceptor, DestinationRoute
from pinbridge.metrics import Metrics
from pinbridge.store import SqliteStore
from pinbridge.transform import Transformer
from pinbridge.web.collector import Collector, collector_routes

pytestmark = pytest.mark.anyio
NOW = 1_795_345_200.0
KEY = "wk-test"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()}


def track(**changes):
    message = {
        "type": "track",
        "event": "Order Completed",
        "messageId": "m1",
        "timestamp": NOW,
        "context": {"ip": "203.0.113.9", "userAgent": "UA", "traits": {"email": "a@b.co"}},
        "properties": {"order_id": "o1", "revenue": 5},
    }
    message.update(changes)
    return message


class Harness:
    def __init__(self, tmp_path, requests_per_minute: int = 0) -> None:
        self.store = SqliteStore(tmp_path / "pb.db")
        self.metrics = Metrics()
        self.woken = 0
        self.acceptor = acceptor = Acceptor(
            Transformer(),
            self.store,
            [DestinationRoute("all"), DestinationRoute("leads", frozenset({"lead"}))],
            dedup_window=3600,
            metrics=self.metrics,
        )
        collector = Collector(
            acceptor,
            write_keys=[KEY],
            max_body_bytes=20_000,
            max_events=50,
            on_accept=self.wake,
            clock=lambda: NOW,
            requests_per_minute=requests_per_minute,
            metrics=self.metrics,
        )
        app = Starlette(routes=collector_routes(collector))
        self.http = httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url="http://collector"
        )

    def wake(self) -> None:
        self.woken += 1

    async def post(self, path, body, headers=AUTH, **kwargs):
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await self.http.post(
            path, content=content, headers={"Content-Type": "application/json", **headers}, **kwargs
        )

    async def queued(self) -> dict[str, int]:
        return {s.destination: s.queued for s in await self.store.stats(now=NOW)}


@pytest.fixture(name="h")
async def _harness(tmp_path) -> AsyncIterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    await harness.http.aclose()
    await harness.store.aclose()


class TestSegmentApi:
    async def test_track_is_accepted_and_queued(self, h):
        """A track call is answered per event, queued, and wakes the sender."""
        response = await h.post("/v1/track", {k: v for k, v in track().items() if k != "type"})
        assert response.status_code == 200
        assert response.json() == {
            "success": True,
            "results": [{"index": 0, "status": "accepted", "event_ids": ["m1"]}],
        }
        assert await h.queued() == {"all": 1}
        assert h.woken == 1

    async def test_duplicate(self, h):
        """The same messageId again is answered duplicate and not queued twice."""
        await h.post("/v1/track", track())
        response = await h.post("/v1/track", track())
        assert response.json()["results"][0]["status"] == "duplicate"
        assert await h.queued() == {"all": 1}

    async def test_batch_isolates_the_bad_event(self, h):
        """One bad event in a batch is rejected by index and field; the others are accepted."""
        batch = [track(messageId="a"), track(messageId="b", timestamp="soon"), track(messageId="c")]
        response = await h.post("/v1/batch", {"batch": batch})
        assert response.status_code == 200
        results = response.json()["results"]
        assert [r["status"] for r in results] == ["accepted", "rejected", "accepted"]
        assert results[1]["index"] == 1
        assert [e["field"] for e in results[1]["errors"]] == ["timestamp"]
        assert await h.queued() == {"all": 2}

    async def test_single_rejected_is_400_with_fields(self, h):
        """A single call that is refused gets 400 and its field errors."""
        response = await h.post("/v1/track", track(properties={"revenue": "lots"}))
        assert response.status_code == 400
        assert response.json()["results"][0]["errors"] == [
            {"field": "properties.revenue", "message": "must be a number"}
        ]

    async def test_identify_is_ignored(self, h):
        """identify sends nothing to Pinterest and says so."""
        response = await h.post("/v1/identify", {"userId": "u1", "traits": {"email": "a@b.co"}})
        assert response.json()["results"] == [{"index": 0, "status": "ignored"}]

    async def test_routing_by_event_name(self, h):
        """A destination with an event filter only gets the events it takes."""
        await h.post("/v1/track", track(event="Lead Generated", messageId="l1"))
        await h.post("/v1/track", track())
        assert await h.queued() == {"all": 2, "leads": 1}

    async def test_write_key_in_body(self, h):
        """analytics.js puts the write key in the body; that works too."""
        response = await h.post("/v1/track", {**track(), "writeKey": KEY}, headers={})
        assert response.status_code == 200

    @pytest.mark.parametrize(
        "headers",
        [
            {},
            {"Authorization": "Basic " + base64.b64encode(b"wrong:").decode()},
            {"Authorization": "Basic !!!"},
            {"Authorization": "Bearer " + KEY},
        ],
    )
    async def test_unknown_write_key(self, h, headers):
        """Without a known write key the answer is 401 and nothing is queued."""
        response = await h.post("/v1/track", track(), headers=headers)
        assert response.status_code == 401
        assert await h.queued() == {}

    @pytest.mark.parametrize(
        ("path", "body", "status"),
        [
            ("/v1/track", b"{not json", 400),
            ("/v1/track", b"", 400),
            ("/v1/track", b"[1, 2]", 400),
            ("/v1/batch", b'{"batch": 5}', 400),
            ("/v1/pinterest/events", b'{"events": []}', 400),
            ("/v1/page", json.dumps(track()).encode(), 400),
        ],
    )
    async def test_unreadable_requests(self, h, path, body, status):
        """A request whose events cannot be read at all is a 400 with a message."""
        response = await h.post(path, body)
        assert response.status_code == status
        assert response.json()["success"] is False and response.json()["message"]

    async def test_body_too_large(self, h):
        """A body over the limit is a 413, whether or not its length is announced."""
        big = {"batch": [track(messageId=str(i)) for i in range(100)]}
        assert (await h.post("/v1/batch", big)).status_code == 413

        async def stream():
            yield json.dumps(big).encode()

        response = await h.http.post(
            "/v1/batch", content=stream(), headers={**AUTH, "Content-Type": "application/json"}
        )
        assert response.status_code == 413

    async def test_gzip(self, h):
        """gzip bodies are accepted; one that inflates past the limit is a 413."""
        body = gzip.compress(json.dumps(track()).encode())
        response = await h.post("/v1/track", body, headers={**AUTH, "Content-Encoding": "gzip"})
        assert response.status_code == 200
        bomb = gzip.compress(b'{"batch": [' + b" " * 1_000_000 + b"]}")
        response = await h.post("/v1/batch", bomb, headers={**AUTH, "Content-Encoding": "gzip"})
        assert response.status_code == 413

    async def test_too_many_events(self, h):
        """More events than allowed per request is a 413."""
        response = await h.post("/v1/batch", {"batch": [{"type": "page"}] * 51})
        assert response.status_code == 413

    async def test_healthz(self, h):
        """The health check answers without a key."""
        response = await h.http.get("/healthz")
        assert response.json() == {"status": "ok"}


class TestPinterestEvents:
    async def test_raw_pii_is_hashed_before_storing(self, h):
        """Pinterest-shaped events with raw PII are hashed; nothing raw reaches the database."""
        body = {
            "data": [
                {
                    "event_name": "lead",
                    "event_id": "L1",
                    "event_time": int(NOW),
                    "user_data": {"em": "Jane@Example.com", "ph": "+1 650 555 1234"},
                },
                {"event_name": "lead", "event_id": "L2"},
                "not an event",
            ]
        }
        response = await h.post("/v1/pinterest/events", body)
        results = response.json()["results"]
        assert [r["status"] for r in results] == ["accepted", "rejected", "rejected"]
        assert await h.queued() == {"all": 1, "leads": 1}
        dump = "\n".join(sqlite3.connect(h.store.path).iterdump()).lower()
        assert "jane" not in dump and "650" not in dump
        stored = msgspec.json.decode(
            sqlite3.connect(h.store.path).execute("SELECT payload FROM events").fetchone()[0]
        )
        assert stored["user_data"]["em"] == [
            "8c87b489ce35cf2e2f39f80e282cb2e804932a56a213983eeeb428407d43b52d"
        ]

    async def test_pinterest_events_wake_the_sender(self, h):
        """Accepted Pinterest-shaped events wake the sender; a request accepting none does not."""
        valid = {"event_name": "lead", "event_id": "W1", "event_time": int(NOW)}
        valid["user_data"] = {"em": "jane@example.com"}
        await h.post("/v1/pinterest/events", {"data": [{"event_name": "lead"}]})
        assert h.woken == 0
        await h.post("/v1/pinterest/events", {"data": [valid]})
        assert h.woken == 1


BOT = "Mozilla/5.0 (compatible; Pinterestbot/1.0; +http://www.pinterest.com/bot.html)"


class TestUnwantedTraffic:
    async def test_bot_is_dropped_and_counted(self, h):
        """A crawler's event is answered dropped, never queued, and counted by reason."""
        message = track(context={"ip": "1.2.3.4", "userAgent": BOT})
        response = await h.post("/v1/track", message)
        assert response.json()["results"] == [
            {"index": 0, "status": "dropped", "reason": "bot: Pinterestbot"}
        ]
        assert await h.queued() == {}
        metrics = (await h.http.get("/metrics")).text
        assert 'pinbridge_events_dropped_total{reason="bot"} 1.0' in metrics
        assert 'pinbridge_events_total{outcome="dropped"} 1.0' in metrics

    async def test_consent_denied_is_dropped(self, h):
        """Without ads consent an event is kept out of delivery and counted."""
        message = track()
        message["context"]["consent"] = {"ads": False}
        response = await h.post("/v1/track", message)
        assert response.json()["results"][0]["status"] == "dropped"
        assert await h.queued() == {}
        assert 'pinbridge_events_dropped_total{reason="consent"} 1.0' in h.metrics.render().decode()

    @pytest.mark.parametrize(
        ("context", "kept"),
        [
            ({"userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"}, True),
            ({"userAgent": "Mozilla/5.0", "consent": {"ads": False}}, False),
            ({"userAgent": "Mozilla/5.0 (compatible; Pinterestbot/1.0)"}, False),
        ],
    )
    async def test_identify_without_consent_or_from_a_bot_stitches_nothing(
        self, tmp_path, context, kept
    ):
        """An identify that refuses ads consent (or comes from a bot) is dropped whole: its
        email does not reach a later conversion of the same user."""
        from pinbridge.store import IdentityPolicy

        store = SqliteStore(tmp_path / "identity.db")
        acceptor = Acceptor(
            Transformer(defer_identifier_rule=True),
            store,
            [DestinationRoute("all")],
            dedup_window=3600,
            identity=IdentityPolicy(),
        )
        identify = {
            "type": "identify",
            "userId": "u-1",
            "timestamp": NOW - 60,
            "traits": {"email": "noconsent@example.com"},
            "context": context,
        }
        [answer] = await acceptor.accept([identify], now=NOW)
        assert answer.status == ("ignored" if kept else "dropped")
        order = track(userId="u-1", messageId="order-1")
        order["context"] = {"ip": "203.0.113.9", "userAgent": "Mozilla/5.0 Firefox/140.0"}
        [answer] = await acceptor.accept([order], now=NOW)
        assert answer.status == "accepted"
        [claimed] = await store.claim("all", owner="t", limit=9, now=NOW, lease_seconds=9)
        user = msgspec.json.decode(claimed.payload)["user_data"]
        assert ("em" in user) is kept
        await store.aclose()

    async def test_requests_are_counted_by_endpoint_and_status(self, h):
        """``pinbridge_collector_requests_total`` counts each answer by path and status."""
        await h.post("/v1/track", track())
        await h.post("/v1/track", track(messageId="m2", properties={"revenue": "abc"}))
        await h.post("/v1/batch", {"batch": [track(messageId="m3")]}, headers={})
        metrics = (await h.http.get("/metrics")).text
        for endpoint, status in (("/v1/track", 200), ("/v1/track", 400), ("/v1/batch", 401)):
            sample = (
                f'pinbridge_collector_requests_total{{endpoint="{endpoint}",status="{status}"}}'
            )
            assert f"{sample} 1.0" in metrics, sample

    async def test_integrations_turning_pinterest_off_drop_the_call(self, h):
        """A call sent with ``integrations: {"Pinterest": false}`` is dropped and counted."""
        message = track(integrations={"All": True, "Pinterest": False})
        response = await h.post("/v1/track", message)
        assert response.json()["results"] == [
            {"index": 0, "status": "dropped", "reason": "integrations"}
        ]
        assert await h.queued() == {}
        assert 'pinbridge_events_dropped_total{reason="integrations"} 1.0' in (
            h.metrics.render().decode()
        )

    @pytest.mark.parametrize(
        ("shared", "own", "statuses"),
        [
            # Segment's HTTP API: a batch's context and integrations apply to every call
            ({"integrations": {"All": False}}, {}, ["dropped", "dropped"]),
            ({"context": {"consent": {"ads": False}}}, {}, ["dropped", "dropped"]),
            # the call's own keys win, also inside a shared object
            (
                {"integrations": {"Pinterest": False}},
                {"integrations": {"Pinterest": True}},
                ["accepted", "dropped"],
            ),
            (
                {"context": {"consent": {"ads": False}}},
                {"context": {"consent": {"ads": True}}},
                ["accepted", "dropped"],
            ),
            ({"context": {"locale": "en-US"}}, {}, ["accepted", "accepted"]),
        ],
    )
    async def test_batch_level_context_and_integrations_apply_to_each_call(
        self, h, shared, own, statuses
    ):
        """A batch's top-level ``context``/``integrations`` are merged into each call."""
        first = track(messageId="a")
        for name, value in own.items():
            first.setdefault(name, {})
            first[name] = {**first[name], **value}
        batch = [first, track(messageId="b")]
        response = await h.post("/v1/batch", {"batch": batch, **shared})
        assert response.status_code == 200
        assert [r["status"] for r in response.json()["results"]] == statuses
        assert await h.queued() == (
            {"all": statuses.count("accepted")} if "accepted" in statuses else {}
        )

    async def test_write_key_sent_as_the_password_gets_a_hint(self, h):
        """``curl -u :KEY`` (key as the password) is told where the key goes, without it."""
        misplaced = {"Authorization": "Basic " + base64.b64encode(f":{KEY}".encode()).decode()}
        response = await h.post("/v1/track", track(), headers=misplaced)
        assert response.status_code == 401
        message = response.json()["message"]
        assert "HTTP Basic user name" in message and KEY not in message

    @pytest.mark.parametrize("path", ["/v1/track", "/v1/batch", "/v1/pinterest/events"])
    @pytest.mark.parametrize("opener", [b"[", b'{"a":'])
    async def test_deeply_nested_body_is_a_400(self, h, path, opener):
        """A body nested past the decoder's depth is refused with a message, not a 500."""
        closer = b"]" if opener == b"[" else b"}"
        body = opener * 2000 + b"1" + closer * 2000
        response = await h.post(path, body)
        assert response.status_code == 400
        assert response.json()["message"] == "the body is nested too deeply"

    async def test_an_event_that_breaks_the_transform_costs_only_itself(self, tmp_path):
        """An unexpected error on one event rejects that event (logged without its data);
        the batch's other events are accepted and the answer is a 200, not a 500."""

        class Broken(Transformer):
            def __call__(self, message, **kwargs):
                if isinstance(message, dict) and message.get("messageId") == "boom":
                    raise ValueError("secret@example.com is not a thing")
                return super().__call__(message, **kwargs)

        h = Harness(tmp_path)
        h.acceptor._transform = Broken()
        try:
            batch = [track(messageId="a"), track(messageId="boom"), track(messageId="c")]
            with structlog.testing.capture_logs() as logs:
                response = await h.post("/v1/batch", {"batch": batch})
            assert [(e["event"], e["index"], e["error"]) for e in logs] == [
                ("event_failed", 1, "ValueError")
            ]
            assert "secret@example.com" not in repr(logs)
            assert response.status_code == 200
            results = response.json()["results"]
            assert [r["status"] for r in results] == ["accepted", "rejected", "accepted"]
            assert results[1]["errors"][0]["message"].startswith("this event could not be")
            assert await h.queued() == {"all": 2}
            single = await h.post("/v1/track", track(messageId="boom"))
            assert single.status_code == 400
        finally:
            await h.http.aclose()
            await h.store.aclose()

    async def test_group_calls_are_ignored_not_rejected(self, h):
        """Segment's group call (SDKs send it) is taken and ignored, alone or in a batch; its
        traits (the group's) are not read as the person's."""
        group = {
            "type": "group",
            "userId": "u-1",
            "groupId": "acme",
            "traits": {"email": "billing@acme.example", "name": "Acme"},
        }
        single = await h.post("/v1/group", {k: v for k, v in group.items() if k != "type"})
        assert single.status_code == 200
        assert single.json()["results"] == [{"index": 0, "status": "ignored"}]
        batch = await h.post("/v1/batch", {"batch": [group, track()]})
        assert batch.json()["success"] is True
        assert [r["status"] for r in batch.json()["results"]] == ["ignored", "accepted"]

    async def test_clock_skew_is_corrected(self, h):
        """A device clock an hour fast is corrected with sentAt, as Segment does."""
        message = track(timestamp=NOW + 3600 - 5, sentAt=NOW + 3600)
        await h.post("/v1/batch", {"batch": [message]})
        [payload] = await h.store.claim("all", owner="t", limit=5, now=NOW, lease_seconds=5)
        assert msgspec.json.decode(payload.payload)["event_time"] == int(NOW) - 5


async def test_requests_per_key_are_limited(tmp_path):
    """Past the per-key rate the answer is 429 with Retry-After; nothing is lost silently."""
    h = Harness(tmp_path, requests_per_minute=2)
    try:
        statuses = [
            (await h.post("/v1/track", track(messageId=str(i)))).status_code for i in range(3)
        ]
        assert statuses == [200, 200, 429]
        response = await h.post("/v1/track", track(messageId="x"))
        assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1
        assert await h.queued() == {"all": 2}
    finally:
        await h.http.aclose()
        await h.store.aclose()


async def test_limits_per_write_key(tmp_path):
    """A write key's own limits replace the server-wide ones: body size and events."""
    from pinbridge.web.collector import KeyLimits

    store = SqliteStore(tmp_path / "pb.db")
    acceptor = Acceptor(Transformer(), store, [DestinationRoute("all")], dedup_window=3600)
    collector = Collector(
        acceptor,
        write_keys=[KEY, "small"],
        max_body_bytes=20_000,
        max_events=50,
        clock=lambda: NOW,
        key_limits={"small": KeyLimits(max_body_bytes=3_000, max_events=2)},
    )
    app = Starlette(routes=collector_routes(collector))
    small = {"Authorization": "Basic " + base64.b64encode(b"small:").decode()}
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://c"
    ) as http:

        async def post(body, headers):
            return await http.post("/v1/batch", content=json.dumps(body).encode(), headers=headers)

        three = {"batch": [track(messageId=str(i)) for i in range(3)]}
        assert (await post(three, small)).status_code == 413
        assert (await post(three, AUTH)).status_code == 200
        big = {"batch": [track(messageId="b", properties={"note": "x" * 4000})]}
        assert (await post(big, small)).status_code == 413
        assert (await post(big, AUTH)).status_code == 200
    await store.aclose()
