"""Prometheus metrics: one registry per running service, passed down, never global.

Names follow Prometheus conventions (``_total`` counters, base units). The dashboard and
``/metrics`` read the same registry.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    """The counters pinbridge keeps."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.events = Counter(
            "pinbridge_events",
            "Input events by outcome (accepted, duplicate, rejected, ignored, dropped).",
            ["outcome"],
            registry=self.registry,
        )
        self.dropped = Counter(
            "pinbridge_events_dropped",
            "Input events dropped before delivery, by reason (bot, consent).",
            ["reason"],
            registry=self.registry,
        )
        self.requests = Counter(
            "pinbridge_collector_requests",
            "Collector requests by endpoint and HTTP status.",
            ["endpoint", "status"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
