"""The sender: claims due events per destination, delivers them, records every outcome.

``concurrency`` loops per destination, each claiming under its own lease owner. Each round
waits for the ad account's rate limit, claims up to ``batch_size`` due events under a lease,
sends them through the Pinterest client, and turns each event's outcome into a store
completion:

=============  =====================================================================
outcome        what happens
=============  =====================================================================
processed      delivered (Pinterest's warning kept)
failed         dead letter with Pinterest's message (never retried)
retry          due again after exponential backoff with full jitter, honouring
               ``Retry-After``; a dead letter instead when that would pass the
               event's expiry (event time + 7 days)
stopped        the claim is given back untouched and the destination paused with
               the reason (401/403, or a wrong base URL: 3xx/404/405/410); it is
               probed again every ``paused_probe_seconds``
=============  =====================================================================

Every request takes a token of the ad account's rate limit first (and waits when there is
none), including the halves below; the first request's wait is taken before the claim, so no
lease is held while waiting for it.

**Lease.** A round uses at most ``LEASE_USE`` (90 %) of ``lease_seconds``: a request (a split
half, a part cut by size) starts only when, after its rate-limit wait, it can end within that
(the client's timeout); otherwise the round sends no more, and its events not sent are
retried later with backoff. So the outcomes are recorded while the lease holds, and another
loop does not take over and send the same events while this one still sends them.

**Splitting.** Pinterest's 400 names only the first error and refuses the whole request (a 413
refuses its size), so a request refused as a whole is split in halves, depth first, until the
refused events stand alone: a one-event request refused is that event's own failure (a dead
letter), the others are delivered. This is decided per request: a claim the client cut into
several requests by size has each refused request of two events or more split, whatever the
others got (an event set aside unsent, as oversized, changes nothing). A round spends at
most ``SPLIT_REQUESTS_PER_LEVEL`` (4) requests per halving level of a batch on splitting it
(40 for 1,000 events, 10 levels: enough to isolate two refused events); events still
undecided when that is spent are retried later, with backoff. A 401/403/3xx/404/405/410,
408, 429 or 5xx, or no answer, on one part ends the round: the parts not yet sent are not
sent and get the same outcome (retried or paused), and so do the events of a refused request
the round can no longer split.

**Retry-After.** A 429, or a 503 with ``Retry-After``, holds the whole ad account until the
time it names (a 429 without it: ``RATE_LIMITED_HOLD_SECONDS``; at most ``MAX_HOLD_SECONDS``):
no loop of this process sends for any destination on it, and a round in flight sends no
more requests (its unsent events are retried after the hold). The hold is this process's
own; other processes learn of it by their own 429.

**Probes.** A paused destination is probed with its first live event. Expired rows met on
the way (the head of the queue after a pause of days) become dead letters in bulk, unsent,
and do not use up the probe: a round that met only expired rows lets the next round probe.

Delivery is at least once: a sender killed mid-batch leaves a lease that runs out, and the
batch is sent again; Pinterest deduplicates by ``event_id``.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import math
import os
import random
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import structlog
from msgspec.structs import replace
from prometheus_client import Histogram

from pinbridge.backoff import EXPIRED_REASON, LEASE_USE, RetryPolicy
from pinbridge.metrics import Metrics
from pinbridge.pinterest.client import Outcome, PinterestClient
from pinbridge.ratelimit import RateLimit, TokenBucket
from pinbridge.store.base import Claimed, Completion, Store

__all__ = ["DestinationRuntime", "Sender", "observe_all"]

log = structlog.get_logger("pinbridge.delivery")


#: How often the shared pause state is read from the store, per destination.
PAUSE_CHECK_SECONDS = 1.0
#: Requests a round may spend splitting a refused batch, per halving level of the batch.
SPLIT_REQUESTS_PER_LEVEL = 4
#: Claims a probe round may make while it meets only expired rows, and how each grows.
PROBE_CLAIMS = 16
PROBE_GROWTH = 4
#: Seconds an ad account is held after a 429 without ``Retry-After``.
RATE_LIMITED_HOLD_SECONDS = 10.0
#: The longest hold an ad account takes from ``Retry-After`` (a bogus header must not stall it).
MAX_HOLD_SECONDS = 3600.0
#: Answers to a whole request that refuse it as a whole without naming every refused event.
SPLIT_STATUSES = frozenset({400, 413})


@dataclass
class DestinationRuntime:
    """A destination as the sender drives it."""

    name: str
    ad_account_id: str
    client: PinterestClient
    test: bool = False
    #: The ad account's budget: this process's own, or shared in the database (PostgreSQL).
    bucket: RateLimit = field(default_factory=lambda: TokenBucket(5000))


@dataclass
class _Loop:
    """One loop's own state: its lease owner, and a rate-limit token taken before a claim
    that found nothing (kept for the next round, so that an idle loop takes no more)."""

    owner: str
    paid: bool = False


class Sender:
    """Delivers queued events for several destinations until stopped.

    Args:
        store: the store port.
        destinations: the destinations to serve.
        policy: the retry policy.
        batch_size: events per claim (at most 1,000).
        lease_seconds: how long a claim is held before others may take it over.
        poll_interval: seconds to sleep when nothing is due.
        paused_probe_seconds: how often a paused destination is tried again.
        clock: seconds since the epoch (``time.time``); tests pass their own.
        rng: randomness for the jitter.
        metrics: where answers, batch sizes and latencies are counted (``None``: nowhere).
        concurrency: rounds in flight per destination: while one batch waits for Pinterest's
            answer, the next is claimed and sent (claims are leased, so they never overlap).
        linger: seconds a loop waits after a round that did not fill a batch, so that under a
            steady trickle events go out in fewer, fuller requests (Pinterest's calls per
            minute are limited per ad account); a full batch is followed at once by the next.
    """

    def __init__(
        self,
        *,
        store: Store,
        destinations: Sequence[DestinationRuntime],
        policy: RetryPolicy,
        clock: Callable[[], float],
        batch_size: int = 1000,
        lease_seconds: float = 120.0,
        poll_interval: float = 0.2,
        paused_probe_seconds: float = 300.0,
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
        concurrency: int = 2,
        linger: float = 0.0,
    ) -> None:
        self._store = store
        self._destinations = {d.name: d for d in destinations}
        self._policy = policy
        self._clock = clock
        self._batch_size = batch_size
        self._lease = lease_seconds
        self._poll = poll_interval
        self._probe = paused_probe_seconds
        self._rng = rng or random.Random()
        self._metrics = metrics
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._wake = asyncio.Event()
        self._paused_until: dict[str, float] = {}
        self._pause_checked: dict[str, tuple[float, bool]] = {}
        self._concurrency = concurrency
        self._linger = linger
        self._hold_until: dict[str, float] = {}
        #: Per ad account: no request before this time (``clock``), after a 429 or a 503
        #: with ``Retry-After``; shared by every destination on the account and every loop.
        self._account_hold: dict[tuple[str, bool], float] = {}
        self._loops: dict[str, _Loop] = {}  # for run_once called without a loop

    @property
    def destinations(self) -> Mapping[str, DestinationRuntime]:
        return self._destinations

    def wake(self) -> None:
        """Tell idle loops that new events were accepted."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve every destination until ``stop`` is set."""
        async with asyncio.TaskGroup() as group:
            for name in self._destinations:
                for number in range(self._concurrency):
                    loop = _Loop(f"{self.owner}:{name}:{number}")
                    group.create_task(self._loop(name, loop, stop))

    async def _loop(self, name: str, loop: _Loop, stop: asyncio.Event) -> None:
        while not stop.is_set():
            hold = self._hold_until.get(name, 0.0) - time.monotonic()
            if hold > 0:  # lingering after a partial batch (a stop ends the wait)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), hold)
                continue
            try:
                sent = await self.run_once(name, loop=loop)
            except Exception:  # a store or programming error must not kill the loop
                log.exception("delivery round failed", destination=name)
                sent = 0
            if sent == 0:
                self._wake.clear()
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait(
                    {waiter, stopper}, timeout=self._poll, return_when=asyncio.FIRST_COMPLETED
                )
                waiter.cancel()
                stopper.cancel()
            elif sent < self._batch_size and self._linger > 0:
                # A partial batch: every loop of this destination lets the next one fill up.
                self._hold_until[name] = time.monotonic() + self._linger

    async def run_once(self, name: str, *, loop: _Loop | None = None) -> int:
        """One round for one destination; returns how many events were sent.

        The rate limit's wait for the round's first request is taken before the claim, so a
        lease is not held while waiting; the round stops sending before its lease runs out.
        """
        destination = self._destinations[name]
        loop = loop or self._loops.setdefault(name, _Loop(self.owner))
        now = self._clock()
        if self.held(destination, now) > 0:
            return 0
        probing = await self._probing(name, now)
        if probing is None:
            return 0
        if not loop.paid:
            wait = await destination.bucket.reserve(now)
            loop.paid = True
            if wait > 0:
                await asyncio.sleep(wait)
                now = self._clock()
        deadline = time.monotonic() + self._lease * LEASE_USE
        if probing:
            claimed, expired = await self._claim_probe(name, loop.owner, now)
            if not claimed and expired:
                # Only expired rows were met: no request was made, so the probe is not spent.
                self._paused_until.pop(name, None)
        else:
            claimed, expired = await self._claim_live(name, loop.owner, self._batch_size, now)
        if not claimed:
            return expired
        loop.paid = False  # the first request takes it
        outcomes = await self._send(destination, [c.payload for c in claimed], deadline)
        now = self._clock()
        completions = [self._completion(c, o, now) for c, o in zip(claimed, outcomes, strict=True)]
        await self._store.complete(loop.owner, completions, now=now)
        await self._update_pause(name, outcomes, now, probing)
        self._log(name, outcomes)
        self._observe(name, claimed, outcomes, now)
        return expired + len(claimed)

    async def _claim_live(
        self, name: str, owner: str, limit: int, now: float
    ) -> tuple[list[Claimed], int]:
        """Claim up to ``limit`` due rows; those past their expiry become dead letters at once
        (unsent). Returns the live rows and how many expired."""
        claimed = await self._store.claim(
            name, owner=owner, limit=limit, now=now, lease_seconds=self._lease
        )
        live = [c for c in claimed if c.expires_at > now]
        if len(live) < len(claimed):
            dead = [
                Completion(id=c.id, kind="dead", outcome="expired", message=EXPIRED_REASON)
                for c in claimed
                if c.expires_at <= now
            ]
            await self._store.complete(owner, dead, now=now)
        return live, len(claimed) - len(live)

    async def _claim_probe(self, name: str, owner: str, now: float) -> tuple[list[Claimed], int]:
        """The rows to probe a paused destination with: the first live row, and any live row
        claimed with it. Expired rows met on the way (the head of the queue after a long
        pause) become dead letters in bulk; claims grow from 1 row by ``PROBE_GROWTH`` up
        to ``batch_size``, at most ``PROBE_CLAIMS`` per round. Returns the live rows and how
        many expired."""
        limit, expired = 1, 0
        for _ in range(PROBE_CLAIMS):
            live, dead = await self._claim_live(name, owner, limit, now)
            expired += dead
            if live or not dead:  # something to send, or nothing more is due
                return live, expired
            limit = min(self._batch_size, limit * PROBE_GROWTH)
        return [], expired

    def _observe(
        self, name: str, claimed: Sequence[Claimed], outcomes: Sequence[Outcome], now: float
    ) -> None:
        """Count each answer and, for delivered events, the two latencies."""
        metrics = self._metrics
        if metrics is None:
            return
        metrics.batch_size.labels(name).observe(len(claimed))
        counts: dict[tuple[str, str, int | None], int] = {}
        event_ages: list[float] = []
        accept_ages: list[float] = []
        for item, outcome in zip(claimed, outcomes, strict=True):
            key = (item.event_name, outcome.kind, outcome.http_status)
            counts[key] = counts.get(key, 0) + 1
            if outcome.kind == "processed":
                event_ages.append(max(0.0, now - item.event_time))
                if item.accepted_at:
                    accept_ages.append(max(0.0, now - item.accepted_at))
        for (event_name, kind, status), count in counts.items():
            label = "" if status is None else str(status)
            metrics.deliveries.labels(name, event_name, kind, label).inc(count)
        observe_all(metrics.event_latency.labels(name), event_ages)
        observe_all(metrics.accept_latency.labels(name), accept_ages)

    async def _send(
        self, destination: DestinationRuntime, payloads: Sequence[bytes], deadline: float
    ) -> list[Outcome]:
        """Send one round's events, splitting a refused request (the rules are in the module
        doc); one outcome per payload, in order. The first request's rate-limit token was
        taken before the claim; no request starts that could not end by ``deadline``
        (``time.monotonic``)."""
        levels = math.ceil(math.log2(len(payloads))) if len(payloads) > 1 else 0
        split = _Split(
            destination,
            budget=SPLIT_REQUESTS_PER_LEVEL * levels,
            clock=self._clock,
            deadline=deadline,
            held=lambda: self.held(destination, self._clock()),
            hold=lambda seconds: self._hold(destination, seconds),
        )
        return await split.send(payloads)

    def held(self, destination: DestinationRuntime, now: float) -> float:
        """Seconds the destination's ad account is still held after Pinterest asked to wait
        (0: not held). Test-mode calls have their own limit (10 per second per app), so a
        test destination's 429 holds the account's test destinations only, and a live one's
        the live ones."""
        key = (destination.ad_account_id, destination.test)
        return max(0.0, self._account_hold.get(key, 0.0) - now)

    def _hold(self, destination: DestinationRuntime, seconds: float) -> None:
        key = (destination.ad_account_id, destination.test)
        until = self._clock() + min(seconds, MAX_HOLD_SECONDS)
        if until > self._account_hold.get(key, 0.0):
            self._account_hold[key] = until
            log.warning(
                "ad account held",
                ad_account_id=destination.ad_account_id,
                test=destination.test,
                seconds=seconds,
            )

    async def _probing(self, name: str, now: float) -> bool | None:
        """False: send normally; True: send one event to probe; None: stay paused.

        The pause state is shared through the store (another process may have paused the
        destination); it is read again at most every ``PAUSE_CHECK_SECONDS``.
        """
        checked, was_paused = self._pause_checked.get(name, (-PAUSE_CHECK_SECONDS, False))
        if now - checked >= PAUSE_CHECK_SECONDS:
            was_paused = name in await self._store.paused()
            self._pause_checked[name] = (now, was_paused)
        if not was_paused:
            return False
        until = self._paused_until.get(name, 0.0)
        if now < until:
            return None
        self._paused_until[name] = now + self._probe
        return True

    async def _update_pause(
        self, name: str, outcomes: Sequence[Outcome], now: float, probing: bool
    ) -> None:
        stopped = next((o for o in outcomes if o.kind == "stopped"), None)
        if stopped is not None:
            reason = stopped.message
            await self._store.pause(name, reason, now=now)
            self._paused_until[name] = now + self._probe
            self._pause_checked[name] = (now, True)
            log.warning("destination stopped", destination=name, reason=reason)
        elif probing and any(o.kind in ("processed", "failed") for o in outcomes):
            # Pinterest looked at the events, so it took the credentials.
            await self._store.resume(name)
            self._paused_until.pop(name, None)
            self._pause_checked[name] = (now, False)
            log.info("destination resumed", destination=name)

    def _completion(self, claimed: Claimed, outcome: Outcome, now: float) -> Completion:
        if outcome.kind == "processed":  # the usual case, built at once
            return Completion(
                id=claimed.id,
                kind="delivered",
                outcome="processed",
                http_status=outcome.http_status,
                message=outcome.message,
                warning=outcome.warning,
            )
        answer = Completion(
            id=claimed.id,
            kind="dead",
            outcome=outcome.kind,
            http_status=outcome.http_status,
            message=outcome.message,
        )
        if outcome.kind == "failed":
            return answer
        if outcome.kind == "stopped":
            return replace(answer, kind="release", counted=False)
        decision = self._policy.decide(
            attempt=claimed.attempts + 1,
            now=now,
            expires_at=claimed.expires_at,
            rng=self._rng,
            retry_after=outcome.retry_after,
        )
        if decision.give_up is not None:
            return replace(answer, message=f"{decision.give_up} (last answer: {outcome.message})")
        return replace(answer, kind="retry", due_at=decision.due_at)

    def _log(self, name: str, outcomes: Sequence[Outcome]) -> None:
        """One line per round: outcomes by kind and, when not all were processed, the HTTP
        statuses (``-``: no answer) and the first reason (a connection error, Pinterest's
        message), so a log shows why events wait or fail."""
        counts: dict[str, int] = {}
        statuses: dict[str, int] = {}
        reason = ""
        for outcome in outcomes:
            counts[outcome.kind] = counts.get(outcome.kind, 0) + 1
            if outcome.kind != "processed":
                status = str(outcome.http_status or "-")
                statuses[status] = statuses.get(status, 0) + 1
                reason = reason or outcome.message[:200]
        if statuses:
            log.warning("batch sent", destination=name, **counts, statuses=statuses, reason=reason)
        else:
            log.info("batch sent", destination=name, **counts)


