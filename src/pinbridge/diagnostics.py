"""Diagnostics gathered from the store and Pinterest: status, signal quality, time series.

The I/O shell around :mod:`pinbridge.quality` and :mod:`pinbridge.catalog`, shared by
``pinbridge status`` / ``pinbridge quality`` and the dashboard's pages and JSON endpoints, so
that all of them show the same figures.

``pinbridge status`` exit codes: 0 healthy; 2 a destination is stopped (Pinterest refused its
credentials); 3 dead letters were added in the last hour (:data:`DEAD_LETTER_WINDOW`). A
stopped destination wins over dead letters.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

import msgspec

from pinbridge.catalog import CatalogMismatch, all_product_ids, mismatches
from pinbridge.pinterest.errors import PinterestError
from pinbridge.quality import (
    LOWER_FUNNEL,
    OFFLINE_AFTER_SECONDS,
    Coverage,
    DedupRate,
    Freshness,
    ResilienceLevel,
    coverage,
    decode,
    dedup_rate,
    freshness,
    resilience,
    summarize,
)
from pinbridge.store.base import DestinationStats, SentEvent, Store

__all__ = [
    "DEAD_LETTER_WINDOW",
    "EXIT_DEAD_LETTERS",
    "EXIT_STOPPED",
    "DestinationQuality",
    "QualityReport",
    "StatusReport",
    "Timeline",
    "quality_report",
    "status_report",
    "timeline",
]

#: Dead letters added within this many seconds make ``pinbridge status`` exit 3.
DEAD_LETTER_WINDOW: Final = 3600.0
EXIT_STOPPED: Final = 2
EXIT_DEAD_LETTERS: Final = 3
#: Most deliveries read for one report (newest first); the report says when it was cut.
MAX_EVENTS: Final = 100_000

EqsFetcher = Callable[[str], Awaitable[Any]]


class StatusReport(msgspec.Struct):
    """The queue at a glance and what happened in the last hour."""

    destinations: list[DestinationStats]
    dead_last_hour: dict[str, int]
    outcomes_last_hour: dict[str, int]
    dropped_last_hour: dict[str, int]
    answers_last_hour: dict[str, int]
    event_to_delivery_p50: float | None
    event_to_delivery_p95: float | None
    accept_to_delivery_p50: float | None
    accept_to_delivery_p95: float | None
    exit_code: int


class DestinationQuality(msgspec.Struct):
    """Signal quality of one destination: local figures beside Pinterest's EQS."""

    destination: str
    events: int
    resilience: ResilienceLevel
    freshness: Freshness
    eqs: list[Any] | None = None
    eqs_error: str = ""
    eqs_status: dict[str, str] = {}
    eqs_dedup: dict[str, float] = {}


class QualityReport(msgspec.Struct):
    """Everything ``pinbridge quality`` and the dashboard show about signal quality."""

    since: float
    until: float
    events_read: int
    truncated: bool
    destinations: list[DestinationQuality]
    coverage: list[Coverage]
    dedup: DedupRate
    dedup_by_event: dict[str, DedupRate]
    outcomes: dict[str, int]
    dropped: dict[str, int]
    catalog_products: int
    catalog: list[CatalogMismatch]


class Timeline(msgspec.Struct):
    """Time series per bucket for the dashboard's charts (``t``: bucket starts, seconds)."""

    bucket: int
    t: list[float]
    series: dict[str, list[int]]
    errors: dict[str, list[int]]
    dedup_rate: list[float | None]
    offline_share: list[float | None]


