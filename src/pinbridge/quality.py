"""Signal quality, computed from what was sent: coverage, resilience level, freshness, dedup.

Pure functions over the payloads pinbridge sent (or is sending) and the accept path's counts;
the I/O (store, Pinterest's Event Quality Score) is in :mod:`pinbridge.diagnostics`.

**Resilience** follows Pinterest's three levels (REFERENCE.md §11.1, from the help centre's
"Quality and resilience"), per destination over the period:

======  =====================================================================================
Poor    any of: IP address + user agent on fewer than 100 % of events; a checkout without
        email or MAID; the Pinterest Tag fires lower-funnel events (add to cart, checkout,
        lead, signup) that the API does not also send (assessed only when the Tag's counts
        are known, from Pinterest's EQS for ingestion source ``TAG``)
Good    none of the above
Great   Good, and every medium (external_id, fn + ln) and low (click_id, ph, ge, db, ct, st,
        zp, country) priority identifier is sent (on at least one event of the period, as
        Pinterest's own check and the emulator count it; coverage shows how often)
======  =====================================================================================

**Freshness**: the share of delivered events that reached Pinterest more than an hour after
they happened, which Pinterest counts as offline conversions. **Dedup rate**: duplicates over
accepted + duplicates (5 to 20 % is typical when the Tag and the API both fire).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Literal

import msgspec

from pinbridge.store.base import AcceptCount, SentEvent

__all__ = [
    "EVENT_DATA",
    "IDENTIFIERS",
    "LOWER_FUNNEL",
    "OFFLINE_AFTER_SECONDS",
    "Coverage",
    "DedupRate",
    "Freshness",
    "ResilienceLevel",
    "RuleResult",
    "SignalSummary",
    "coverage",
    "dedup_rate",
    "freshness",
    "product_ids",
    "resilience",
    "summarize",
]

#: Pinterest counts an event received later than this after it happened as offline.
OFFLINE_AFTER_SECONDS: Final = 3600
#: Lower-funnel events the Tag and the API must both send (Poor otherwise).
LOWER_FUNNEL: Final = ("add_to_cart", "checkout", "lead", "signup")

Payload = Mapping[str, Any]


def _user(field: str) -> Callable[[Payload], bool]:
    return lambda p: bool((p.get("user_data") or {}).get(field))


def _custom(field: str) -> Callable[[Payload], bool]:
    return lambda p: (p.get("custom_data") or {}).get(field) not in (None, "", [])


def product_ids(payload: Payload) -> list[str]:
    """The product ids an event names: ``content_ids`` and ``contents[].id``."""
    data = payload.get("custom_data") or {}
    ids = [str(i) for i in data.get("content_ids") or () if i]
    ids += [str(c["id"]) for c in data.get("contents") or () if isinstance(c, dict) and c.get("id")]
    return list(dict.fromkeys(ids))


#: Identifier → whether a payload carries it (``ip_ua``: both, as Pinterest counts them).
IDENTIFIERS: Final[dict[str, Callable[[Payload], bool]]] = {
    "em": _user("em"),
    "hashed_maids": _user("hashed_maids"),
    "ip_ua": lambda p: _user("client_ip_address")(p) and _user("client_user_agent")(p),
    "external_id": _user("external_id"),
    "fn_ln": lambda p: _user("fn")(p) and _user("ln")(p),
    "click_id": _user("click_id"),
    "ph": _user("ph"),
    "ge": _user("ge"),
    "db": _user("db"),
    "ct": _user("ct"),
    "st": _user("st"),
    "zp": _user("zp"),
    "country": _user("country"),
}
#: Event data → whether a payload carries it.
EVENT_DATA: Final[dict[str, Callable[[Payload], bool]]] = {
    "event_id": lambda p: bool(p.get("event_id")),
    "order_id": _custom("order_id"),
    "value": _custom("value"),
    "currency": _custom("currency"),
    "product_ids": lambda p: bool(product_ids(p)),
    "source_url": lambda p: bool(p.get("event_source_url")),
}
#: Pinterest's weights (REFERENCE.md §11.1); the labels shown to operators.
WEIGHTS: Final = {
    "hashed_maids": ("high", "MAID (hashed_maids)"),
    "em": ("high", "email (em)"),
    "ip_ua": ("high", "IP address + user agent"),
    "external_id": ("medium", "external id (external_id)"),
    "fn_ln": ("medium", "first + last name (fn + ln)"),
    "click_id": ("low", "click id (epik)"),
    "ph": ("low", "phone (ph)"),
    "ge": ("low", "gender (ge)"),
    "db": ("low", "date of birth (db)"),
    "ct": ("low", "city (ct)"),
    "st": ("low", "state (st)"),
    "zp": ("low", "zip code (zp)"),
    "country": ("low", "country"),
}
_MEDIUM_AND_LOW: Final = tuple(k for k, (w, _) in WEIGHTS.items() if w != "high")

_decode = msgspec.json.Decoder(dict[str, Any]).decode


class Coverage(msgspec.Struct):
    """Share (0 to 1) of one destination's events of one name carrying each signal."""

    destination: str
    event_name: str
    events: int
    identifiers: dict[str, float]
    event_data: dict[str, float]


