"""An in-memory store with the same contract as the SQLite one, for unit tests.

It keeps everything in dicts, answers at once, and records the name of every call in
``calls`` so that tests can assert which operations ran. It is not durable: never use it to
run pinbridge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from pinbridge.identity import (
    Click,
    Profile,
    forget_digests,
    identifying_digests,
    input_names,
    merge_profiles,
    split_needles,
)
from pinbridge.store.base import (
    DELIVERED_WINDOW,
    AcceptCount,
    Answer,
    CatalogProduct,
    Claimed,
    Completion,
    DeadLetter,
    DestinationStats,
    FinishedDelivery,
    ForgetReport,
    HistoryAttempt,
    HistoryDelivery,
    HistoryEvent,
    IdentityPolicy,
    PendingEvent,
    PendingInput,
    SentEvent,
    TimelinePoint,
)
from pinbridge.store.enrich import accept_input

__all__ = ["MemoryStore"]

_MAX_AGE = 7 * 24 * 3600
_CONVERSIONS = frozenset({"checkout", "lead", "signup", "add_to_cart"})


@dataclass
class _Row:
    id: int
    item: PendingEvent
    destination: str
    due_at: float
    payload: bytes
    person: int | None = None
    accepted_at: float = 0.0
    state: str = "queued"
    attempts: int = 0
    lease_owner: str | None = None
    lease_until: float | None = None
    http_status: int | None = None
    message: str = ""
    warning: str = ""
    finished_at: float | None = None
    input: bytes = b""
    enrichment: bytes | None = None


class MemoryStore:
    """The store port in memory."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.attempts: list[tuple[int, str, int | None, str]] = []
        self._rows: dict[int, _Row] = {}
        self._dedup: dict[tuple[str, str], float] = {}
        self._paused: dict[str, str] = {}
        self.identity = MemoryIdentity()
        self._answers: dict[int, list[HistoryAttempt]] = {}
        self._catalog: dict[str, CatalogProduct] = {}
        self._catalog_loaded: float | None = None
        self._counts: dict[tuple[int, str, str, str], int] = {}

    async def accept(
        self,
        inputs: Sequence[PendingInput],
        *,
        now: float,
        dedup_window: float,
        identity: IdentityPolicy | None = None,
    ) -> list[list[Answer]]:
        self.calls.append("accept")
        return [
            accept_input(
                pending,
                identity,
                self.identity,
                now,
                _MemoryEvents(self, pending.input, now, dedup_window),
            )
            for pending in inputs
        ]

    def _take_key(self, event: PendingEvent, now: float, dedup_window: float) -> bool:
        key = (event.event_name, event.event_id)
        seen = self._dedup.get(key)
        if seen is not None and seen >= now - dedup_window:
            return False
        self._dedup[key] = now
        return True

    def _insert(
        self,
        event: PendingEvent,
        person: int | None,
        enriched: dict[str, tuple[bytes, bytes]],
        now: float,
        kept_input: bytes,
    ) -> None:
        for destination in event.destinations:
            payload = enriched[destination][0] if destination in enriched else event.payload
            enrichment = enriched[destination][1] if destination in enriched else None
            row = _Row(
                len(self._rows) + 1,
                event,
                destination,
                due_at=now,
                payload=payload,
                accepted_at=now,
            )
            row.person = person
            row.enrichment = enrichment
            row.input = kept_input
            self._rows[row.id] = row

    async def claim(
        self, destination: str, *, owner: str, limit: int, now: float, lease_seconds: float
    ) -> list[Claimed]:
        self.calls.append("claim")
        due = sorted(
            (
                r
                for r in self._rows.values()
                if r.destination == destination
                and r.state == "queued"
                and r.due_at <= now
                and (r.lease_until is None or r.lease_until < now)
            ),
            key=lambda r: (r.due_at, r.id),
        )[:limit]
        for row in due:
            row.lease_owner, row.lease_until = owner, now + lease_seconds
        return sorted(
            (
                Claimed(
                    r.id,
                    r.payload,
                    r.attempts,
                    r.item.event_time + _MAX_AGE,
                    r.accepted_at,
                    r.item.event_name,
                    r.item.event_time,
                )
                for r in due
            ),
            key=lambda c: c.id,
        )

    async def complete(self, owner: str, completions: Sequence[Completion], *, now: float) -> int:
        self.calls.append("complete")
        done = 0
        for c in completions:
            row = self._rows.get(c.id)
            if row is None or row.lease_owner != owner or row.state != "queued":
                continue
            done += 1
            row.lease_owner = row.lease_until = None
            row.http_status, row.message = c.http_status, c.message
            if c.kind != "release" and c.counted:
                row.attempts += 1
            if c.kind == "delivered":
                row.state, row.warning, row.finished_at = "delivered", c.warning, now
            elif c.kind == "retry":
                row.due_at = c.due_at if c.due_at is not None else now
            elif c.kind == "dead":
                row.state, row.finished_at = "dead", now
            if c.counted or c.kind == "release":
                self.attempts.append((c.id, c.outcome, c.http_status, c.message))
                self._answers.setdefault(c.id, []).append(
                    HistoryAttempt(now, c.outcome, c.http_status, c.message)
                )
        return done

    async def pause(self, destination: str, reason: str, *, now: float) -> None:
        self.calls.append("pause")
        self._paused[destination] = reason

    async def resume(self, destination: str) -> None:
        self.calls.append("resume")
        self._paused.pop(destination, None)

    async def paused(self) -> dict[str, str]:
        return dict(self._paused)

    async def stats(self, *, now: float) -> list[DestinationStats]:
        names = sorted({r.destination for r in self._rows.values()})
        result = []
        for name in names:
            rows = [r for r in self._rows.values() if r.destination == name]
            queued = [r for r in rows if r.state == "queued"]
            result.append(
                DestinationStats(
                    destination=name,
                    queued=len(queued),
                    in_flight=sum(1 for r in queued if (r.lease_until or 0) >= now),
                    retrying=sum(1 for r in queued if r.attempts > 0),
                    delivered=sum(
                        1
                        for r in rows
                        if r.state == "delivered"
                        and (r.finished_at or 0.0) >= now - DELIVERED_WINDOW
                    ),
                    dead=sum(1 for r in rows if r.state == "dead"),
                    next_due=min((r.due_at for r in queued), default=None),
                    paused_reason=self._paused.get(name),
                )
            )
        return result

    async def dead_letters(
        self,
        *,
        destination: str | None = None,
        since: float | None = None,
        reason: str | None = None,
        limit: int = 1000,
    ) -> list[DeadLetter]:
        found = [
            DeadLetter(
                r.id,
                r.destination,
                r.item.event_name,
                r.item.event_id,
                r.item.event_time,
                r.http_status,
                r.message,
                r.finished_at or 0.0,
                r.attempts,
            )
            for r in sorted(self._rows.values(), key=lambda r: r.id)
            if r.state == "dead"
            and (destination is None or r.destination == destination)
            and (since is None or (r.finished_at or 0.0) >= since)
            and (reason is None or reason.lower() in r.message.lower())
        ]
        return found[:limit]

    async def replay(self, ids: Sequence[int], *, now: float) -> int:
        self.calls.append("replay")
        count = 0
        for i in ids:
            row = self._rows.get(i)
            if row is not None and row.state == "dead":
                row.state, row.attempts, row.due_at, row.finished_at = "queued", 0, now, None
                count += 1
        return count

    async def delivered_payloads(self, destination: str) -> list[bytes]:
        rows = [r for r in self._rows.values() if r.destination == destination]
        delivered = sorted(
            (r for r in rows if r.state == "delivered"), key=lambda r: (r.finished_at, r.id)
        )
        return [r.payload for r in delivered]

    async def prune(
        self, *, now: float, dedup_window: float, identity_retention: float | None = None
    ) -> None:
        self._dedup = {k: v for k, v in self._dedup.items() if v >= now - dedup_window}
        if identity_retention is not None:
            for person, (seen, _) in list(self.identity.persons.items()):
                if seen < now - identity_retention:
                    self.identity.remove(person)

    async def attribution_rows(self, *, since: float, window: float) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        seen_events: set[tuple[str, str]] = set()
        for row in sorted(self._rows.values(), key=lambda r: r.id):
            key = (row.item.event_name, row.item.event_id)
            if key in seen_events or row.item.event_name not in _CONVERSIONS:
                continue
            seen_events.add(key)
            time = row.item.event_time
            if row.accepted_at < since:
                continue
            clicks: list[Click | None] = [
                c
                for c in (self.identity.clicks(row.person) if row.person is not None else [])
                if time - window <= c.first_seen <= time + 300
            ]
            for click in clicks or [None]:
                rows.append(
                    (
                        row.id,
                        row.item.event_name,
                        time,
                        row.item.payload,
                        click.click_id if click else None,
                        click.first_seen if click else None,
                        msgspec.json.encode(click.utm) if click else None,
                    )
                )
        return rows

    async def forget(self, keys: Sequence[str], needles: Sequence[str]) -> ForgetReport:
        self.calls.append("forget")
        identity = self.identity
        persons = set(identity.persons_of(keys).values())
        owned = [k for k, (owner, _, _) in identity.keys.items() if owner in persons]
        clicks = sum(len(identity.click_map.get(p, {})) for p in persons)
        digests, fields = split_needles(needles)
        digest_bytes = [d.encode() for d in digests]
        doomed = [
            r
            for r in self._rows.values()
            if r.person in persons
            or any(d in r.payload or d in r.item.payload or d in r.input for d in digest_bytes)
            or input_names(r.input, fields)
        ]
        for row in doomed:
            del self._rows[row.id]
        for person in persons:
            identity.remove(person)
        forgotten = identifying_digests([*keys, *owned])
        for _, profile in identity.persons.values():
            forget_digests(profile, forgotten)
        return ForgetReport(
            persons=len(persons),
            identifiers=len(owned),
            clicks=clicks,
            events=len({(r.item.event_name, r.item.event_id) for r in doomed}),
            undelivered=sum(1 for r in doomed if r.state == "queued"),
        )

    async def aclose(self) -> None:
        self.calls.append("aclose")

    # -- diagnostics ------------------------------------------------------------------------

    async def catalog_load(
        self, products: Sequence[CatalogProduct], *, now: float, replace: bool = True
    ) -> int:
        self.calls.append("catalog_load")
        if replace:
            self._catalog.clear()
        self._catalog.update((p.id, p) for p in products)
        self._catalog_loaded = now
        return len(products)

    async def catalog_known(self, ids: Sequence[str]) -> set[str]:
        return {i for i in ids if i in self._catalog}

    async def catalog_size(self) -> tuple[int, float | None]:
        return len(self._catalog), self._catalog_loaded

    async def add_accept_counts(self, counts: Sequence[AcceptCount]) -> None:
        for c in counts:
            key = (c.minute, c.outcome, c.reason, c.event_name)
            self._counts[key] = self._counts.get(key, 0) + c.count

    async def accept_counts(self, *, since: float) -> list[AcceptCount]:
        return [
            AcceptCount(*key, count)
            for key, count in sorted(self._counts.items())
            if key[0] >= since
        ]

    async def sent_events(self, *, since: float, limit: int) -> list[SentEvent]:
        rows = sorted(self._rows.values(), key=lambda r: -r.id)
        return [
            SentEvent(
                r.id,
                r.destination,
                r.item.event_name,
                r.item.event_time,
                r.accepted_at,
                r.state,
                r.finished_at,
                r.http_status,
                r.payload,
            )
            for r in rows
            if r.accepted_at >= since
        ][:limit]

    async def finished_deliveries(self, *, since: float, limit: int) -> list[FinishedDelivery]:
        finished = [
            FinishedDelivery(
                r.destination, r.state, r.item.event_time, r.accepted_at, r.finished_at
            )
            for r in self._rows.values()
            if r.state != "queued" and r.finished_at is not None and r.finished_at >= since
        ]
        return sorted(finished, key=lambda f: -f.finished_at)[:limit]

    async def timeline(self, *, since: float, bucket: float) -> list[TimelinePoint]:
        counts: dict[tuple[float, str, str], int] = {}

        def add(at: float | None, series: str, label: str = "") -> None:
            if at is not None and at >= since:
                key = (at // bucket * bucket, series, label)
                counts[key] = counts.get(key, 0) + 1

        events = {}
        for row in self._rows.values():
            events[(row.item.event_name, row.item.event_id)] = row.accepted_at
            if row.state != "queued":
                add(row.finished_at, row.state)
            for answer in self._answers.get(row.id, []):
                status = "" if answer.http_status is None else str(answer.http_status)
                add(answer.at, f"attempt:{answer.outcome}", status)
        for accepted_at in events.values():
            add(accepted_at, "accepted")
        return [TimelinePoint(t, s, label, n) for (t, s, label), n in sorted(counts.items())]

    async def dead_letters_since(self, *, since: float) -> dict[str, int]:
        found: dict[str, int] = {}
        for row in self._rows.values():
            if row.state == "dead" and (row.finished_at or 0.0) >= since:
                found[row.destination] = found.get(row.destination, 0) + 1
        return found

    async def history(
        self, *, event_id: str, needle: bytes | None, limit: int
    ) -> list[HistoryEvent]:
        grouped: dict[tuple[str, str], list[_Row]] = {}
        for row in sorted(self._rows.values(), key=lambda r: -r.id):
            item = row.item
            if item.event_id == event_id or (needle is not None and needle in item.payload):
                grouped.setdefault((item.event_name, item.event_id), []).append(row)
        found = []
        for rows in list(grouped.values())[:limit]:
            first = min(rows, key=lambda r: r.id)
            deliveries = [
                HistoryDelivery(
                    r.id,
                    r.destination,
                    r.state,
                    r.attempts,
                    r.http_status,
                    r.message,
                    r.warning,
                    r.enrichment,
                    r.payload,
                    r.finished_at,
                    answers=list(self._answers.get(r.id, [])),
                )
                for r in sorted(rows, key=lambda r: r.id)
            ]
            item = first.item
            found.append(
                HistoryEvent(
                    first.id,
                    item.event_id,
                    item.event_name,
                    item.event_time,
                    first.accepted_at,
                    first.input,
                    item.payload,
                    deliveries=deliveries,
                )
            )
        return found


class MemoryIdentity:
    """:class:`pinbridge.identity.IdentityTables` in dicts."""

    def __init__(self) -> None:
        self.keys: dict[str, tuple[int, float, float]] = {}
        self.persons: dict[int, tuple[float, Profile]] = {}
        self.click_map: dict[int, dict[str, Click]] = {}
        self._next = 1

    def remove(self, person: int) -> None:
        """Delete a person with its identifiers and clicks."""
        self.keys = {k: v for k, v in self.keys.items() if v[0] != person}
        self.click_map.pop(person, None)
        self.persons.pop(person, None)

    def persons_of(self, keys: Sequence[str]) -> dict[str, int]:
        return {k: self.keys[k][0] for k in keys if k in self.keys}

    def kind_counts(self, person: int) -> dict[str, int]:
        counts: dict[str, int] = {}
        for key, (owner, _, _) in self.keys.items():
            if owner == person:
                kind = key.partition(":")[0]
                counts[kind] = counts.get(kind, 0) + 1
        return counts

    def new_person(self, now: float) -> int:
        person, self._next = self._next, self._next + 1
        self.persons[person] = (now, Profile())
        return person

    def merge(self, into: int, other: int, now: float) -> None:
        for key, (owner, first, last) in list(self.keys.items()):
            if owner == other:
                self.keys[key] = (into, first, last)
        for click in self.click_map.pop(other, {}).values():
            self.add_click(into, click)
        merged = merge_profiles(self.profile(into), self.profile(other))
        del self.persons[other]
        self.save_profile(into, merged, now)

    def attach(self, person: int, keys: Sequence[str], now: float) -> None:
        for key in keys:
            owner, first, _ = self.keys.get(key, (person, now, now))
            if owner == person:
                self.keys[key] = (person, first, now)

    def add_click(self, person: int, click: Click) -> None:
        """Keep a click sighting as the SQL stores do: the click counts from its first
        sighting (the earliest, whatever the order they arrive in), with the first landing
        page and campaign kept, and its last sighting."""
        clicks = self.click_map.setdefault(person, {})
        old = clicks.get(click.click_id)
        if old is None:
            clicks[click.click_id] = click
            return
        clicks[click.click_id] = msgspec.structs.replace(
            old,
            first_seen=min(old.first_seen, click.first_seen),
            last_seen=max(old.last_seen, click.last_seen),
            landing_url=old.landing_url or click.landing_url,
        )

    def clicks(self, person: int) -> list[Click]:
        return sorted(self.click_map.get(person, {}).values(), key=lambda c: c.last_seen)

    def profile(self, person: int) -> Profile:
        return msgspec.convert(msgspec.to_builtins(self.persons[person][1]), Profile)

    def save_profile(self, person: int, profile: Profile, now: float) -> None:
        self.persons[person] = (now, profile)


class _MemoryEvents:
    """:class:`pinbridge.store.enrich.EventRows` of the in-memory store."""

    def __init__(self, store: MemoryStore, kept_input: bytes, now: float, window: float) -> None:
        self._store = store
        self._input = kept_input
        self._now = now
        self._window = window

    def take_key(self, event: PendingEvent) -> bool:
        return self._store._take_key(event, self._now, self._window)

    def give_back_key(self, event: PendingEvent) -> None:
        self._store._dedup.pop((event.event_name, event.event_id), None)

    def insert(
        self, event: PendingEvent, person: int | None, enriched: dict[str, tuple[bytes, bytes]]
    ) -> None:
        self._store._insert(event, person, enriched, self._now, self._input)
