"""Prometheus metrics: one registry per running service, passed down, never global.

Names follow Prometheus conventions (``_total`` counters, base units: seconds, events). The
counters and histograms are the process's own (summed over processes by Prometheus); the queue
gauges are read from the store when ``/metrics`` is scraped, so every process reports the same
truth about the shared queue. ``docs/diagnostics.md`` lists every metric.

The accept path's outcome counts are also kept per minute (:class:`AcceptTally`) and written to
the store now and then, so that the dashboard and ``pinbridge quality`` see duplicates,
rejections and drops across restarts and processes.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from pinbridge.store.base import AcceptCount, DestinationStats

__all__ = ["CONTENT_TYPE_LATEST", "AcceptTally", "Metrics"]

#: Events per delivery round (Pinterest takes at most 1,000 per request).
BATCH_BUCKETS: Final = (1, 5, 10, 50, 100, 250, 500, 1000)
#: From the event's own time to Pinterest's answer: real time up to the 7-day limit; the
#: 3,600 s bucket is Pinterest's line between web and offline conversions.
EVENT_LATENCY_BUCKETS: Final = (1, 5, 15, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400)
#: From acceptance to Pinterest's answer: pinbridge's own delay.
ACCEPT_LATENCY_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)


class AcceptTally:
    """Accept outcomes counted per minute until drained into the store (thread-safe)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[int, str, str, str], int] = {}
        self._lock = threading.Lock()

    def add(self, now: float, outcome: str, reason: str, event_name: str, count: int = 1) -> None:
        key = (int(now // 60 * 60), outcome, reason, event_name)
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + count

    def drain(self) -> list[AcceptCount]:
        """The counts so far, which are then forgotten."""
        with self._lock:
            counts, self._counts = self._counts, {}
        return [AcceptCount(*key, count) for key, count in sorted(counts.items())]


class Metrics:
    """The counters, histograms and gauges pinbridge keeps."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.tally = AcceptTally()
        #: Reads the queue figures from the store at scrape time (set by the service).
        self.source: (
            Callable[[], Awaitable[tuple[list[DestinationStats], dict[str, int]]]] | None
        ) = None
        r = self.registry
        self.events = Counter(
            "pinbridge_events",
            "Input events by outcome (accepted, duplicate, rejected, ignored, dropped).",
            ["outcome"],
            registry=r,
        )
        self.dropped = Counter(
            "pinbridge_events_dropped",
            "Input events dropped before delivery, by reason (bot, consent, mapping).",
            ["reason"],
            registry=r,
        )
        self.received = Counter(
            "pinbridge_events_received",
            "Input events received, by Pinterest event name ('' when not transformable).",
            ["event_name"],
            registry=r,
        )
        self.outcomes = Counter(
            "pinbridge_event_outcomes",
            "Pinterest events by accept outcome, reason, destination and event name.",
            ["outcome", "reason", "destination", "event_name"],
            registry=r,
        )
        self.requests = Counter(
            "pinbridge_collector_requests",
            "Collector requests by endpoint and HTTP status.",
            ["endpoint", "status"],
            registry=r,
        )
        self.deliveries = Counter(
            "pinbridge_deliveries",
            "Delivery answers by destination, event name, outcome and HTTP status.",
            ["destination", "event_name", "outcome", "http_status"],
            registry=r,
        )
        self.batch_size = Histogram(
            "pinbridge_delivery_batch_size_events",
            "Events claimed per delivery round.",
            ["destination"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.event_latency = Histogram(
            "pinbridge_event_to_delivery_seconds",
            "Seconds from the event's own time to its delivery.",
            ["destination"],
            buckets=EVENT_LATENCY_BUCKETS,
            registry=r,
        )
        self.accept_latency = Histogram(
            "pinbridge_accept_to_delivery_seconds",
            "Seconds from acceptance to delivery.",
            ["destination"],
            buckets=ACCEPT_LATENCY_BUCKETS,
            registry=r,
        )
        gauges = {
            "queue": (
                "pinbridge_queue_depth_events",
                "Events waiting (due or not) per destination.",
            ),
            "retrying": (
                "pinbridge_retry_queue_depth_events",
                "Queued events that failed at least once and wait for a retry.",
            ),
            "in_flight": ("pinbridge_in_flight_events", "Events claimed and being sent."),
            "dead": ("pinbridge_dead_letters", "Dead letters kept (replayable)."),
            "dead_hour": (
                "pinbridge_dead_letters_last_hour",
                "Dead letters added in the last hour (status exits 3 when > 0).",
            ),
            "stopped": (
                "pinbridge_destination_stopped",
                "1 when Pinterest refused the destination's credentials.",
            ),
        }
        self.gauges = {
            key: Gauge(name, doc, ["destination"], registry=r)
            for key, (name, doc) in gauges.items()
        }

    def set_queue(self, stats: Sequence[DestinationStats], dead_last_hour: dict[str, int]) -> None:
        """Set the queue gauges from the store's figures (at scrape time)."""
        g = self.gauges
        for row in stats:
            name = row.destination
            g["queue"].labels(name).set(row.queued)
            g["retrying"].labels(name).set(row.retrying)
            g["in_flight"].labels(name).set(row.in_flight)
            g["dead"].labels(name).set(row.dead)
            g["dead_hour"].labels(name).set(dead_last_hour.get(name, 0))
            g["stopped"].labels(name).set(1 if row.paused_reason else 0)

    async def refresh(self) -> None:
        """Bring the gauges up to date (called before each scrape); see :attr:`source`."""
        if self.source is not None:
            stats, dead_last_hour = await self.source()
            self.set_queue(stats, dead_last_hour)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
