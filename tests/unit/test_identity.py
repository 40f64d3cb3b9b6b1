"""Stitching people and enriching their events (pure, on the in-memory tables)."""

from __future__ import annotations

import hashlib

import pytest
from msgspec import UNSET

from pinbridge.identity import Profile, enrich, resolve
from pinbridge.pinterest.schema import ConversionEvent, UserData
from pinbridge.signals import Click, IdentitySignals, identifier_key, utm_parameters
from pinbridge.store.memory import MemoryIdentity

DAY = 86400.0
NOW = 1_795_345_200.0


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def signals(*keys: str, click: str | None = None, at: float = NOW, **fields) -> IdentitySignals:
    return IdentitySignals(
        keys=keys,
        fields={k: [v] for k, v in fields.items()},
        click_id=click,
        landing_url="https://shop.example/p?utm_campaign=spring&utm_source=pinterest&email=x"
        if click
        else None,
        ip="203.0.113.9",
        user_agent="UA",
        seen_at=at,
    )


def aid(value: str) -> str:
    return identifier_key("aid", value)


def em(address: str) -> str:
    return identifier_key("em", sha(address))


def uid(value: str) -> str:
    return identifier_key("uid", value)


class TestResolve:
    def test_new_person_and_same_person_again(self):
        """The first sighting creates a person; any of its identifiers finds it again."""
        tables = MemoryIdentity()
        first = resolve(tables, signals(aid("A"), em("a@x.co")), now=NOW)
        assert resolve(tables, signals(em("a@x.co")), now=NOW) == first
        assert resolve(tables, signals(aid("B")), now=NOW) != first

    def test_two_known_people_merge(self):
        """An input carrying identifiers of two people merges them, with their clicks."""
        tables = MemoryIdentity()
        phone = resolve(tables, signals(aid("A"), click="EPIK1", at=NOW - DAY), now=NOW)
        desktop = resolve(tables, signals(aid("B"), em("a@x.co")), now=NOW)
        merged = resolve(tables, signals(aid("A"), em("a@x.co")), now=NOW)
        assert merged in (phone, desktop)
        assert tables.persons_of([aid("A"), aid("B"), em("a@x.co")]) == dict.fromkeys(
            [aid("A"), aid("B"), em("a@x.co")], merged
        )
        assert [c.click_id for c in tables.clicks(merged)] == ["EPIK1"]

    def test_ignored_identifiers_never_stitch(self):
        """A listed shared identifier (the shop's test email) links nobody."""
        tables = MemoryIdentity()
        shared = em("test@shop.example")
        one = resolve(tables, signals(aid("A"), shared), now=NOW, ignore=frozenset({shared}))
        two = resolve(tables, signals(aid("B"), shared), now=NOW, ignore=frozenset({shared}))
        assert one != two
        assert resolve(tables, signals(shared), now=NOW, ignore=frozenset({shared})) is None

    def test_merge_guard_refuses_giant_merges(self):
        """A merge past the per-kind limit is refused; the strongest identifier decides."""
        tables = MemoryIdentity()
        limits = {"uid": 3, "em": 2, "ph": 10, "xid": 10, "maid": 20, "aid": 50}
        people = [
            resolve(tables, signals(aid(f"A{i}"), em(f"p{i}@x.co")), now=NOW, max_per_kind=limits)
            for i in range(3)
        ]
        chain = signals(em("p0@x.co"), em("p1@x.co"), em("p2@x.co"))
        person = resolve(tables, chain, now=NOW, max_per_kind=limits)
        assert person in people
        assert len(set(tables.persons_of([em(f"p{i}@x.co") for i in range(3)]).values())) >= 2

    def test_profile_keeps_digests_and_last_seen_network(self):
        """The profile remembers digests (latest last), the last IP and user agent."""
        tables = MemoryIdentity()
        person = resolve(tables, signals(aid("A"), em("old@x.co"), em=sha("old@x.co")), now=NOW)
        resolve(tables, signals(aid("A"), em("new@x.co"), em=sha("new@x.co")), now=NOW)
        profile = tables.profile(person)
        assert profile.fields["em"] == [sha("old@x.co"), sha("new@x.co")]
        assert (profile.last_ip, profile.last_user_agent) == ("203.0.113.9", "UA")

    def test_profile_keeps_only_attached_emails(self):
        """A refused merge, an ignored email or one past the limit leaves its digest out of
        the profile; a refused merge also leaves out the input's names and address."""
        tables = MemoryIdentity()
        uid = identifier_key("uid", "q-1")
        limits = {"uid": 3, "em": 1, "ph": 10, "xid": 10, "maid": 20, "aid": 50}
        quinn = resolve(tables, signals(uid, em("q@x.co"), em=sha("q@x.co")), now=NOW)
        resolve(tables, signals(aid("J"), em("j@x.co"), em=sha("j@x.co")), now=NOW)
        mixed = signals(uid, em("j@x.co"), em=sha("j@x.co"), fn=sha("jane"))
        assert resolve(tables, mixed, now=NOW, max_per_kind=limits) == quinn
        over = signals(uid, em("z@x.co"), em=sha("z@x.co"), ln=sha("q"))
        assert resolve(tables, over, now=NOW, max_per_kind=limits) == quinn
        shop = em("test@shop.example")
        tested = signals(uid, shop, em=sha("test@shop.example"))
        assert resolve(tables, tested, now=NOW, ignore=frozenset({shop})) == quinn
        assert tables.profile(quinn).fields == {"em": [sha("q@x.co")], "ln": [sha("q")]}

    def test_second_user_id_on_a_shared_browser_is_a_new_person(self):
        """Bob buying on the browser where Alice signed in is a new person: his user id does not
        join Alice through the shared anonymous id, and Alice's email is not his."""
        tables = MemoryIdentity()
        alice = resolve(
            tables, signals(uid("alice"), aid("X"), em("a@x.co"), em=sha("a@x.co")), now=NOW
        )
        bob = resolve(tables, signals(uid("bob"), aid("X")), now=NOW)
        assert bob != alice
        assert tables.persons_of([uid("alice"), uid("bob"), aid("X")]) == {
            uid("alice"): alice,
            uid("bob"): bob,
            aid("X"): alice,
        }
        assert "em" not in tables.profile(bob).fields
        assert resolve(tables, signals(uid("bob"), aid("X")), now=NOW) == bob

    def test_two_user_ids_never_merge_through_a_weaker_identifier(self):
        """Two known customers are not merged by a shared anonymous id or email."""
        tables = MemoryIdentity()
        alice = resolve(tables, signals(uid("alice"), aid("X"), em("family@x.co")), now=NOW)
        bob = resolve(tables, signals(uid("bob"), aid("Y")), now=NOW)
        assert resolve(tables, signals(uid("bob"), aid("X")), now=NOW) == bob
        assert resolve(tables, signals(uid("bob"), em("family@x.co")), now=NOW) == bob
        assert tables.kind_counts(alice)["uid"] == tables.kind_counts(bob)["uid"] == 1
        assert tables.persons_of([aid("X"), em("family@x.co")]) == dict.fromkeys(
            [aid("X"), em("family@x.co")], alice
        )

    def test_a_refused_merge_never_falls_back_to_another_customer(self):
        """When the guard refuses to merge the eligible people, the input goes to the
        strongest identifier among *their* keys, not to the customer with another user id
        who shares the input's email (who was never eligible)."""
        tables = MemoryIdentity()
        limits = {"uid": 3, "em": 2, "ph": 10, "xid": 10, "maid": 20, "aid": 50}
        alice = resolve(tables, signals(uid("alice"), em("family@x.co")), now=NOW)
        guests = [
            resolve(tables, signals(*(aid(f"G{g}-{i}") for i in range(30))), now=NOW)
            for g in (1, 2)
        ]
        bob_input = signals(uid("bob"), em("family@x.co"), aid("G1-0"), aid("G2-0"))
        bob = resolve(tables, bob_input, now=NOW, max_per_kind=limits)
        assert bob != alice and bob in guests
        assert tables.kind_counts(alice)["uid"] == 1
        assert resolve(tables, signals(uid("bob")), now=NOW, max_per_kind=limits) == bob

    def test_a_user_id_joins_its_anonymous_visits(self):
        """Signing in joins the visitor's person, which has no user id yet, and merges another
        device's visitor; so does an alias from the anonymous id."""
        tables = MemoryIdentity()
        phone = resolve(tables, signals(aid("A"), click="E1"), now=NOW)
        assert resolve(tables, signals(uid("alice"), aid("A")), now=NOW) == phone
        laptop = resolve(tables, signals(aid("B")), now=NOW)
        merged = resolve(tables, signals(uid("alice"), aid("B")), now=NOW)
        assert merged in (phone, laptop)
        assert len(set(tables.persons_of([aid("A"), aid("B"), uid("alice")]).values())) == 1
        tablet = resolve(tables, signals(aid("C")), now=NOW)
        alias = signals(uid("C"), aid("C"), uid("carol"))  # previousId C, userId carol
        assert resolve(tables, alias, now=NOW) == tablet
        assert resolve(tables, signals(uid("carol")), now=NOW) == tablet

    def test_alias_from_a_shared_browser_is_a_new_person(self):
        """An alias from the browser's known anonymous id does not make that id a user id of
        the first customer, so a second customer's alias from it is a new person."""
        tables = MemoryIdentity()
        visit = resolve(tables, signals(aid("X")), now=NOW)
        limits = {"uid": 1, "em": 10, "ph": 10, "xid": 10, "maid": 20, "aid": 50}
        alice = signals(uid("X"), aid("X"), uid("alice"))  # previousId X, userId alice
        assert resolve(tables, alice, now=NOW, max_per_kind=limits) == visit
        assert tables.persons_of([uid("X"), uid("alice")]) == {uid("alice"): visit}
        bob = resolve(tables, signals(uid("X"), aid("X"), uid("bob")), now=NOW)
        assert bob != visit
        assert tables.persons_of([uid("bob"), aid("X")]) == {uid("bob"): bob, aid("X"): visit}

    def test_alias_from_an_old_user_id_keeps_the_person(self):
        """An alias naming the old user id gives the person its new one, up to the limit."""
        tables = MemoryIdentity()
        person = resolve(tables, signals(uid("old"), em("a@x.co")), now=NOW)
        alias = signals(uid("old"), aid("old"), uid("new"))  # previousId old, userId new
        assert resolve(tables, alias, now=NOW) == person
        assert resolve(tables, signals(uid("new")), now=NOW) == person

    def test_click_landing_keeps_utm_not_query(self):
        """A click keeps the landing page without its query, and the UTM parameters."""
        tables = MemoryIdentity()
        person = resolve(tables, signals(aid("A"), click="E1"), now=NOW)
        [click] = tables.clicks(person)
        assert click.landing_url == "https://shop.example/p"
        assert click.utm == {"utm_campaign": "spring", "utm_source": "pinterest"}