class _Split:
    """One round's requests: splits refused ones within a budget, stops at an ending answer."""

    def __init__(
        self,
        destination: DestinationRuntime,
        *,
        budget: int,
        clock: Callable[[], float],
        deadline: float,
        held: Callable[[], float],
        hold: Callable[[float], None],
    ) -> None:
        self._destination = destination
        self._budget = budget
        self._clock = clock
        self._deadline = deadline
        self._held = held
        self._hold = hold
        self._paid = True  # the first request's token was taken before the claim
        self._ended: Outcome | None = None

    async def _pace(self) -> Outcome | None:
        """Before each request: take a token of the rate limit (and wait for it), unless the
        request could not end before the lease does; then end the round instead."""
        if self._paid:
            self._paid = False
            return None
        timeout = self._destination.client.timeout
        wait = 0.0
        if time.monotonic() + timeout <= self._deadline:
            wait = await self._destination.bucket.reserve(self._clock())
        if time.monotonic() + wait + timeout > self._deadline:
            log.warning("round stopped before its lease ends", destination=self._destination.name)
            self._ended = Outcome(
                "retry",
                message="not sent: the round stopped before its lease ran out; sent again later",
            )
            return self._ended
        if wait > 0:
            await asyncio.sleep(wait)
        return None

    async def send(self, payloads: Sequence[bytes]) -> list[Outcome]:
        wait = self._held() if self._ended is None else 0.0
        if wait > 0:  # another round of the ad account was told to wait meanwhile
            message = f"not sent: the ad account is held {wait:.0f} s more (Retry-After)"
            self._ended = Outcome("retry", message=message, retry_after=wait)
        if self._ended is not None:
            return [self._ended] * len(payloads)
        destination = self._destination
        sent = await destination.client.send_requests(
            destination.ad_account_id, payloads, test=destination.test, pace=self._pace
        )
        outcomes = list(sent.outcomes)
        ending = next((o for o in outcomes if _ends_round(o)), None)
        if ending is not None and self._ended is None:
            if _holds_account(ending):
                self._hold(ending.retry_after or RATE_LIMITED_HOLD_SECONDS)
            self._ended = Outcome(
                ending.kind,
                message=f"not sent: an earlier request of this round got: {ending.message}",
                retry_after=ending.retry_after,
            )
        # Each request on its own: one refused as a whole is split, whatever the others got.
        for request in sent.requests:
            if len(request) < 2 or not all(_refused(outcomes[i]) for i in request):
                continue
            parts = await self._split([payloads[i] for i in request], outcomes[request[0]])
            for index, outcome in zip(request, parts, strict=True):
                outcomes[index] = outcome
        return outcomes

    async def _split(self, payloads: Sequence[bytes], refusal: Outcome) -> list[Outcome]:
        """Send the halves of a request refused as a whole (within the budget)."""
        if self._ended is not None:  # the round ended: not decided, sent again later
            return [self._ended] * len(payloads)
        if self._budget < 2:
            destination = self._destination.name
            log.warning("split budget spent", destination=destination, events=len(payloads))
            message = (
                "not decided: this round spent its requests isolating events Pinterest "
                f"refused; sent again later (the last answer: {refusal.message})"
            )
            return [Outcome("retry", message=message)] * len(payloads)
        self._budget -= 2
        middle = len(payloads) // 2
        first = await self.send(payloads[:middle])
        return first + await self.send(payloads[middle:])


