"""The accept path: transform, route, deduplicate and enqueue a request's events durably.

Everything before the store is pure CPU; the store call is one transaction (committed in a
group with other requests'). A caller learns for each input whether it was ``accepted``,
a ``duplicate``, ``rejected`` (with field-level errors), or ``ignored`` (nothing to send:
``identify``, ``alias``, a dropped name, or no destination takes it).
"""

from __future__ import annotations

import traceback
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Literal

import msgspec
import structlog

from pinbridge.filters import TrafficFilter
from pinbridge.identity import satisfies_identifier_rule
from pinbridge.metrics import Metrics
from pinbridge.pinterest.schema import ConversionEvent
from pinbridge.problems import Problem
from pinbridge.redact import redact
from pinbridge.store.base import IdentityPolicy, PendingEvent, PendingInput, Store
from pinbridge.transform import Transformer
from pinbridge.validate import IDENTIFIER_RULE

__all__ = ["Acceptor", "DestinationRoute", "ItemResult"]

log = structlog.get_logger("pinbridge.accept")

Status = Literal["accepted", "duplicate", "rejected", "ignored", "dropped"]


_INTERNAL = Problem("", "this event could not be processed (an internal error, logged)")
_UNMATCHED = Problem(
    "user_data",
    f"{IDENTIFIER_RULE}; no earlier sighting of this person supplies one",
)


class DestinationRoute(msgspec.Struct, frozen=True):
    """A destination's name and the event names it takes (empty: all)."""

    name: str
    events: frozenset[str] = frozenset()


class ItemResult(msgspec.Struct, omit_defaults=True):
    """The answer for one input event, by its position in the request."""

    index: int
    status: Status
    event_ids: list[str] = []
    reason: str = ""
    errors: list[Problem] = []
    warnings: list[Problem] = []


