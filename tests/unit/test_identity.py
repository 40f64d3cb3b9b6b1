"""Stitching people and enriching their events (pure, on the in-memory tables)."""

from __future__ import annotations

import hashlib

import pytest
from msgspec import UNSET

from pinbridge.identity import Profile, enrich, resolve
from pinbridge.pinterest.schema import ConversionEvent, UserData
from pinbridge.signals import IdentitySignals, identifier_key, utm_parameters
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