class SignalSummary(msgspec.Struct):
    """What the resilience rules need of one destination's events in the period.

    Attributes:
        events: events sent (or being sent).
        ip_ua: of them, with IP address and user agent.
        checkouts: checkout events.
        checkouts_matched: of them, with email or MAID.
        present: identifier → events carrying it (keys of :data:`IDENTIFIERS`).
        api_counts: events per Pinterest event name.
    """

    events: int = 0
    ip_ua: int = 0
    checkouts: int = 0
    checkouts_matched: int = 0
    present: dict[str, int] = {}
    api_counts: dict[str, int] = {}


class RuleResult(msgspec.Struct):
    """One of Pinterest's resilience conditions, judged: ``level`` is what failing it costs
    (``poor``: the setup is Poor; ``great``: it cannot be Great)."""

    id: str
    level: Literal["poor", "great"]
    passed: bool
    detail: str
    fix: str = ""


class ResilienceLevel(msgspec.Struct):
    """The level, the rules that keep it from the next one, and what to add."""

    level: Literal["Poor", "Good", "Great"]
    reasons: list[str]
    next_steps: list[str]
    rules: list[RuleResult]


class Freshness(msgspec.Struct):
    """Delivered events and how late they reached Pinterest."""

    delivered: int
    offline: int
    offline_share: float
    median_delay_seconds: float | None


class DedupRate(msgspec.Struct):
    """Local duplicates (the same event_name + event_id within the window) over everything
    accepted or duplicate."""

    accepted: int
    duplicate: int
    rate: float


def decode(events: Iterable[SentEvent]) -> list[tuple[SentEvent, Payload]]:
    """Each sent event with its payload decoded (undecodable payloads are skipped)."""
    found: list[tuple[SentEvent, Payload]] = []
    for event in events:
        try:
            found.append((event, _decode(event.payload)))
        except msgspec.DecodeError:
            continue
    return found


def coverage(events: Sequence[tuple[SentEvent, Payload]]) -> list[Coverage]:
    """Coverage per destination and event name, in name order."""
    groups: dict[tuple[str, str], list[Payload]] = {}
    for event, payload in events:
        groups.setdefault((event.destination, event.event_name), []).append(payload)
    rows = []
    for (destination, name), payloads in sorted(groups.items()):
        total = len(payloads)
        rows.append(
            Coverage(
                destination,
                name,
                total,
                {k: sum(map(f, payloads)) / total for k, f in IDENTIFIERS.items()},
                {k: sum(map(f, payloads)) / total for k, f in EVENT_DATA.items()},
            )
        )
    return rows


def summarize(payloads: Iterable[Payload]) -> SignalSummary:
    """The resilience inputs of one destination's payloads."""
    summary = SignalSummary(present={k: 0 for k in IDENTIFIERS})
    for payload in payloads:
        summary.events += 1
        name = str(payload.get("event_name", ""))
        summary.api_counts[name] = summary.api_counts.get(name, 0) + 1
        for key, has in IDENTIFIERS.items():
            if has(payload):
                summary.present[key] += 1
        summary.ip_ua += IDENTIFIERS["ip_ua"](payload)
        if name == "checkout":
            summary.checkouts += 1
            summary.checkouts_matched += IDENTIFIERS["em"](payload) or IDENTIFIERS["hashed_maids"](
                payload
            )
    return summary


