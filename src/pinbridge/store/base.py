"""The store port: what the accept path, the sender and the CLI need from a database.

Three implementations keep the same contract: :mod:`pinbridge.store.sqlite` (embedded
default), :mod:`pinbridge.store.memory` (a fake for unit tests, shipped in the package), and
PostgreSQL later. All methods are coroutines; implementations do their blocking I/O elsewhere
(SQLite on one writer thread).

Semantics every implementation keeps:

* :meth:`Store.accept` is one transaction: dedup on ``(event_name, event_id)`` within the
  window, event history, one outbox row per destination. When it returns, the accepted
  events are durable.
* :meth:`Store.claim` leases due rows of one destination; a lease that runs out makes the
  rows claimable again (a crashed sender's batch is taken over).
* :meth:`Store.complete` records one answer per claimed row, only while the lease is held.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Literal, Protocol

import msgspec

from pinbridge.identity import DEFAULT_MAX_PER_KIND
from pinbridge.signals import IdentitySignals

#: :meth:`Store.stats` counts the deliveries that finished delivered within this many seconds
#: (the delivered history is kept and grows without bound: a total would read all of it).
DELIVERED_WINDOW: Final = 3600.0

#: ``unmatched``: the event lacked Pinterest's identifier and its person's history had none.
Answer = Literal["accepted", "duplicate", "unmatched"]

__all__ = [
    "DELIVERED_WINDOW",
    "AcceptCount",
    "Answer",
    "CatalogProduct",
    "Claimed",
    "Completion",
    "DeadLetter",
    "DestinationStats",
    "FinishedDelivery",
    "ForgetReport",
    "HistoryAttempt",
    "HistoryDelivery",
    "HistoryEvent",
    "IdentityPolicy",
    "PendingEvent",
    "PendingInput",
    "SentEvent",
    "Store",
    "TimelinePoint",
]


class PendingEvent(msgspec.Struct, frozen=True):
    """One Pinterest event to keep and enqueue for the given destinations."""

    event_id: str
    event_name: str
    event_time: int
    payload: bytes
    destinations: tuple[str, ...]
    needs_identifier: bool = False
    #: It carries an email or phone digest and meets Pinterest's identifier rule: identity
    #: can add at most a click id (the store then decodes it only when a click fits).
    identified: bool = False
    #: ... and it carries a click id too: identity can add nothing.
    complete: bool = False


class PendingInput(msgspec.Struct, frozen=True):
    """One input event: what it became, what it tells about its person, and the input itself
    (PII removed) for the event history."""

    input: bytes
    events: tuple[PendingEvent, ...] = ()
    identity: IdentitySignals | None = None


class IdentityPolicy(msgspec.Struct, frozen=True):
    """How the accept transaction uses identity.

    Attributes:
        click_windows: seconds of click attribution per destination (absent: no click
            enrichment for it).
        ignore: identifier keys never used to stitch people.
        max_per_kind: the merge guard (see :mod:`pinbridge.identity`).
        enhanced_match: add the person's email / phone digests to events without either.
    """

    click_windows: dict[str, float] = {}
    ignore: frozenset[str] = frozenset()
    max_per_kind: dict[str, int] = msgspec.field(default_factory=lambda: dict(DEFAULT_MAX_PER_KIND))
    enhanced_match: bool = True


class Claimed(msgspec.Struct, frozen=True):
    """One leased outbox row: the payload to send and what the retry policy needs."""

    id: int
    payload: bytes
    attempts: int
    expires_at: float
    #: When the event was accepted (for the acceptance → delivery latency).
    accepted_at: float = 0.0
    #: The event's name and time, as in the payload (for the metrics, without decoding it).
    event_name: str = ""
    event_time: int = 0


class Completion(msgspec.Struct, frozen=True):
    """What to record for one claimed row.

    ``kind``: ``delivered``; ``retry`` (due again at ``due_at``); ``dead`` (a dead letter with
    ``message`` as reason); ``release`` (give the claim back untouched: destination stopped).
    ``outcome`` is Pinterest's classification of the answer, kept in the attempt log.
    """

    id: int
    kind: Literal["delivered", "retry", "dead", "release"]
    outcome: str
    http_status: int | None = None
    message: str = ""
    warning: str = ""
    due_at: float | None = None
    counted: bool = True


class DestinationStats(msgspec.Struct, frozen=True):
    """Queue figures of one destination.

    ``queued`` (including ``in_flight``: leased now, and ``retrying``: failed at least once)
    and ``next_due`` describe the queue as it is; ``delivered`` counts deliveries finished
    delivered in the last :data:`DELIVERED_WINDOW` seconds (not since the start: the
    history is never pruned, a total would read all of it; Prometheus' counters keep totals);
    ``dead`` counts the dead letters kept (replay and forget take them away).
    """

    destination: str
    queued: int
    in_flight: int
    retrying: int
    delivered: int
    dead: int
    next_due: float | None
    paused_reason: str | None = None


class ForgetReport(msgspec.Struct, frozen=True):
    """What ``forget`` removed."""

    persons: int = 0
    identifiers: int = 0
    clicks: int = 0
    events: int = 0
    undelivered: int = 0


class DeadLetter(msgspec.Struct, frozen=True):
    """An event Pinterest will not take as it is, with the reason."""

    id: int
    destination: str
    event_name: str
    event_id: str
    event_time: int
    http_status: int | None
    reason: str
    dead_at: float
    #: Attempts made before it died (0: refused before any request, e.g. expired at claim).
    attempts: int = 0


class Store(Protocol):
    """The port. See the module docstring for the guarantees."""

    async def accept(
        self,
        inputs: Sequence[PendingInput],
        *,
        now: float,
        dedup_window: float,
        identity: IdentityPolicy | None = None,
    ) -> list[list[Answer]]:
        """Stitch identity, deduplicate, enrich, keep and enqueue, in one transaction.

        One answer per event of each input. Without ``identity`` nothing is stitched.
        """
        ...

    async def claim(
        self, destination: str, *, owner: str, limit: int, now: float, lease_seconds: float
    ) -> list[Claimed]:
        """Lease up to ``limit`` due rows of a destination for ``owner``."""
        ...

    async def complete(self, owner: str, completions: Sequence[Completion], *, now: float) -> int:
        """Record answers for rows ``owner`` still holds; returns how many were recorded."""
        ...

    async def pause(self, destination: str, reason: str, *, now: float) -> None:
        """Stop a destination (Pinterest refused the credentials) until resumed."""
        ...

    async def resume(self, destination: str) -> None:
        """Let a paused destination send again."""
        ...

    async def paused(self) -> dict[str, str]:
        """Paused destinations and why."""
        ...

    async def stats(self, *, now: float) -> list[DestinationStats]:
        """Queue figures per destination (see :class:`DestinationStats`), read without
        going through the delivered history."""
        ...

    async def dead_letters(
        self,
        *,
        destination: str | None = None,
        since: float | None = None,
        reason: str | None = None,
        limit: int = 1000,
    ) -> list[DeadLetter]:
        """Dead letters matching all the given filters, oldest first."""
        ...

    async def replay(self, ids: Sequence[int], *, now: float) -> int:
        """Put dead letters back in the queue, due now; returns how many."""
        ...

    async def delivered_payloads(self, destination: str) -> list[bytes]:
        """Payloads delivered to a destination, in delivery order (tests, debugging)."""
        ...

    async def prune(
        self, *, now: float, dedup_window: float, identity_retention: float | None = None
    ) -> None:
        """Forget dedup keys older than the window, and people not seen for the retention."""
        ...

    async def attribution_rows(self, *, since: float, window: float) -> list[tuple[Any, ...]]:
        """Conversions accepted since ``since`` with their person's clicks made (first seen)
        within ``window`` before each, the click's time being its ``first_seen`` (see
        :func:`pinbridge.report.attribute`)."""
        ...

    async def forget(self, keys: Sequence[str], needles: Sequence[str]) -> ForgetReport:
        """Remove the people owning ``keys`` with everything of theirs, every event that holds
        one of ``needles`` (a digest in its payloads or kept input, or an exact ``userId``-like
        field of its kept input: see :func:`pinbridge.identity.person_keys`), and their email
        and phone digests from any other person's profile."""
        ...

    async def aclose(self) -> None:
        """Release the database."""
        ...

    # -- diagnostics (dashboard, `pinbridge quality`, `pinbridge catalog`) ------------------

    async def catalog_load(
        self, products: Sequence[CatalogProduct], *, now: float, replace: bool = True
    ) -> int:
        """Keep the catalog's products (replacing the previous catalog unless ``replace`` is
        false); returns how many were written."""
        ...

    async def catalog_known(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are in the catalog."""
        ...

    async def catalog_size(self) -> tuple[int, float | None]:
        """Products in the catalog and when it was last loaded (``None``: never)."""
        ...

    async def add_accept_counts(self, counts: Sequence[AcceptCount]) -> None:
        """Add the accept path's outcome counts (per minute) to the kept totals."""
        ...

    async def accept_counts(self, *, since: float) -> list[AcceptCount]:
        """Outcome counts of minutes from ``since`` on."""
        ...

    async def sent_events(self, *, since: float, limit: int) -> list[SentEvent]:
        """Deliveries of events accepted since ``since``, newest first, at most ``limit``."""
        ...

    async def finished_deliveries(self, *, since: float, limit: int) -> list[FinishedDelivery]:
        """Deliveries finished (delivered or dead) since ``since``, newest first, at most
        ``limit``, whenever their events were accepted."""
        ...

    async def timeline(self, *, since: float, bucket: float) -> list[TimelinePoint]:
        """Accepted events, finished deliveries and attempts per time bucket."""
        ...

    async def dead_letters_since(self, *, since: float) -> dict[str, int]:
        """Dead letters per destination that died since ``since``."""
        ...

    async def history(
        self, *, event_id: str, needle: bytes | None, limit: int
    ) -> list[HistoryEvent]:
        """Events with this ``event_id`` or whose payload contains ``needle``, newest first,
        each with its deliveries and Pinterest's answers."""
        ...


class CatalogProduct(msgspec.Struct, frozen=True):
    """One product of the catalog feed (only what diagnostics need)."""

    id: str
    title: str = ""
    price: str = ""
    availability: str = ""


class AcceptCount(msgspec.Struct, frozen=True):
    """How many inputs had one outcome in one minute (``minute``: unix time of its start)."""

    minute: int
    outcome: str
    reason: str
    event_name: str
    count: int


class SentEvent(msgspec.Struct, frozen=True):
    """One delivery row with the payload it carries (or carried)."""

    delivery_id: int
    destination: str
    event_name: str
    event_time: int
    accepted_at: float
    state: str
    finished_at: float | None
    http_status: int | None
    payload: bytes


class FinishedDelivery(msgspec.Struct, frozen=True):
    """A delivery that finished (``state``: delivered or dead), with its event's times."""

    destination: str
    state: str
    event_time: int
    accepted_at: float
    finished_at: float


class TimelinePoint(msgspec.Struct, frozen=True):
    """``count`` of ``series`` (accepted, delivered, dead, attempt:<outcome>) in the bucket
    starting at ``t``; ``label`` is the HTTP status for attempts."""

    t: float
    series: str
    label: str
    count: int


class HistoryAttempt(msgspec.Struct, frozen=True):
    """One answer Pinterest gave for a delivery."""

    at: float
    outcome: str
    http_status: int | None
    message: str


class HistoryDelivery(msgspec.Struct, frozen=True):
    """An event's delivery to one destination, with every answer."""

    id: int
    destination: str
    state: str
    attempts: int
    http_status: int | None
    message: str | None
    warning: str | None
    enrichment: bytes | None
    payload: bytes
    finished_at: float | None
    answers: list[HistoryAttempt] = []


class HistoryEvent(msgspec.Struct, frozen=True):
    """One accepted event: its input (PII removed), its payload, its deliveries."""

    id: int
    event_id: str
    event_name: str
    event_time: int
    accepted_at: float
    input: bytes
    payload: bytes
    deliveries: list[HistoryDelivery] = []
