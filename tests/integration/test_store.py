"""The store contract, run against every implementation: SQLite, the in-memory fake and
PostgreSQL (a throw-away server, see ``tests/conftest.py``)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator

import msgspec
import pytest

from pinbridge.store import (
    Completion,
    MemoryStore,
    PendingEvent,
    PendingInput,
    SqliteStore,
    Store,
)
from pinbridge.store.postgres import PostgresStore
from pinbridge.store.sqlite import migrate

pytestmark = pytest.mark.anyio
NOW = 1_795_345_200.0
WINDOW = 48 * 3600.0


def item(event_id: str, name: str = "checkout", destinations=("a",), event_time: int = int(NOW)):
    """One input that became one event."""
    event = PendingEvent(
        event_id=event_id,
        event_name=name,
        event_time=event_time,
        payload=f'{{"event_id":"{event_id}"}}'.encode(),
        destinations=tuple(destinations),
    )
    return PendingInput(input=b"{}", events=(event,))


async def accept(store, items, now=NOW):
    """Accept single-event inputs; one answer per input."""
    answers = await store.accept(items, now=now, dedup_window=WINDOW)
    return [a for [a] in answers]


@pytest.fixture(params=["sqlite", "memory", "postgresql"], name="store")
async def _store(request, tmp_path) -> AsyncIterator[Store]:
    store: Store
    if request.param == "sqlite":
        store = SqliteStore(tmp_path / "pb.db")
    elif request.param == "postgresql":
        store = PostgresStore(request.getfixturevalue("postgres_url"))
    else:
        store = MemoryStore()
    yield store
    await store.aclose()


class TestAccept:
    async def test_accept_then_claim(self, store):
        """Accepted events are claimable by their destination, in order."""
        assert await accept(store, [item("e1"), item("e2")], now=NOW) == [
            "accepted",
            "accepted",
        ]
        claimed = await store.claim("a", owner="s1", limit=10, now=NOW, lease_seconds=60)
        assert [c.payload for c in claimed] == [b'{"event_id":"e1"}', b'{"event_id":"e2"}']
        assert all(c.attempts == 0 and c.expires_at == NOW + 7 * 86400 for c in claimed)

    async def test_duplicates_within_the_window(self, store):
        """The same (event_name, event_id) is a duplicate within the window, new after it."""
        await accept(store, [item("e1")], now=NOW)
        again = [item("e1"), item("e1", name="lead"), item("e3"), item("e3")]
        assert await accept(store, again, now=NOW + 10) == [
            "duplicate",
            "accepted",
            "accepted",
            "duplicate",
        ]
        later = await accept(store, [item("e1")], now=NOW + WINDOW + 1)
        assert later == ["accepted"]

    async def test_fan_out_to_destinations(self, store):
        """One event is queued once per destination."""
        await accept(store, [item("e1", destinations=("a", "b"))], now=NOW)
        for name in ("a", "b"):
            assert len(await store.claim(name, owner="s", limit=5, now=NOW, lease_seconds=9)) == 1


class TestClaims:
    async def test_lease_excludes_others_until_it_ends(self, store):
        """A leased row is not claimed again until its lease ends, then it is taken over."""
        await accept(store, [item("e1")], now=NOW)
        first = await store.claim("a", owner="s1", limit=5, now=NOW, lease_seconds=60)
        assert len(first) == 1
        assert await store.claim("a", owner="s2", limit=5, now=NOW + 59, lease_seconds=60) == []
        taken = await store.claim("a", owner="s2", limit=5, now=NOW + 61, lease_seconds=60)
        assert [c.id for c in taken] == [first[0].id]
        # The first owner lost its lease: its answer is not recorded.
        late = Completion(id=first[0].id, kind="delivered", outcome="processed")
        assert await store.complete("s1", [late], now=NOW + 62) == 0

    async def test_batch_with_a_lost_lease(self, store):
        """In a batch of equal answers, only the rows still leased are recorded and logged."""
        await accept(store, [item(f"e{i}") for i in range(3)], now=NOW)
        mine = await store.claim("a", owner="s1", limit=5, now=NOW, lease_seconds=60)
        [taken] = await store.claim("a", owner="s2", limit=1, now=NOW + 61, lease_seconds=60)
        answers = [
            Completion(id=c.id, kind="delivered", outcome="processed", http_status=200)
            for c in mine
        ]
        assert await store.complete("s1", answers, now=NOW + 62) == 2
        logged = {}
        for i in range(3):
            [event] = await store.history(event_id=f"e{i}", needle=None, limit=5)
            [delivery] = event.deliveries
            logged[delivery.id] = (delivery.state, len(delivery.answers))
        assert logged.pop(taken.id) == ("queued", 0)
        assert list(logged.values()) == [("delivered", 1), ("delivered", 1)]

    async def test_limit_and_order(self, store):
        """A claim takes at most `limit` rows, oldest due first."""
        await accept(store, [item(f"e{i}") for i in range(5)], now=NOW)
        claimed = await store.claim("a", owner="s", limit=3, now=NOW, lease_seconds=60)
        assert [c.payload for c in claimed] == [f'{{"event_id":"e{i}"}}'.encode() for i in range(3)]

    async def test_claims_carry_the_event_head(self, store):
        """A claimed row says its event's name, time and acceptance time (for the metrics)."""
        await accept(store, [item("e1", name="lead", event_time=int(NOW) - 60)], now=NOW)
        [claimed] = await store.claim("a", owner="s", limit=5, now=NOW, lease_seconds=60)
        assert (claimed.event_name, claimed.event_time, claimed.accepted_at) == (
            "lead",
            int(NOW) - 60,
            NOW,
        )

    async def test_completions(self, store):
        """Delivered rows leave the queue; retries come back when due; dead ones are letters."""
        await accept(store, [item(f"e{i}") for i in range(4)], now=NOW)
        c = await store.claim("a", owner="s", limit=4, now=NOW, lease_seconds=60)
        done = await store.complete(
            "s",
            [
                Completion(id=c[0].id, kind="delivered", outcome="processed", http_status=200),
                Completion(
                    id=c[1].id, kind="retry", outcome="retry", http_status=503, due_at=NOW + 30
                ),
                Completion(
                    id=c[2].id, kind="dead", outcome="failed", http_status=422, message="bad em"
                ),
                Completion(
                    id=c[3].id, kind="release", outcome="stopped", http_status=401, counted=False
                ),
            ],
            now=NOW + 1,
        )
        assert done == 4
        due_now = await store.claim("a", owner="s", limit=9, now=NOW + 2, lease_seconds=60)
        assert [(x.id, x.attempts) for x in due_now] == [(c[3].id, 0)]
        due_later = await store.claim("a", owner="t", limit=9, now=NOW + 31, lease_seconds=60)
        assert [(x.id, x.attempts) for x in due_later] == [(c[1].id, 1)]
        [letter] = await store.dead_letters()
        assert (letter.id, letter.event_id, letter.reason, letter.http_status) == (
            c[2].id,
            "e2",
            "bad em",
            422,
        )
        assert letter.attempts == 1
        [stats] = await store.stats(now=NOW + 31)
        assert (stats.queued, stats.in_flight, stats.retrying, stats.delivered, stats.dead) == (
            2,
            2,
            1,
            1,
            1,
        )
        assert await store.delivered_payloads("a") == [b'{"event_id":"e0"}']