def resilience(summary: SignalSummary, tag_counts: Mapping[str, int] | None) -> ResilienceLevel:
    """Pinterest's resilience level for one destination (see the module docstring).

    Args:
        summary: the destination's events in the period.
        tag_counts: events the Pinterest Tag sent per event name in the same period, when
            known (Pinterest's EQS for ingestion source ``TAG``); ``None``: not assessed.
    """
    rules = [*_poor_rules(summary, tag_counts), *_great_rules(summary)]
    failed_poor = [r for r in rules if r.level == "poor" and not r.passed]
    failed_great = [r for r in rules if r.level == "great" and not r.passed]
    if failed_poor:
        level: Literal["Poor", "Good", "Great"] = "Poor"
        blocking = failed_poor
    elif failed_great:
        level, blocking = "Good", failed_great
    else:
        level, blocking = "Great", []
    return ResilienceLevel(
        level, [r.detail for r in blocking], [r.fix for r in blocking if r.fix], rules
    )


def _share(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f} %" if whole else "n/a"


def _poor_rules(summary: SignalSummary, tag_counts: Mapping[str, int] | None) -> list[RuleResult]:
    events = summary.events
    rules = [
        RuleResult(
            "ip_ua_on_all_events",
            "poor",
            events > 0 and summary.ip_ua == events,
            f"IP address + user agent on {_share(summary.ip_ua, events)} of events "
            "(Pinterest requires 100 %)",
            "send client_ip_address and client_user_agent on every event (context.ip and "
            "context.userAgent; pb.js and /v1/collect add them)",
        ),
        RuleResult(
            "checkout_email_or_maid",
            "poor",
            summary.checkouts_matched == summary.checkouts,
            f"email or MAID on {summary.checkouts_matched} of {summary.checkouts} checkout "
            "events (Pinterest requires all)"
            if summary.checkouts
            else "no checkout events in the period (email or MAID required on each)",
            "send the buyer's email (traits.email) or advertising id on every checkout",
        ),
    ]
    if tag_counts is None:
        rules.append(
            RuleResult(
                "tag_lower_funnel_via_api",
                "poor",
                True,
                "Pinterest Tag coverage not assessed (Pinterest reports no Tag events)",
            )
        )
        return rules
    short = {
        name: (tag_counts.get(name, 0), summary.api_counts.get(name, 0))
        for name in LOWER_FUNNEL
        if tag_counts.get(name, 0) > summary.api_counts.get(name, 0)
    }
    detail = "; ".join(f"{n}: Tag {t}, API {a}" for n, (t, a) in short.items())
    rules.append(
        RuleResult(
            "tag_lower_funnel_via_api",
            "poor",
            not short,
            f"lower-funnel Tag events not also sent through the API ({detail})"
            if short
            else "every lower-funnel Tag event is also sent through the API",
            "send add to cart, checkout, lead and signup through pinbridge as well as the "
            "Tag, with the same event_id",
        )
    )
    return rules


def _great_rules(summary: SignalSummary) -> list[RuleResult]:
    rules = []
    for key in _MEDIUM_AND_LOW:
        weight, label = WEIGHTS[key]
        count = summary.present.get(key, 0)
        rules.append(
            RuleResult(
                f"{weight}_{key}",
                "great",
                count > 0,
                f"{label} ({weight} priority) on {_share(count, summary.events)} of events",
                f"add {label} ({weight} priority)",
            )
        )
    return rules


def freshness(events: Iterable[SentEvent]) -> Freshness:
    """How late delivered events reached Pinterest (``finished_at - event_time``)."""
    delays = sorted(
        e.finished_at - e.event_time
        for e in events
        if e.state == "delivered" and e.finished_at is not None
    )
    offline = sum(1 for d in delays if d > OFFLINE_AFTER_SECONDS)
    median = delays[len(delays) // 2] if delays else None
    share = offline / len(delays) if delays else 0.0
    return Freshness(len(delays), offline, share, median)


def dedup_rate(counts: Iterable[AcceptCount], event_name: str | None = None) -> DedupRate:
    """Local dedup rate from the accept path's counts (of one event name, or all)."""
    accepted = duplicate = 0
    for c in counts:
        if event_name is not None and c.event_name != event_name:
            continue
        if c.outcome == "accepted":
            accepted += c.count
        elif c.outcome == "duplicate":
            duplicate += c.count
    total = accepted + duplicate
    return DedupRate(accepted, duplicate, duplicate / total if total else 0.0)