class Acceptor:
    """Runs the accept path for batches of decoded input events.

    Args:
        transformer: the configured transform.
        store: where accepted events are kept.
        routes: the destinations and their event filters.
        dedup_window: seconds during which the same (event_name, event_id) is a duplicate.
        traffic_filter: drops bots and events without ads consent (default: both dropped).
        metrics: where outcomes are counted.
        identity: how people are stitched and events enriched (``None``: not at all).
    """

    def __init__(
        self,
        transformer: Transformer,
        store: Store,
        routes: Sequence[DestinationRoute],
        *,
        dedup_window: float,
        traffic_filter: TrafficFilter | None = None,
        metrics: Metrics | None = None,
        identity: IdentityPolicy | None = None,
    ) -> None:
        self._identity = identity
        self._filter = traffic_filter or TrafficFilter()
        self._metrics = metrics or Metrics()
        self._transform = transformer
        self._store = store
        self._routes = tuple(routes)
        self._window = dedup_window
        self._encode = msgspec.json.Encoder().encode

    async def accept(
        self, messages: Sequence[object], *, now: float, default_source: str = "web"
    ) -> list[ItemResult]:
        """Accept a batch; one result per message, in order. Durable when it returns."""
        results: list[ItemResult] = []
        pending: list[PendingInput] = []
        owners: list[ItemResult] = []
        counted: list[_Counted] = []
        for index, message in enumerate(messages):
            try:
                item = self._prepare(index, message, now, default_source)
            except Exception as exc:  # a bug must cost this event, not its batch (and no 500)
                _log_failure(exc, index)
                item = ItemResult(index, "rejected", errors=[_INTERNAL]), _Counted(), None
            result, count, kept = item
            results.append(result)
            counted.append(count)
            if kept is not None:
                pending.append(kept)
                owners.append(result)
        if pending:
            answers = await self._store.accept(
                pending, now=now, dedup_window=self._window, identity=self._identity
            )
            for result, answer in zip(owners, answers, strict=True):
                if "unmatched" in answer:
                    result.status, result.event_ids = "rejected", []
                    result.errors = [_UNMATCHED]
                elif answer:
                    # An input that fans out is accepted when any of its events is new.
                    result.status = "accepted" if "accepted" in answer else "duplicate"
        self._count(results, counted, now)
        return results

    def _prepare(
        self, index: int, message: object, now: float, default_source: str
    ) -> tuple[ItemResult, _Counted, PendingInput | None]:
        """One message's result, what metrics count of it, and what the store is to keep."""
        outcome = self._transform(message, now=int(now), default_source=default_source)
        if not outcome.ok:
            rejected = ItemResult(
                index, "rejected", errors=outcome.errors, warnings=outcome.warnings
            )
            return rejected, _Counted(), None
        result = ItemResult(index, "ignored", warnings=outcome.warnings)
        names = tuple(e.event_name for e in outcome.events)
        count = _Counted(names, "" if names or _no_event(message) else "mapping")
        identity = outcome.identity
        reason = (
            self._filter(message, outcome.events, identity.user_agent if identity else None)
            if outcome.events or identity is not None
            else None
        )
        if reason is not None:  # nothing of it is kept, not even its identity
            result.status, result.reason = "dropped", reason
            count.reason = reason.split(":", 1)[0]
            return result, count, None
        events = tuple(self._pending(outcome.events, outcome.needs_identifier))
        count.destinations = tuple(sorted({d for e in events for d in e.destinations}))
        if names and not events:
            count.reason = "no_destination"
        if not events and (identity is None or self._identity is None):
            return result, count, None
        result.event_ids = [e.event_id for e in events]
        kept = self._encode(redact(message)) if events else b""
        return result, count, PendingInput(input=kept, events=events, identity=identity)

    @property
    def metrics(self) -> Metrics:
        """Where outcomes are counted (its ``tally`` is flushed to the store by the caller)."""
        return self._metrics

    def _pending(
        self, events: Sequence[ConversionEvent], needs_identifier: bool
    ) -> Iterator[PendingEvent]:
        for event in events:
            destinations = tuple(
                r.name for r in self._routes if not r.events or event.event_name in r.events
            )
            if destinations:
                yield PendingEvent(
                    event_id=event.event_id,
                    event_name=event.event_name,
                    event_time=event.event_time,
                    payload=self._encode(event),
                    destinations=destinations,
                    needs_identifier=needs_identifier,
                    identified=_identified(event),
                    complete=bool(event.user_data.click_id) and _identified(event),
                )

    def _count(
        self, results: Sequence[ItemResult], counted: Sequence[_Counted], now: float
    ) -> None:
        """Count a request's outcomes: tallied first, then one increment per label set (a
        labelled counter costs microseconds per call; a batch of 100 has a handful)."""
        events: Counter[str] = Counter()
        received: Counter[str] = Counter()
        dropped: Counter[str] = Counter()
        tally: Counter[tuple[str, str, str]] = Counter()
        outcomes: Counter[tuple[str, str, str, str]] = Counter()
        for result, count in zip(results, counted, strict=True):
            status = result.status
            events[status] += 1
            first = count.names[0] if count.names else ""
            received[first] += 1
            if status == "dropped" or count.reason == "mapping":
                dropped[count.reason] += 1
            tally[status, count.reason, first] += 1
            for name in count.names or ("",):
                for destination in count.destinations or ("",):
                    outcomes[status, count.reason, destination, name] += 1
        metrics = self._metrics
        for outcome, n in events.items():
            metrics.events.labels(outcome).inc(n)
        for first, n in received.items():
            metrics.received.labels(first).inc(n)
        for reason, n in dropped.items():
            metrics.dropped.labels(reason).inc(n)
        for (outcome, reason, first), n in tally.items():
            metrics.tally.add(now, outcome, reason, first, n)
        for labels, n in outcomes.items():
            metrics.outcomes.labels(*labels).inc(n)


class _Counted:
    """What metrics need of one input: its Pinterest event names, destinations, and why it
    was dropped or ignored (bot, consent, mapping, no_destination; else '')."""

    __slots__ = ("destinations", "names", "reason")

    def __init__(self, names: tuple[str, ...] = (), reason: str = "") -> None:
        self.names = names
        self.reason = reason
        self.destinations: tuple[str, ...] = ()


def _identified(event: ConversionEvent) -> bool:
    """Whether identity can add at most a click id (see ``PendingEvent.identified``)."""
    user = event.user_data
    return bool((user.em or user.ph) and satisfies_identifier_rule(user))


def _no_event(message: object) -> bool:
    """Calls that never become a Pinterest event (identify, alias), unlike a dropped name."""
    return isinstance(message, dict) and message.get("type") in ("identify", "alias", "group")


def _log_failure(exc: Exception, index: int) -> None:
    """Log where an event failed, never its message: exception texts may quote its data."""
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}" if frame else "?"
    log.error("event_failed", index=index, error=type(exc).__name__, where=where)