class TestDeadLetters:
    async def test_filters_and_replay(self, store):
        """Dead letters are found by destination, reason and time, and replay queues them."""
        await accept(store, [item("e1"), item("e2"), item("e3", destinations=("b",))], now=NOW)
        a = await store.claim("a", owner="s", limit=9, now=NOW, lease_seconds=60)
        b = await store.claim("b", owner="s", limit=9, now=NOW, lease_seconds=60)
        await store.complete(
            "s",
            [
                Completion(id=a[0].id, kind="dead", outcome="failed", message="Unknown event name"),
                Completion(id=b[0].id, kind="dead", outcome="failed", message="hashed format"),
            ],
            now=NOW + 5,
        )
        await store.complete(
            "s",
            [Completion(id=a[1].id, kind="dead", outcome="failed", message="unknown EVENT name")],
            now=NOW + 50,
        )
        assert len(await store.dead_letters()) == 3
        assert [d.event_id for d in await store.dead_letters(destination="b")] == ["e3"]
        assert [d.event_id for d in await store.dead_letters(reason="unknown event")] == [
            "e1",
            "e2",
        ]
        assert [d.event_id for d in await store.dead_letters(since=NOW + 10)] == ["e2"]
        ids = [d.id for d in await store.dead_letters(reason="unknown event")]
        assert await store.replay(ids, now=NOW + 60) == 2
        assert await store.replay(ids, now=NOW + 60) == 0
        again = await store.claim("a", owner="s", limit=9, now=NOW + 60, lease_seconds=60)
        assert sorted(x.id for x in again) == sorted(ids)
        assert all(x.attempts == 0 for x in again)