def event(**user) -> ConversionEvent:
    return ConversionEvent(
        event_name="checkout",
        action_source="web",
        event_time=int(NOW),
        event_id="o1",
        user_data=UserData(**user),
    )


class TestEnrich:
    @pytest.mark.parametrize(
        ("click_age_days", "window_days", "expected"),
        [(3, 30, "E1"), (3, 7, "E1"), (3, 1, None), (29, 30, "E1"), (31, 30, None)],
    )
    def test_click_within_window(self, click_age_days, window_days, expected):
        """The person's latest click is added only when seen within the window."""
        tables = MemoryIdentity()
        person = resolve(
            tables, signals(aid("A"), click="E1", at=NOW - click_age_days * DAY), now=NOW
        )
        enriched, record = enrich(
            event(client_ip_address="1.2.3.4", client_user_agent="UA"),
            person,
            tables.profile(person),
            tables.clicks(person),
            window_seconds=window_days * DAY,
        )
        assert enriched.user_data.click_id == (expected or UNSET)
        assert ("click_id" in record.added) is (expected is not None)

    @pytest.mark.parametrize(
        ("first_days_ago", "last_days_ago", "window_days", "expected"),
        [(40, 15, 30, None), (40, 0, 30, None), (25, 0, 30, "E1"), (2, 0, 1, None)],
    )
    def test_window_runs_from_the_click(self, first_days_ago, last_days_ago, window_days, expected):
        """A click counts from when it happened: seeing it again (the ``_epik`` cookie on a
        later visit) does not bring it back into the window."""
        click = Click("E1", NOW - first_days_ago * DAY, NOW - last_days_ago * DAY)
        enriched, record = enrich(
            event(client_ip_address="1.2.3.4", client_user_agent="UA"),
            1,
            Profile(),
            [click],
            window_seconds=window_days * DAY,
        )
        assert enriched.user_data.click_id == (expected or UNSET)
        assert record.click_seen == (click.first_seen if expected else None)

    def test_latest_click_is_the_last_one_clicked(self):
        """Of two clicks in the window, the one clicked last is added, however recently the
        other was seen again."""
        old = Click("OLD", NOW - 20 * DAY, NOW - 3600)
        new = Click("NEW", NOW - 5 * DAY, NOW - 5 * DAY)
        enriched, record = enrich(
            event(client_ip_address="1.2.3.4", client_user_agent="UA"),
            1,
            Profile(),
            [new, old],
            window_seconds=30 * DAY,
        )
        assert enriched.user_data.click_id == "NEW"
        assert record.click_seen == NOW - 5 * DAY

    def test_own_click_id_is_kept(self):
        """An event that has a click id keeps it."""
        enriched, record = enrich(
            event(em=[sha("a@x.co")], click_id="OWN"),
            1,
            Profile(),
            [],
            window_seconds=30 * DAY,
        )
        assert enriched.user_data.click_id == "OWN" and record.added == ()

    def test_enhanced_match(self):
        """An event with neither email nor phone gets the person's digests, latest first."""
        profile = Profile(fields={"em": [sha("old@x.co"), sha("new@x.co")], "ph": [sha("1650")]})
        enriched, record = enrich(
            event(client_ip_address="1.2.3.4", client_user_agent="UA"),
            1,
            profile,
            [],
            window_seconds=30 * DAY,
        )
        assert enriched.user_data.em == [sha("new@x.co"), sha("old@x.co")]
        assert enriched.user_data.ph == [sha("1650")]
        assert record.added == ("em", "ph")

    def test_event_with_email_gets_no_phone(self):
        """An event that has an email is not given other people's digests."""
        profile = Profile(fields={"ph": [sha("1650")]})
        enriched, record = enrich(
            event(em=[sha("a@x.co")]), 1, profile, [], window_seconds=30 * DAY
        )
        assert enriched == event(em=[sha("a@x.co")]) and record.added == ()


