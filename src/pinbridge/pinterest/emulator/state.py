"""What an emulator remembers: recorded events, Pinterest-side dedup, rate limits and stats.

All in memory and bounded. Time always comes from the injected clock, so tests can move it.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from typing import Final

import msgspec

from pinbridge.pinterest.emulator.config import EmulatorConfig, FaultSettings
from pinbridge.pinterest.emulator.validation import EventCheck
from pinbridge.pinterest.schema import ConversionEvent

__all__ = ["EmulatorState", "RateLimiter", "RecordedEvent", "Stats"]


class RecordedEvent(msgspec.Struct, gc=False):
    """One processed event as the emulator recorded it, in arrival order.

    The event is kept as its JSON encoding, not as objects: a million live Structs would make
    every run of Python's cyclic garbage collector slow (measured: 2.8 times slower intake).
    """

    seq: int
    ad_account_id: str
    received_at: float
    duplicate: bool
    warning_message: str
    event: msgspec.Raw

    def decoded(self) -> ConversionEvent:
        """The recorded event as a Struct."""
        return _EVENT_DECODER.decode(self.event)


_EVENT_DECODER: Final = msgspec.json.Decoder(ConversionEvent)
_encode: Final = msgspec.json.encode


class Stats(msgspec.Struct):
    """Counters shown by ``GET /_emulator/stats``; test requests only count as requests."""

    received: int = 0
    processed: int = 0
    failed: int = 0
    failed_by_reason: dict[str, int] = msgspec.field(default_factory=dict)
    duplicates: int = 0
    requests_by_status: dict[str, int] = msgspec.field(default_factory=dict)
    test_requests: int = 0
    test_events_received: int = 0
    dropped_connections: int = 0
    recorded: int = 0


class RateLimiter:
    """A token bucket per key: ``capacity`` calls, refilled at ``capacity`` per ``period``
    seconds (per ad account and minute; per token and second for test calls).

    ``Retry-After`` is the time until one whole token is back: ``ceil((1 - tokens) / rate)``.
    """

    def __init__(self, capacity: int, clock: Callable[[], float], period: float = 60.0) -> None:
        self._capacity = float(capacity)
        self._rate = capacity / period
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, key: str) -> int | None:
        """Take one call for ``key``: ``None`` if allowed, else the seconds to wait."""
        if self._capacity <= 0:
            return None
        now = self._clock()
        tokens, last = self._buckets.get(key, (self._capacity, now))
        tokens = min(self._capacity, tokens + max(0.0, now - last) * self._rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return None
        self._buckets[key] = (tokens, now)
        return max(1, math.ceil((1.0 - tokens) / self._rate))

    def clear(self) -> None:
        """Refill every bucket."""
        self._buckets.clear()


class EmulatorState:
    """The mutable side of one emulator app."""

    def __init__(self, config: EmulatorConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self.clock = clock
        self.rate_limiter = RateLimiter(config.rate_limit_per_minute, clock)
        self.test_limiter = RateLimiter(config.test_requests_per_second, clock, period=1.0)
        self.faults: FaultSettings = config.faults
        self.burst_remaining = config.faults.burst_429
        self.stats = Stats()
        self._records: deque[RecordedEvent] = deque(maxlen=config.max_recorded_events)
        self._seen: dict[str, dict[tuple[str, str], float]] = {}
        self._seq = 0

    def reset(self) -> None:
        """Forget everything: events, dedup keys, stats, rate limits and run-time faults."""
        self.rate_limiter.clear()
        self.test_limiter.clear()
        self.set_faults(self.config.faults)
        self.stats = Stats()
        self._records.clear()
        self._seen.clear()

    def set_faults(self, faults: FaultSettings) -> None:
        """Replace the fault settings; a new ``burst_429`` restarts the burst."""
        self.faults = faults
        self.burst_remaining = faults.burst_429

    def count_status(self, status: int) -> None:
        """Count one answered request."""
        key = str(status)
        self.stats.requests_by_status[key] = self.stats.requests_by_status.get(key, 0) + 1

    def record(
        self,
        ad_account_id: str,
        events: Sequence[ConversionEvent],
        checks: Sequence[EventCheck],
        *,
        test: bool,
    ) -> None:
        """Count a validated batch and, unless ``test``, record and dedup its processed events."""
        stats = self.stats
        if test:
            stats.test_requests += 1
            stats.test_events_received += len(events)
            return
        now = self.clock()
        stats.received += len(events)
        seen = self._seen_for(ad_account_id, now)
        window = self.config.dedup_window_seconds
        failures: Counter[str] = Counter()
        duplicates = 0
        for event, check in zip(events, checks, strict=True):
            if check.reasons:
                failures.update(check.reasons)
                stats.failed += 1
                continue
            duplicate = False
            if event.event_id and event.event_name and event.action_source != "offline":
                key = (event.event_id, event.event_name)
                first = seen.get(key)
                if first is not None and now - first < window:
                    duplicate = True
                    duplicates += 1
                else:
                    seen.pop(key, None)
                    seen[key] = now
            self._seq += 1
            self._records.append(
                RecordedEvent(
                    self._seq,
                    ad_account_id,
                    now,
                    duplicate,
                    check.warning_message,
                    msgspec.Raw(_encode(event)),
                )
            )
        stats.processed += len(events) - sum(1 for c in checks if c.reasons)
        stats.duplicates += duplicates
        for reason, count in failures.items():
            stats.failed_by_reason[reason] = stats.failed_by_reason.get(reason, 0) + count
        self._trim(seen)

    def _seen_for(self, ad_account_id: str, now: float) -> dict[tuple[str, str], float]:
        """The account's dedup keys, expired ones dropped (keys are kept in first-seen order)."""
        seen = self._seen.setdefault(ad_account_id, {})
        window = self.config.dedup_window_seconds
        while seen:
            key, first = next(iter(seen.items()))
            if now - first < window:
                break
            del seen[key]
        return seen

    def _trim(self, seen: dict[tuple[str, str], float]) -> None:
        while len(seen) > self.config.max_recorded_events:
            del seen[next(iter(seen))]

    def recorded(
        self, ad_account_id: str | None = None, since: int = 0, limit: int | None = None
    ) -> list[RecordedEvent]:
        """Recorded events in arrival order, after sequence number ``since``."""
        out: list[RecordedEvent] = []
        for record in self._iter_after(since):
            if ad_account_id is None or record.ad_account_id == ad_account_id:
                out.append(record)
                if limit is not None and len(out) >= limit:
                    break
        return out

    def _iter_after(self, since: int) -> Iterator[RecordedEvent]:
        records = self._records
        if since <= 0 or not records:
            return iter(records)
        # Sequence numbers are contiguous within the deque: skip straight to ``since``.
        start = max(0, since - records[0].seq + 1)
        return itertools.islice(records, start, None)

    def snapshot(self) -> Stats:
        """The counters as of now."""
        self.stats.recorded = len(self._records)
        return self.stats