class TestDestinations:
    async def test_pause_and_resume(self, store):
        """A paused destination is reported with its reason until resumed."""
        await store.pause("a", "HTTP 401: Authentication failed.", now=NOW)
        assert await store.paused() == {"a": "HTTP 401: Authentication failed."}
        await store.resume("a")
        assert await store.paused() == {}


class TestSqliteDurability:
    async def test_accepted_is_on_disk(self, tmp_path):
        """What accept answered is readable by another connection at once."""
        store = SqliteStore(tmp_path / "pb.db")
        try:
            await accept(store, [item("e1")], now=NOW)
            other = sqlite3.connect(tmp_path / "pb.db")
            assert other.execute("SELECT event_id FROM events").fetchall() == [("e1",)]
            other.close()
        finally:
            await store.aclose()

    async def test_reopen_keeps_queue(self, tmp_path):
        """A reopened store still has the queued events and their dedup keys."""
        store = SqliteStore(tmp_path / "pb.db", synchronous="FULL")
        await accept(store, [item("e1")], now=NOW)
        await store.aclose()
        store = SqliteStore(tmp_path / "pb.db")
        try:
            assert await accept(store, [item("e1")], now=NOW) == ["duplicate"]
            assert len(await store.claim("a", owner="s", limit=9, now=NOW, lease_seconds=9)) == 1
        finally:
            await store.aclose()

    async def test_many_concurrent_accepts_are_grouped(self, tmp_path):
        """Concurrent callers all get their answers; the writer commits them in groups."""
        import asyncio

        store = SqliteStore(tmp_path / "pb.db")
        try:
            answers = await asyncio.gather(*(accept(store, [item(f"e{i}")]) for i in range(300)))
            assert answers == [["accepted"]] * 300
            [stats] = await store.stats(now=NOW)
            assert stats.queued == 300
        finally:
            await store.aclose()

    async def test_unknown_synchronous_mode(self, tmp_path):
        """Only NORMAL and FULL are accepted."""
        with pytest.raises(ValueError, match="synchronous"):
            SqliteStore(tmp_path / "pb.db", synchronous="OFF")


class TestMigrations:
    def test_migrations_give_the_schema(self, tmp_path):
        """Migrating an empty file gives exactly the expected tables and indexes."""
        conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
        assert migrate(conn) == 3
        names = {
            (kind, name)
            for kind, name in conn.execute(
                "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
            )
        }
        assert names == {
            ("table", "events"),
            ("table", "deliveries"),
            ("table", "attempts"),
            ("table", "dedup_keys"),
            ("table", "destination_state"),
            ("table", "persons"),
            ("table", "identifiers"),
            ("table", "clicks"),
            ("index", "persons_last_seen"),
            ("index", "identifiers_person"),
            ("index", "events_person"),
            ("index", "events_event_id"),
            ("index", "deliveries_due"),
            ("index", "deliveries_event"),
            ("index", "deliveries_state"),
            ("index", "attempts_delivery"),
            ("table", "catalog_products"),
            ("table", "accept_counts"),
            ("index", "events_accepted_at"),
            ("index", "deliveries_finished"),
            ("index", "attempts_at"),
        }
        assert migrate(conn) == 3  # applying again changes nothing
        conn.close()