def _percentile(values: Sequence[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def status_report(store: Store, *, now: float) -> StatusReport:
    """The figures of ``pinbridge status`` and the dashboard's header."""
    since = now - DEAD_LETTER_WINDOW
    stats = await store.stats(now=now)
    dead = await store.dead_letters_since(since=since)
    counts = await store.accept_counts(since=since - 60)
    outcomes: dict[str, int] = {}
    dropped: dict[str, int] = {}
    for c in counts:
        outcomes[c.outcome] = outcomes.get(c.outcome, 0) + c.count
        if c.outcome == "dropped" or c.reason == "mapping":
            dropped[c.reason] = dropped.get(c.reason, 0) + c.count
    answers: dict[str, int] = {}
    for point in await store.timeline(since=since, bucket=DEAD_LETTER_WINDOW):
        if point.series.startswith("attempt:"):
            key = f"{point.series.removeprefix('attempt:')} {point.label or '-'}".strip()
            answers[key] = answers.get(key, 0) + point.count
    # Deliveries of the last hour, chosen by when they finished: an event accepted days
    # before its delivery counts too.
    sent = [
        e
        for e in await store.finished_deliveries(since=since, limit=MAX_EVENTS)
        if e.state == "delivered"
    ]
    event_delays = [e.finished_at - e.event_time for e in sent]
    accept_delays = [e.finished_at - e.accepted_at for e in sent]
    code = 0
    if any(row.paused_reason for row in stats):
        code = EXIT_STOPPED
    elif any(dead.values()):
        code = EXIT_DEAD_LETTERS
    return StatusReport(
        destinations=stats,
        dead_last_hour=dead,
        outcomes_last_hour=outcomes,
        dropped_last_hour=dropped,
        answers_last_hour=answers,
        event_to_delivery_p50=_percentile(event_delays, 0.5),
        event_to_delivery_p95=_percentile(event_delays, 0.95),
        accept_to_delivery_p50=_percentile(accept_delays, 0.5),
        accept_to_delivery_p95=_percentile(accept_delays, 0.95),
        exit_code=code,
    )


async def quality_report(
    store: Store,
    *,
    since: float,
    now: float,
    eqs: Mapping[str, EqsFetcher] | None = None,
) -> QualityReport:
    """Signal quality of events accepted since ``since``.

    Args:
        store: the store.
        since: start of the period (acceptance time).
        now: end of the period.
        eqs: per destination, a coroutine function fetching Pinterest's Event Quality Score
            for a lookback period (``"1d"`` or ``"14d"``); absent destinations show none.
    """
    rows = await store.sent_events(since=since, limit=MAX_EVENTS)
    events = decode(rows)
    by_destination: dict[str, list[tuple[SentEvent, Any]]] = {}
    for event, payload in events:
        by_destination.setdefault(event.destination, []).append((event, payload))
    lookback = "1d" if now - since <= 86400 else "14d"
    destinations = []
    for name in sorted(set(by_destination) | set(eqs or {})):
        mine = by_destination.get(name, [])
        fetch = (eqs or {}).get(name)
        destinations.append(await _destination(name, mine, fetch, lookback))
    counts = await store.accept_counts(since=since)
    outcomes: dict[str, int] = {}
    dropped: dict[str, int] = {}
    for c in counts:
        outcomes[c.outcome] = outcomes.get(c.outcome, 0) + c.count
        if c.outcome == "dropped" or c.reason == "mapping":
            dropped[c.reason] = dropped.get(c.reason, 0) + c.count
    names = sorted({c.event_name for c in counts if c.event_name})
    size, _ = await store.catalog_size()
    catalog: list[CatalogMismatch] = []
    if size:
        known = await store.catalog_known(all_product_ids(events))
        catalog = mismatches(events, known)
    return QualityReport(
        since=since,
        until=now,
        events_read=len(rows),
        truncated=len(rows) >= MAX_EVENTS,
        destinations=destinations,
        coverage=coverage(events),
        dedup=dedup_rate(counts),
        dedup_by_event={n: dedup_rate(counts, n) for n in names},
        outcomes=outcomes,
        dropped=dropped,
        catalog_products=size,
        catalog=catalog,
    )


async def _destination(
    name: str, events: list[tuple[SentEvent, Any]], fetch: EqsFetcher | None, lookback: str
) -> DestinationQuality:
    summary = summarize(payload for _, payload in events)
    result = DestinationQuality(
        destination=name,
        events=len(events),
        resilience=resilience(summary, None),
        freshness=freshness(event for event, _ in events),
    )
    if fetch is None:
        return result
    try:
        scores = await fetch(lookback)
    except PinterestError as exc:
        result.eqs_error = f"{type(exc).__name__}: {exc}"
        return result
    if not isinstance(scores, list):
        result.eqs_error = "Pinterest's answer is not a list of scores"
        return result
    result.eqs = scores
    tag_counts: dict[str, int] | None = None
    for score in scores:
        if not isinstance(score, dict):
            continue
        platform = f"{score.get('ingestion_source', '?')}/{score.get('source_platform', '?')}"
        result.eqs_status[platform] = str(score.get("overall_status", ""))
        components = score.get("quality_components") or {}
        overlap = (
            (components.get("external_event_id") or {}) if isinstance(components, dict) else {}
        )
        for kind, details in overlap.items():
            if isinstance(details, dict) and details.get("overlap") is not None:
                result.eqs_dedup[f"{platform} {kind.lower()}"] = float(details["overlap"]) / 100
        if score.get("ingestion_source") == "TAG" and isinstance(components, dict):
            # The EQS names the conversion types the Tag sent, not how many: a lower-funnel
            # type the Tag sends and the API never does fails the rule.
            kinds = {k.lower() for per_type in components.values() for k in per_type or {}}
            tag_counts = {k: 1 for k in kinds if k in LOWER_FUNNEL}
    if tag_counts is not None:
        result.resilience = resilience(summary, tag_counts)
    return result


async def timeline(store: Store, *, since: float, now: float, bucket: int) -> Timeline:
    """Per-bucket counts for the charts, read from the store (so they survive restarts)."""
    start = int(since // bucket * bucket)
    slots = list(range(start, int(now) + 1, bucket))
    index = {t: i for i, t in enumerate(slots)}
    series = {k: [0] * len(slots) for k in ("accepted", "delivered", "dead", "duplicate")}
    series |= {k: [0] * len(slots) for k in ("rejected", "dropped", "retried")}
    errors: dict[str, list[int]] = {}
    for point in await store.timeline(since=start, bucket=bucket):
        i = index.get(int(point.t))
        if i is None:
            continue
        if point.series in ("accepted", "delivered", "dead"):
            series[point.series][i] += point.count
        elif point.series.startswith("attempt:") and point.series != "attempt:processed":
            if point.series == "attempt:retry":
                series["retried"][i] += point.count
            label = point.label or point.series.removeprefix("attempt:")
            errors.setdefault(label, [0] * len(slots))[i] += point.count
    inputs = [0] * len(slots)  # accepted inputs, the dedup rate's other half
    for count in await store.accept_counts(since=start):
        i = index.get(int(count.minute // bucket * bucket))
        if i is not None and count.outcome in ("duplicate", "rejected", "dropped"):
            series[count.outcome][i] += count.count
        elif i is not None and count.outcome == "accepted":
            inputs[i] += count.count
    late = [0] * len(slots)
    delivered = [0] * len(slots)
    for event in await store.finished_deliveries(since=start, limit=MAX_EVENTS):
        if event.state != "delivered":
            continue
        i = index.get(int(event.finished_at // bucket * bucket))
        if i is not None:
            delivered[i] += 1
            late[i] += event.finished_at - event.event_time > OFFLINE_AFTER_SECONDS
    dedup: list[float | None] = []
    for accepted, duplicate in zip(inputs, series["duplicate"], strict=True):
        dedup.append(duplicate / (accepted + duplicate) if accepted + duplicate else None)
    offline = [lt / d if d else None for lt, d in zip(late, delivered, strict=True)]
    return Timeline(bucket, [float(t) for t in slots], series, errors, dedup, offline)
