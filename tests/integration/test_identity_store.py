"""Identity inside the accept transaction, on every store (SQLite, the in-memory fake and
PostgreSQL, with the contract suite's ``store`` fixture): a user id is exclusive, and the
click attribution window runs from the click."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from pinbridge.pinterest.schema import ConversionEvent, UserData
from pinbridge.report import attribute
from pinbridge.signals import IdentitySignals, identifier_key
from pinbridge.store import IdentityPolicy, PendingEvent, PendingInput, Store
from tests.integration.test_store import _store  # noqa: F401 (the ``store`` fixture)

pytestmark = pytest.mark.anyio
NOW = 1_795_345_200.0
DAY = 86400.0
WINDOW = 48 * 3600.0
WEB = {"client_ip_address": "1.2.3.4", "client_user_agent": "UA"}
POLICY = IdentityPolicy(click_windows={"long": 30 * DAY, "short": DAY})
ALICE_EM = "a" * 64
BOB_EM = "b" * 64


def pending(
    event_id: str,
    *keys: str,
    at: float = NOW,
    click: str | None = None,
    url: str | None = None,
    **user: Any,
) -> PendingInput:
    """One input of one checkout, to the destinations ``long`` (30 days) and ``short`` (1)."""
    event = ConversionEvent(
        event_name="checkout",
        action_source="web",
        event_time=int(at),
        event_id=event_id,
        user_data=UserData(**user),
    )
    signals = IdentitySignals(
        keys=keys,
        fields={k: v for k, v in user.items() if k in ("em", "ph")},
        click_id=click,
        landing_url=url,
        ip=user.get("client_ip_address"),
        user_agent=user.get("client_user_agent"),
        seen_at=at,
    )
    return PendingInput(
        input=b"{}",
        events=(
            PendingEvent(
                event_id=event_id,
                event_name="checkout",
                event_time=int(at),
                payload=msgspec.json.encode(event),
                destinations=("long", "short"),
            ),
        ),
        identity=signals,
    )


async def accept_each(store: Store, *inputs: PendingInput) -> None:
    """Accept the inputs one transaction each, in order; each must be accepted."""
    for one in inputs:
        answers = await store.accept([one], now=NOW, dedup_window=WINDOW, identity=POLICY)
        assert answers == [["accepted"]]


async def user_data(store: Store, destination: str = "long") -> dict[str, dict[str, Any]]:
    """The queued ``user_data`` of a destination, by event id."""
    claimed = await store.claim(destination, owner="t", limit=99, now=NOW, lease_seconds=9)
    payloads = [msgspec.json.decode(c.payload) for c in claimed]
    return {p["event_id"]: p["user_data"] for p in payloads}


def uid(value: str) -> str:
    return identifier_key("uid", value)


def aid(value: str) -> str:
    return identifier_key("aid", value)


class TestUserIdIsExclusive:
    """A second customer on a shared browser never gets the first one's email."""

    async def test_second_user_on_a_shared_browser(self, store):
        """Bob buying where Alice signed in (same anonymous id) is sent without her email."""
        alice = pending("alice-1", uid("alice"), aid("X"), "em:" + ALICE_EM, em=[ALICE_EM], **WEB)
        bob = pending("bob-1", uid("bob"), aid("X"), **WEB)
        again = pending("bob-2", uid("bob"), aid("X"), **WEB)
        await accept_each(store, alice, bob, again)
        sent = await user_data(store)
        assert sent["alice-1"]["em"] == [ALICE_EM]
        assert "em" not in sent["bob-1"] and "em" not in sent["bob-2"]

    async def test_two_known_customers_never_merge(self, store):
        """Bob, known from his phone, buying on Alice's browser stays Bob: his own email only."""
        alice = pending("alice-1", uid("alice"), aid("X"), "em:" + ALICE_EM, em=[ALICE_EM], **WEB)
        phone = pending("bob-1", uid("bob"), aid("Y"), "em:" + BOB_EM, em=[BOB_EM], **WEB)
        shared = pending("bob-2", uid("bob"), aid("X"), **WEB)
        alice_again = pending("alice-2", uid("alice"), **WEB)
        await accept_each(store, alice, phone, shared, alice_again)
        sent = await user_data(store)
        assert sent["bob-2"]["em"] == [BOB_EM]
        assert sent["alice-2"]["em"] == [ALICE_EM]

    async def test_signing_in_joins_the_visitor(self, store):
        """A user id still joins the anonymous visitor it signs in as: its click and email."""
        visit = pending("v", aid("X"), "em:" + ALICE_EM, at=NOW - DAY, click="EPIK", em=[ALICE_EM])
        sign_in = pending("s", uid("alice"), aid("X"), **WEB)
        later = pending("o", uid("alice"), **WEB)
        await accept_each(store, visit, sign_in, later)
        sent = await user_data(store)
        assert sent["o"]["em"] == [ALICE_EM]
        assert sent["o"]["click_id"] == "EPIK"