class TestIdentity:
    """Stitching and enrichment inside the accept transaction, on every store."""

    @staticmethod
    def pending(event_id, *keys, click=None, at=NOW, needs=False, kept=None, order_id=None, **user):
        from pinbridge.pinterest.schema import ConversionEvent, CustomData, UserData
        from pinbridge.signals import IdentitySignals

        event = ConversionEvent(
            event_name="checkout",
            action_source="web",
            event_time=int(at),
            event_id=event_id,
            user_data=UserData(**user),
        )
        if order_id is not None:
            event.custom_data = CustomData(order_id=order_id)
        signals = IdentitySignals(
            keys=keys,
            fields={k: v for k, v in user.items() if k in ("em", "ph")},
            click_id=click,
            ip=user.get("client_ip_address"),
            user_agent=user.get("client_user_agent"),
            seen_at=at,
        )
        pending_event = PendingEvent(
            event_id=event_id,
            event_name="checkout",
            event_time=int(at),
            payload=msgspec.json.encode(event),
            destinations=("long", "short"),
            needs_identifier=needs,
        )
        kept_input = msgspec.json.encode(kept) if kept is not None else b"{}"
        return PendingInput(
            input=kept_input, events=(pending_event,), identity=signals if keys else None
        )

    async def test_click_enrichment_per_destination(self, store):
        """Each destination's copy gets the person's click within its own window."""
        from pinbridge.store import IdentityPolicy

        policy = IdentityPolicy(click_windows={"long": 30 * 86400.0, "short": 86400.0})
        web = {"client_ip_address": "1.2.3.4", "client_user_agent": "UA"}
        clicked = self.pending("view", "aid:A", click="EPIK", at=NOW - 3 * 86400, **web)
        bought = self.pending("order", "aid:A", "em:" + "a" * 64, em=["a" * 64], **web)
        answers = await store.accept(
            [clicked, bought], now=NOW, dedup_window=WINDOW, identity=policy
        )
        assert answers == [["accepted"], ["accepted"]]
        payloads = {}
        for name in ("long", "short"):
            claimed = await store.claim(name, owner="s", limit=9, now=NOW, lease_seconds=9)
            payloads[name] = {
                msgspec.json.decode(c.payload)["event_id"]: msgspec.json.decode(c.payload)
                for c in claimed
            }
        assert payloads["long"]["order"]["user_data"]["click_id"] == "EPIK"
        assert "click_id" not in payloads["short"]["order"]["user_data"]

    async def test_a_duplicate_still_stitches_its_person(self, store):
        """The server's copy of a conversion the browser sent is a duplicate, yet its email
        joins the browser's visitor: a later order with only that email gets the click."""
        from pinbridge.store import IdentityPolicy

        policy = IdentityPolicy(click_windows={"long": 30 * 86400.0, "short": 86400.0})
        web = {"client_ip_address": "1.2.3.4", "client_user_agent": "UA"}
        email = "e" * 64
        browser = self.pending("order-1", "aid:A", click="EPIK", at=NOW - 60, **web)
        server = self.pending("order-1", "aid:A", "em:" + email, at=NOW - 60, em=[email])
        later = self.pending("order-2", "em:" + email, em=[email])
        answers = [
            await store.accept([p], now=NOW, dedup_window=WINDOW, identity=policy)
            for p in (browser, server, later)
        ]
        assert answers == [[["accepted"]], [["duplicate"]], [["accepted"]]]
        claimed = await store.claim("long", owner="s", limit=9, now=NOW, lease_seconds=9)
        orders = {msgspec.json.decode(c.payload)["event_id"]: c for c in claimed}
        assert set(orders) == {"order-1", "order-2"}
        later_payload = msgspec.json.decode(orders["order-2"].payload)
        assert later_payload["user_data"]["click_id"] == "EPIK"

    async def test_identifier_from_history_or_refused(self, store):
        """An event lacking Pinterest's identifier takes it from its person, else is refused."""
        from pinbridge.store import IdentityPolicy

        policy = IdentityPolicy()
        seen = self.pending("web", "aid:A", client_ip_address="1.2.3.4", client_user_agent="UA")
        phone_known = self.pending("sale-1", "aid:A", "ph:" + "b" * 64, ph=["b" * 64], needs=True)
        stranger = self.pending("sale-2", "ph:" + "c" * 64, ph=["c" * 64], needs=True)
        answers = await store.accept(
            [seen, phone_known, stranger], now=NOW, dedup_window=WINDOW, identity=policy
        )
        assert answers == [["accepted"], ["accepted"], ["unmatched"]]
        claimed = await store.claim("long", owner="s", limit=9, now=NOW, lease_seconds=9)
        sale = next(msgspec.json.decode(c.payload) for c in claimed if b"sale-1" in c.payload)
        assert sale["user_data"]["client_ip_address"] == "1.2.3.4"
        # The refused event left no dedup key behind: it can come again with an identifier.
        retry = self.pending("sale-2", "ph:" + "c" * 64, em=["d" * 64], needs=False)
        assert await store.accept([retry], now=NOW, dedup_window=WINDOW, identity=policy) == [
            ["accepted"]
        ]

    @staticmethod
    async def payloads(store, destination="long"):
        """The queued payloads of a destination, by event id."""
        claimed = await store.claim(destination, owner="t", limit=99, now=NOW, lease_seconds=9)
        return {
            msgspec.json.decode(c.payload)["event_id"]: msgspec.json.decode(c.payload)
            for c in claimed
        }

    async def quinn_and_jane(self, store, policy):
        """Quinn, Jane, then Quinn's user id with Jane's email: a merge the guard refuses."""
        from pinbridge.identity import person_keys
        from pinbridge.signals import identifier_key

        web = {"client_ip_address": "1.2.3.4", "client_user_agent": "UA"}
        [quinn_key], _ = person_keys("US", emails=["quinn@example.com"])
        [jane_key], _ = person_keys("US", emails=["jane@example.com"])
        quinn_em, jane_em = quinn_key[3:], jane_key[3:]
        uid = identifier_key("uid", "q-1")
        inputs = [
            self.pending("q1", uid, quinn_key, em=[quinn_em], **web),
            self.pending("j1", identifier_key("aid", "anon-j"), jane_key, em=[jane_em], **web),
            self.pending("q2", uid, jane_key, em=[jane_em], fn=["f" * 64], **web),
        ]
        for pending in inputs:
            answers = await store.accept([pending], now=NOW, dedup_window=WINDOW, identity=policy)
            assert answers == [["accepted"]]
        return quinn_em, jane_em

    async def test_refused_merge_keeps_other_persons_email_out_of_profile(self, store):
        """With one email per person, Quinn's event carrying Jane's email leaves Jane's digest
        out of Quinn's profile: once Jane is forgotten, Quinn's events never carry it."""
        from pinbridge.identity import DEFAULT_MAX_PER_KIND, person_keys
        from pinbridge.signals import identifier_key
        from pinbridge.store import IdentityPolicy

        policy = IdentityPolicy(max_per_kind={**DEFAULT_MAX_PER_KIND, "em": 1})
        quinn_em, _ = await self.quinn_and_jane(store, policy)
        report = await store.forget(*person_keys("US", emails=["jane@example.com"]))
        assert report.persons == 1
        web = {"client_ip_address": "1.2.3.4", "client_user_agent": "UA"}
        later = self.pending("q3", identifier_key("uid", "q-1"), **web)
        await store.accept([later], now=NOW, dedup_window=WINDOW, identity=policy)
        payloads = await self.payloads(store)
        assert payloads["q3"]["user_data"]["em"] == [quinn_em]

    async def test_forget_removes_the_digests_from_other_profiles(self, store, request):
        """A forgotten email found in another person's profile (kept by an older version) is
        removed from it too, so it is never sent again."""
        from pinbridge.identity import DEFAULT_MAX_PER_KIND, person_keys
        from pinbridge.signals import identifier_key
        from pinbridge.store import IdentityPolicy

        policy = IdentityPolicy(max_per_kind={**DEFAULT_MAX_PER_KIND, "em": 1})
        quinn_em, jane_em = await self.quinn_and_jane(store, policy)
        await plant_emails(store, request, identifier_key("uid", "q-1"), [jane_em, quinn_em])
        await store.forget(*person_keys("US", emails=["jane@example.com"]))
        web = {"client_ip_address": "1.2.3.4", "client_user_agent": "UA"}
        later = self.pending("q3", identifier_key("uid", "q-1"), **web)
        await store.accept([later], now=NOW, dedup_window=WINDOW, identity=policy)
        payloads = await self.payloads(store)
        assert payloads["q3"]["user_data"]["em"] == [quinn_em]

    async def test_forget_by_user_id_takes_only_that_persons_events(self, store):
        """Forgetting user id 42 removes user 42's events (linked to the person, or named by
        the kept input's exact ``userId``), never an event that only mentions 42 elsewhere
        (an order id, a product id)."""
        from pinbridge.identity import person_keys
        from pinbridge.signals import identifier_key
        from pinbridge.store import IdentityPolicy

        web = {"client_ip_address": "1.2.3.4", "client_user_agent": "UA"}
        mine = self.pending("mine", identifier_key("uid", "42"), kept={"userId": "42"}, **web)
        unlinked = self.pending("unlinked", kept={"userId": "42", "event": "x"}, **web)
        other = self.pending(
            "other",
            identifier_key("uid", "7"),
            kept={"userId": "7", "properties": {"order_id": "42", "product_id": "42"}},
            order_id="42",
            **web,
        )
        answers = await store.accept(
            [mine, unlinked, other], now=NOW, dedup_window=WINDOW, identity=IdentityPolicy()
        )
        assert answers == [["accepted"]] * 3
        report = await store.forget(*person_keys("US", user_ids=["42"]))
        assert (report.persons, report.events) == (1, 2)
        assert set(await self.payloads(store)) == {"other"}