def test_utm_parameters():
    """Only utm_* parameters are read from a landing URL."""
    assert utm_parameters("https://s/p?utm_source=pin&x=1&utm_term=mugs") == {
        "utm_source": "pin",
        "utm_term": "mugs",
    }
    assert utm_parameters(None) == {}


@pytest.mark.parametrize(
    ("url", "landing_url", "utm"),
    [
        (
            "https://shop.example/thanks?email=zelda.raw%40example.org&utm_source=pin",
            "https://shop.example/thanks",
            {"utm_source": "pin"},
        ),
        (
            "https://shop.example/unsubscribe/zelda.raw%40example.org?utm_source=pin",
            "https://shop.example",
            {"utm_source": "pin"},
        ),
        (
            "https://shop.example/u/zelda.raw@example.org#top",
            "https://shop.example",
            {},
        ),
        (
            "https://shop.example/p?utm_content=zelda.raw%40example.org&utm_term=%2B1+650+555+1234"
            "&utm_campaign=spring",
            "https://shop.example/p",
            {"utm_campaign": "spring"},
        ),
        (
            "https://shop.example/p/40123456789012?utm_content=call+me+4155550199",
            "https://shop.example/p/40123456789012",
            {},
        ),
        ("https://zelda@shop.example/p?x=1", "https://shop.example/p", {}),
    ],
)
def test_click_keeps_no_personal_data(url, landing_url, utm):
    """A click's landing page and UTM parameters never keep an email or phone, encoded or not."""
    signals = IdentitySignals(keys=(), click_id="E1", landing_url=url, seen_at=NOW)
    click = signals.click
    assert click is not None
    assert (click.landing_url, click.utm) == (landing_url, utm)