LANDING = "https://shop.example/mug?epik=CLICK-DAY0&utm_campaign=spring"
LATER_PAGE = "https://shop.example/cart?utm_campaign=newsletter"


class TestClickWindow:
    """The window is measured from the click (its first sighting), not its last sighting."""

    async def test_a_later_visit_does_not_extend_the_window(self, store):
        """Day 0 landing, day 25 visit carrying the ``_epik`` cookie: an order on day 29 gets
        the click (with the landing's campaign), one on day 40 does not."""
        day0 = NOW - 40 * DAY
        landing = pending("land", aid("X"), at=day0, click="CLICK-DAY0", url=LANDING, **WEB)
        visit = pending("visit", aid("X"), at=day0 + 25 * DAY, click="CLICK-DAY0", url=LATER_PAGE)
        inside = pending("day-29", aid("X"), "em:" + ALICE_EM, at=day0 + 29 * DAY, em=[ALICE_EM])
        outside = pending("day-40", "em:" + ALICE_EM, at=NOW, em=[ALICE_EM])
        await accept_each(store, landing, visit, inside, outside)
        sent = await user_data(store)
        assert sent["day-29"]["click_id"] == "CLICK-DAY0"
        assert "click_id" not in sent["day-40"]
        [event] = await store.history(event_id="day-29", needle=None, limit=5)
        enrichment = {d.destination: d.enrichment for d in event.deliveries}
        assert enrichment["long"] is not None
        record = msgspec.json.decode(enrichment["long"])
        assert (record["click_seen"], record["utm"]) == (day0, {"utm_campaign": "spring"})

    async def test_the_short_window_too(self, store):
        """A click 3 days old, seen again an hour ago, is outside a 1-day window."""
        click = pending("land", aid("X"), at=NOW - 3 * DAY, click="E", url=LANDING, **WEB)
        seen = pending("visit", aid("X"), at=NOW - 3600, click="E", url=LATER_PAGE, **WEB)
        order = pending("order", aid("X"), **WEB)
        await accept_each(store, click, seen, order)
        assert (await user_data(store, "long"))["order"]["click_id"] == "E"
        assert "click_id" not in (await user_data(store, "short"))["order"]

    async def test_an_earlier_sighting_accepted_later(self, store):
        """The day 25 visit accepted before the day 0 landing (an import, a late batch): the
        click still happened on day 0."""
        day0 = NOW - 40 * DAY
        visit = pending("visit", aid("X"), at=day0 + 25 * DAY, click="CLICK-DAY0", url=LATER_PAGE)
        landing = pending("land", aid("X"), at=day0, click="CLICK-DAY0", url=LANDING, **WEB)
        order = pending("order", aid("X"), **WEB)
        await accept_each(store, visit, landing, order)
        assert "click_id" not in (await user_data(store))["order"]

    async def test_merged_people_keep_the_first_click_time(self, store):
        """A click seen by two people who then merge counts from its first sighting."""
        day0 = NOW - 40 * DAY
        phone = pending("land", aid("P"), at=day0, click="CLICK-DAY0", url=LANDING, **WEB)
        laptop = pending("visit", aid("L"), at=day0 + 25 * DAY, click="CLICK-DAY0", url=LANDING)
        join = pending("order", aid("P"), aid("L"), **WEB)
        await accept_each(store, phone, laptop, join)
        assert "click_id" not in (await user_data(store))["order"]

    async def test_attribution_report_counts_from_the_click(self, store):
        """The attribution report measures the window from the click as well."""
        day0 = NOW - 40 * DAY
        landing = pending("land", aid("X"), at=day0, click="CLICK-DAY0", url=LANDING, **WEB)
        visit = pending("visit", aid("X"), at=day0 + 25 * DAY, click="CLICK-DAY0", url=LATER_PAGE)
        order = pending("order", aid("X"), **WEB)
        await accept_each(store, landing, visit, order)
        rows = await store.attribution_rows(since=NOW - 60, window=30 * DAY)
        of_order = [r for r in rows if r[2] == int(NOW)]
        assert [(r.campaign, r.conversions) for r in attribute(of_order)] == [("(no click)", 1)]