async def plant_emails(store, request, key, emails):
    """Write email digests into the profile of the person of ``key``, behind the store."""
    from pinbridge.identity import Profile

    if isinstance(store, MemoryStore):
        person = store.identity.persons_of([key])[key]
        profile = store.identity.profile(person)
        profile.fields["em"] = emails
        store.identity.save_profile(person, profile, NOW)
        return
    select = "SELECT p.id, p.profile FROM persons p JOIN identifiers i ON i.person_id = p.id"
    if isinstance(store, SqliteStore):
        conn = sqlite3.connect(request.getfixturevalue("tmp_path") / "pb.db")
        [(person, raw)] = conn.execute(f"{select} WHERE i.key = ?", [key]).fetchall()
        profile = msgspec.json.decode(raw, type=Profile)
        profile.fields["em"] = emails
        conn.execute(
            "UPDATE persons SET profile = ? WHERE id = ?", [msgspec.json.encode(profile), person]
        )
        conn.commit()
        conn.close()
        return
    import psycopg

    with psycopg.connect(request.getfixturevalue("postgres_url")) as conn:
        [(person, raw)] = conn.execute(f"{select} WHERE i.key = %s", [key]).fetchall()
        profile = msgspec.json.decode(raw, type=Profile)
        profile.fields["em"] = emails
        conn.execute(
            "UPDATE persons SET profile = %s WHERE id = %s", [msgspec.json.encode(profile), person]
        )


