"""The store's diagnostics methods, the same on SQLite and in memory."""

from __future__ import annotations

import pytest

from pinbridge.store import Completion, PendingInput
from pinbridge.store.base import AcceptCount, CatalogProduct
from tests.integration.test_store import NOW, _store, accept, item  # noqa: F401

pytestmark = pytest.mark.anyio


class TestDiagnostics:
    async def test_catalog_replace_and_known(self, store):
        """Loading replaces the catalog unless appending; known ids are found."""
        await store.catalog_load([CatalogProduct("a"), CatalogProduct("b")], now=NOW)
        await store.catalog_load([CatalogProduct("c")], now=NOW, replace=False)
        assert await store.catalog_known(["a", "c", "z"]) == {"a", "c"}
        assert await store.catalog_size() == (3, NOW)
        await store.catalog_load([CatalogProduct("z")], now=NOW + 1)
        assert await store.catalog_known(["a", "z"]) == {"z"}

    async def test_accept_counts_add_up(self, store):
        """Counts of the same minute, outcome, reason and name are summed."""
        row = AcceptCount(60, "duplicate", "", "checkout", 2)
        await store.add_accept_counts([row, row, AcceptCount(0, "accepted", "", "lead", 1)])
        assert await store.accept_counts(since=60) == [
            AcceptCount(60, "duplicate", "", "checkout", 4)
        ]

    async def test_sent_events_timeline_history_and_dead(self, store):
        """A delivered and a dead event show in sent events, timeline, history, dead counts."""
        await accept(store, [item("e1"), item("e2", name="lead")], now=NOW)
        claimed = await store.claim("a", owner="s", limit=10, now=NOW, lease_seconds=60)
        assert all(c.accepted_at == NOW for c in claimed)
        await store.complete(
            "s",
            [
                Completion(claimed[0].id, "delivered", "processed", 200),
                Completion(claimed[1].id, "dead", "failed", 400, message="bad"),
            ],
            now=NOW + 5,
        )
        sent = await store.sent_events(since=NOW - 1, limit=10)
        assert sorted((s.event_name, s.state) for s in sent) == [
            ("checkout", "delivered"),
            ("lead", "dead"),
        ]
        points = await store.timeline(since=NOW - 60, bucket=60)
        series = {(p.series, p.label): p.count for p in points}
        assert series[("accepted", "")] == 2
        assert series[("attempt:failed", "400")] == 1
        assert await store.dead_letters_since(since=NOW) == {"a": 1}
        [found] = await store.history(event_id="e2", needle=None, limit=5)
        assert found.event_name == "lead"
        [delivery] = found.deliveries
        assert (delivery.state, delivery.answers[0].http_status) == ("dead", 400)
        [by_payload] = await store.history(event_id="x", needle=b'"e1"', limit=5)
        assert by_payload.event_id == "e1"

    async def test_stats_count_the_last_hour_delivered_and_the_dead_kept(self, store):
        """stats: delivered counts the last hour's deliveries only; dead, the letters kept."""
        await accept(store, [item(f"e{i}") for i in range(4)], now=NOW)
        c = await store.claim("a", owner="s", limit=4, now=NOW, lease_seconds=60)
        await store.complete(
            "s", [Completion(c[0].id, "delivered", "processed", 200)], now=NOW - 7200
        )
        await store.complete(
            "s",
            [
                Completion(c[1].id, "delivered", "processed", 200),
                Completion(c[2].id, "dead", "failed", 400, message="bad"),
            ],
            now=NOW,
        )
        [stats] = await store.stats(now=NOW + 60)
        assert (stats.queued, stats.in_flight, stats.delivered, stats.dead) == (1, 1, 1, 1)
        [later] = await store.stats(now=NOW + 3 * 3600)
        assert (later.queued, later.in_flight, later.delivered, later.dead) == (1, 0, 0, 1)
        assert await store.dead_letters_since(since=NOW + 1) == {}
        await store.replay([c[2].id], now=NOW + 3 * 3600)
        [replayed] = await store.stats(now=NOW + 3 * 3600)
        assert (replayed.queued, replayed.dead) == (2, 0)

    async def test_status_latency_counts_events_accepted_long_before(self, store):
        """status' delivery latencies take every delivery of the last hour, chosen by when it
        finished: an event accepted two days before its delivery counts."""
        from pinbridge.diagnostics import status_report

        old = NOW - 2 * 86400
        await accept(store, [item("e1", event_time=int(old))], now=old)
        [claimed] = await store.claim("a", owner="s", limit=1, now=NOW - 60, lease_seconds=60)
        await store.complete(
            "s", [Completion(claimed.id, "delivered", "processed", 200)], now=NOW - 60
        )
        report = await status_report(store, now=NOW)
        assert report.event_to_delivery_p50 == 2 * 86400 - 60
        assert report.accept_to_delivery_p95 == 2 * 86400 - 60
        [finished] = await store.finished_deliveries(since=NOW - 3600, limit=10)
        assert (finished.state, finished.accepted_at, finished.finished_at) == (
            "delivered",
            old,
            NOW - 60,
        )

    async def test_attribution_counts_a_click_from_when_it_was_made(self, store):
        """A click counts for a conversion when it was made (first seen) within the window
        before it; seeing it again later does not bring an old click back."""
        import msgspec

        from pinbridge.pinterest.schema import ConversionEvent, UserData
        from pinbridge.signals import IdentitySignals
        from pinbridge.store import IdentityPolicy, PendingEvent

        day = 86400.0

        def sighting(click: str, at: float) -> PendingInput:
            signals = IdentitySignals(keys=("aid:x",), click_id=click, seen_at=at)
            return PendingInput(input=b"", identity=signals)

        policy = IdentityPolicy()
        for click, at in (("OLD", NOW - 10 * day), ("OLD", NOW - day), ("NEW", NOW - 2 * day)):
            await store.accept([sighting(click, at)], now=at, dedup_window=60, identity=policy)
        event = ConversionEvent(
            event_name="checkout",
            action_source="web",
            event_time=int(NOW),
            event_id="o1",
            user_data=UserData(client_ip_address="1.2.3.4", client_user_agent="UA"),
        )
        pending = PendingEvent("o1", "checkout", int(NOW), msgspec.json.encode(event), ("a",))
        signals = IdentitySignals(keys=("aid:x",), seen_at=NOW)
        conversion = PendingInput(input=b"{}", events=(pending,), identity=signals)
        await store.accept([conversion], now=NOW, dedup_window=60, identity=policy)
        rows = await store.attribution_rows(since=NOW - 60, window=7 * day)
        assert [(r[4], r[5]) for r in rows] == [("NEW", NOW - 2 * day)]