def _refused(outcome: Outcome) -> bool:
    """Refused with the whole request that carried it (400, 413), not for itself."""
    return outcome.kind == "failed" and outcome.http_status in SPLIT_STATUSES


def _holds_account(outcome: Outcome) -> bool:
    """A 429, or a 503 with ``Retry-After``: the whole ad account waits, not only its events."""
    status = outcome.http_status
    return status == 429 or (status == 503 and outcome.retry_after is not None)


def _ends_round(outcome: Outcome) -> bool:
    """A destination-level or transient answer (or none): no more requests this round."""
    if outcome.kind == "stopped":
        return True
    status = outcome.http_status
    return outcome.kind == "retry" and (status is None or not 200 <= status < 300)


def observe_all(histogram: Histogram, values: Sequence[float]) -> None:
    """``histogram.observe(v)`` for every value, with one bucket update per bucket.

    prometheus_client has no bulk observe, and ``observe`` takes two locks per call (about
    4 µs per delivered event for the two latency histograms). This counts the values per
    bucket first (the bucket of ``v`` is the first upper bound ``>= v``, as in ``observe``),
    then adds each count once. It relies on the histogram's private fields; when they are
    not there (another version of the library), it falls back to ``observe``.
    """
    if not values:
        return
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for value in values:
            histogram.observe(value)
        return
    counts = [0] * len(bounds)
    for value in values:
        counts[bisect.bisect_left(bounds, value)] += 1
    total.inc(sum(values))
    for bucket, count in zip(buckets, counts, strict=True):
        if count:
            bucket.inc(count)
