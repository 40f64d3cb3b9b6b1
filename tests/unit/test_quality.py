"""Resilience levels by Pinterest's rules (one row per rule of the guidance), coverage,
freshness and dedup rate."""

from __future__ import annotations

from typing import Any

import pytest

from pinbridge.quality import (
    coverage,
    dedup_rate,
    freshness,
    product_ids,
    resilience,
    summarize,
)
from pinbridge.store.base import AcceptCount, SentEvent

H = "a" * 64
FULL = {
    "em": [H],
    "client_ip_address": "203.0.113.9",
    "client_user_agent": "Mozilla/5.0",
    "external_id": [H],
    "fn": [H],
    "ln": [H],
    "click_id": "dj0yJnU9",
    "ph": [H],
    "ge": [H],
    "db": [H],
    "ct": [H],
    "st": [H],
    "zp": [H],
    "country": [H],
}
GOOD = {k: FULL[k] for k in ("em", "client_ip_address", "client_user_agent")}


def event(name: str = "checkout", drop: tuple[str, ...] = (), base: dict[str, Any] = FULL):
    user = {k: v for k, v in base.items() if k not in drop}
    return {"event_name": name, "event_id": "e", "user_data": user}


def without(*fields: str) -> dict[str, Any]:
    return {k: v for k, v in FULL.items() if k not in fields}


# (rule of the guidance, events, Tag's lower-funnel counts, level, failing rule id or None)
RULES = [
    # Poor: IP/UA coverage < 100 % of all events.
    ("poor: IP missing on one event", [event(), event("page_visit", ("client_ip_address",))],
     None, "Poor", "ip_ua_on_all_events"),
    ("poor: user agent missing on one event", [event(), event("lead", ("client_user_agent",))],
     None, "Poor", "ip_ua_on_all_events"),
    # Poor: email or MAID not shared in checkout events.
    ("poor: checkout without email or MAID", [event(), event("checkout", ("em",))],
     None, "Poor", "checkout_email_or_maid"),
    # Poor: Tag installed, lower-funnel Tag events not all sent through the API.
    ("poor: Tag fires add_to_cart the API never sends", [event()],
     {"add_to_cart": 5}, "Poor", "tag_lower_funnel_via_api"),
    # Good / Fair: 100 % IP/UA coverage of all events.
    ("good: IP + UA on every event", [event(base=GOOD), event("page_visit", base=GOOD)],
     None, "Good", "medium_external_id"),
    # Good / Fair: email or MAID shared in checkout events (a MAID alone is enough).
    ("good: checkout with a MAID and no email",
     [event(base={**GOOD, "hashed_maids": [H]}, drop=("em",))], None, "Good",
     "medium_external_id"),
    # Good / Fair: with a Tag, 100 % of lower-funnel Tag events also through the API.
    ("good: Tag's lower-funnel events all through the API", [event(base=GOOD)] * 3,
     {"checkout": 3}, "Good", "medium_external_id"),
    # Great: Good and every medium and low priority id.
    ("great: every medium and low id", [event(), event("lead")], {"lead": 1}, "Great", None),
    # Signal weights: each medium / low id is needed for Great.
    ("weight medium: external_id", [event(base=without("external_id"))], None, "Good",
     "medium_external_id"),
    ("weight medium: fn + ln (both)", [event(base=without("ln"))], None, "Good", "medium_fn_ln"),
    ("weight low: click_id", [event(base=without("click_id"))], None, "Good", "low_click_id"),
    ("weight low: ph", [event(base=without("ph"))], None, "Good", "low_ph"),
    ("weight low: ge, db, ct, st, zp, country", [event(base=without("zp"))], None, "Good",
     "low_zp"),
    # Signal weights, high: hashed_maid, em, IP + UA stand in for each other only as the
    # Poor rules say: a checkout with neither email nor MAID is Poor however complete.
    ("weight high: em or hashed_maid on checkout", [event(base=without("em"))], None, "Poor",
     "checkout_email_or_maid"),
]  # fmt: skip


class TestResilience:
    @pytest.mark.parametrize(
        ("events", "tag", "level", "failing"),
        [row[1:] for row in RULES],
        ids=[row[0] for row in RULES],
    )
    def test_rule(self, events, tag, level, failing):
        """Each rule of Pinterest's guidance gives its level, naming the failing rule."""
        result = resilience(summarize(events), tag)
        assert result.level == level
        failed = [r.id for r in result.rules if not r.passed]
        if failing is None:
            assert failed == []
            assert result.reasons == [] and result.next_steps == []
        else:
            assert failing in failed
            assert result.reasons and result.next_steps

    def test_poor_reasons_hide_great_ones(self):
        """A Poor setup lists only what keeps it Poor, not the ids missing for Great."""
        result = resilience(summarize([event(base=GOOD, drop=("client_ip_address",))]), None)
        assert result.level == "Poor"
        assert len(result.reasons) == 1
        assert "IP address + user agent on 0.0 %" in result.reasons[0]

    def test_no_events_is_poor(self):
        """Without events nothing shows IP + user agent coverage."""
        assert resilience(summarize([]), None).level == "Poor"


def sent(name: str, payload: bytes, state: str = "delivered", late: float = 5.0) -> SentEvent:
    return SentEvent(1, "d", name, 1000, 1000.0, state, 1000.0 + late, 200, payload)


class TestFigures:
    def test_coverage_per_event_name(self):
        """Coverage is the share of each name's events carrying the signal."""
        rows = coverage(
            [
                (sent("checkout", b""), event(base=GOOD) | {"custom_data": {"order_id": "1"}}),
                (sent("checkout", b""), event(base=GOOD, drop=("em",))),
            ]
        )
        assert len(rows) == 1
        assert rows[0].identifiers["em"] == 0.5
        assert rows[0].identifiers["ip_ua"] == 1.0
        assert rows[0].event_data["order_id"] == 0.5

    def test_product_ids_from_both_fields(self):
        """content_ids and contents[].id both name products, each once."""
        payload = {
            "custom_data": {"content_ids": ["a", "b"], "contents": [{"id": "b"}, {"id": "c"}]}
        }
        assert product_ids(payload) == ["a", "b", "c"]

    def test_freshness_counts_events_over_an_hour_late(self):
        """Delivered more than 3,600 s after the event: offline for Pinterest."""
        result = freshness(
            [sent("x", b"", late=10), sent("x", b"", late=4000), sent("x", b"", "dead")]
        )
        assert (result.delivered, result.offline, result.offline_share) == (2, 1, 0.5)

    def test_dedup_rate(self):
        """Duplicates over accepted + duplicates, overall or per event name."""
        counts = [
            AcceptCount(0, "accepted", "", "checkout", 9),
            AcceptCount(0, "duplicate", "", "checkout", 1),
            AcceptCount(60, "accepted", "", "lead", 10),
            AcceptCount(60, "rejected", "", "", 4),
        ]
        assert dedup_rate(counts).rate == pytest.approx(1 / 20)
        assert dedup_rate(counts, "checkout").rate == pytest.approx(0.1)