class TestPrune:
    """The running service's pruning of dedup keys."""

    async def test_keeps_import_keys_for_eight_days(self, store, tmp_path, monkeypatch):
        """The service keeps dedup keys for an import's 8 days, not the configured 48 hours:
        a key seen 3 days ago survives a prune, one seen 9 days ago does not."""
        import asyncio
        from types import SimpleNamespace

        from pinbridge.config import load_settings
        from pinbridge.service import _prune

        month = 30 * 86400.0
        for event_id, age_days in (("recent", 3), ("old", 9)):
            at = NOW - age_days * 86400
            await store.accept([item(event_id, event_time=int(at))], now=at, dedup_window=month)
        monkeypatch.chdir(tmp_path)  # no ./pinbridge.toml of the working directory
        settings = load_settings(None, {"PINBRIDGE_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
        assert settings.store.dedup_window_seconds == WINDOW
        stop = asyncio.Event()

        def clock():
            stop.set()  # one round
            return NOW

        service = SimpleNamespace(settings=settings, store=store)
        await _prune(service, stop, clock)
        again = [item("recent"), item("old")]
        answers = await store.accept(again, now=NOW, dedup_window=month)
        assert answers == [["duplicate"], ["accepted"]]


class TestPostgres:
    """What only shows with several processes on one PostgreSQL (simulated by several stores,
    each with its own connection pool)."""

    async def test_concurrent_claims_are_disjoint(self, postgres_url):
        """Senders claiming at once never get the same row, and together get every row."""
        import asyncio

        stores = [PostgresStore(postgres_url, pool_size=3) for _ in range(3)]
        try:
            await accept(stores[0], [item(f"e{i}") for i in range(600)], now=NOW)
            claims: list[list[int]] = [[], [], []]

            async def drain(k: int) -> None:
                while batch := await stores[k].claim(
                    "a", owner=f"s{k}", limit=50, now=NOW, lease_seconds=60
                ):
                    claims[k] += [c.id for c in batch]

            await asyncio.gather(*(drain(k) for k in range(3)))
            every = [i for ids in claims for i in ids]
            assert len(every) == len(set(every)) == 600
            assert all(claims), "every sender got a share"
        finally:
            for store in stores:
                await store.aclose()

    async def test_concurrent_accepts_deduplicate(self, postgres_url):
        """Two collectors accepting the same events at once: each is accepted exactly once."""
        import asyncio

        one, two = PostgresStore(postgres_url), PostgresStore(postgres_url)
        try:
            items = [item(f"e{i}") for i in range(200)]
            answers = await asyncio.gather(
                *(accept(s, items[k::10]) for s in (one, two) for k in range(10))
            )
            flat = [a for batch in answers for a in batch]
            assert flat.count("accepted") == 200
            assert flat.count("duplicate") == 200
            [stats] = await one.stats(now=NOW)
            assert stats.queued == 200
        finally:
            await one.aclose()
            await two.aclose()

    async def test_many_concurrent_accepts_are_grouped(self, postgres_url):
        """Concurrent callers all get their answers; the writers commit them in groups."""
        import asyncio

        store = PostgresStore(postgres_url, accept_writers=2)
        try:
            answers = await asyncio.gather(*(accept(store, [item(f"e{i}")]) for i in range(300)))
            assert answers == [["accepted"]] * 300
            [stats] = await store.stats(now=NOW)
            assert stats.queued == 300
        finally:
            await store.aclose()

    async def test_shared_rate_limit(self, postgres_url):
        """Two senders take from one budget per ad account: the call past it waits."""
        from pinbridge.store.postgres import SharedTokenBucket

        one, two = PostgresStore(postgres_url), PostgresStore(postgres_url)
        try:
            buckets = [SharedTokenBucket(s, "acct", rate_per_minute=60) for s in (one, two)]
            waits = [await buckets[i % 2].reserve(NOW) for i in range(60)]
            assert waits == [0.0] * 60
            assert await buckets[0].reserve(NOW) == pytest.approx(1.0)
            assert await buckets[1].reserve(NOW) == pytest.approx(2.0)
            assert await buckets[1].reserve(NOW + 10) == 0.0  # refilled (8 tokens left)
            other = SharedTokenBucket(one, "other-acct", rate_per_minute=60)
            assert await other.reserve(NOW) == 0.0
        finally:
            await one.aclose()
            await two.aclose()

    def test_migrations_give_the_schema(self, pg_databases):
        """Migrating an empty database gives the SQLite schema's tables and indexes (plus
        the shared rate limits and the version table); migrating again changes nothing."""
        import psycopg

        from pinbridge.store.postgres import latest_version
        from pinbridge.store.postgres import migrate as migrate_pg

        url = pg_databases.create(migrated=False)
        with psycopg.connect(url) as conn:
            assert migrate_pg(conn) == latest_version()
            tables = {
                r[0]
                for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            }
            indexes = {
                r[0]
                for r in conn.execute(
                    "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
                    " AND indexname NOT LIKE '%_pkey'"
                )
            }
            assert migrate_pg(conn) == latest_version()
        lite = sqlite3.connect(":memory:", isolation_level=None)
        migrate(lite)
        lite_tables = {
            r[0] for r in lite.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        lite_indexes = {
            r[0]
            for r in lite.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'"
            )
        }
        lite.close()
        assert tables == lite_tables | {"rate_limits", "schema_version"}
        assert indexes == lite_indexes

    def test_queries_mirror_sqlite(self):
        """postgres.sql has sqlite.sql's queries, by the same names and in the same order."""
        from pinbridge.store.sql import load_queries

        lite, pg = list(load_queries("sqlite")), list(load_queries("postgres"))
        assert pg[: len(lite)] == lite

    async def test_old_schema_refused_without_migrate(self, pg_databases):
        """With migrate_on_start off, a database behind the code is refused with the fix."""
        from pinbridge.store import StoreError

        url = pg_databases.create(migrated=False)
        with pytest.raises(StoreError, match="pinbridge migrate"):
            PostgresStore(url, migrate_schema=False)
