"""What the SQLite and PostgreSQL stores share: the port methods that are one named query
plus a conversion of its rows.

A concrete store says how to run a named query (:meth:`SqlStore._rows` for reads,
:meth:`_change` / :meth:`_change_many` inside a write transaction) and a claim's two
statements (:meth:`_claim_rows`); the queries themselves have the same names in ``sqlite.sql``
and ``postgres.sql``. What differs between the databases (accept, complete, forget, the
catalog load, history) stays in each store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import msgspec

from pinbridge.identity import Profile, forget_digests
from pinbridge.store.base import (
    DELIVERED_WINDOW,
    AcceptCount,
    Claimed,
    DeadLetter,
    DestinationStats,
    FinishedDelivery,
    PendingEvent,
    PendingInput,
    SentEvent,
    TimelinePoint,
)

__all__ = ["EventParams", "SqlStore", "forget_in_profiles", "profiles_holding"]

#: How long after its event time Pinterest still takes an event (and a delivery waits).
MAX_AGE_SECONDS: Final = 7 * 24 * 3600


class SqlStore:
    """Port methods common to the SQL stores, on four query hooks."""

    async def _rows(self, name: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Rows of a read-only named query."""
        raise NotImplementedError

    async def _change(self, name: str, params: dict[str, Any]) -> int:
        """Run a writing named query; returns the rows it changed."""
        raise NotImplementedError

    async def _change_many(self, name: str, params: Sequence[dict[str, Any]]) -> int:
        """Run a writing named query once per parameter set, in one transaction."""
        raise NotImplementedError

    async def _claim_rows(self, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Rows of the ``claim`` query, leased by ``claim_lease`` in the same transaction."""
        raise NotImplementedError

    async def claim(
        self, destination: str, *, owner: str, limit: int, now: float, lease_seconds: float
    ) -> list[Claimed]:
        params = {
            "destination": destination,
            "owner": owner,
            "limit": limit,
            "now": now,
            "lease_until": now + lease_seconds,
        }
        rows = await self._claim_rows(params)
        rows.sort()  # by id, which is unique
        return [
            Claimed(
                id=r[0],
                attempts=r[1],
                expires_at=r[2],
                payload=r[3],
                accepted_at=r[4],
                event_name=r[5],
                event_time=r[6],
            )
            for r in rows
        ]

    async def pause(self, destination: str, reason: str, *, now: float) -> None:
        await self._change("pause_destination", {"name": destination, "reason": reason, "now": now})

    async def resume(self, destination: str) -> None:
        await self._change("resume_destination", {"name": destination})

    async def paused(self) -> dict[str, str]:
        rows = await self._rows("destination_states", {})
        return {name: reason for name, reason, _ in rows if reason}

    async def stats(self, *, now: float) -> list[DestinationStats]:
        params = {"now": now, "since": now - DELIVERED_WINDOW}
        rows = await self._rows("queue_stats", params)
        paused = await self.paused()
        return [
            DestinationStats(
                destination=r[0],
                queued=r[1] or 0,
                in_flight=r[2] or 0,
                retrying=r[3] or 0,
                delivered=r[4] or 0,
                dead=r[5] or 0,
                next_due=r[6],
                paused_reason=paused.get(r[0]),
            )
            for r in rows
        ]

    async def dead_letters(
        self,
        *,
        destination: str | None = None,
        since: float | None = None,
        reason: str | None = None,
        limit: int = 1000,
    ) -> list[DeadLetter]:
        params = {"destination": destination, "since": since, "reason": reason, "limit": limit}
        return [DeadLetter(*row) for row in await self._rows("dead_letters", params)]

    async def replay(self, ids: Sequence[int], *, now: float) -> int:
        return await self._change_many("replay", [{"id": i, "now": now} for i in ids])

    async def delivered_payloads(self, destination: str) -> list[bytes]:
        rows = await self._rows("delivered_payloads", {"destination": destination})
        return [row[0] for row in rows]

    async def prune(
        self, *, now: float, dedup_window: float, identity_retention: float | None = None
    ) -> None:
        await self._change("prune_dedup_keys", {"cutoff": now - dedup_window})
        if identity_retention is not None:
            await self._change("prune_persons", {"cutoff": now - identity_retention})

    async def attribution_rows(self, *, since: float, window: float) -> list[tuple[Any, ...]]:
        return await self._rows("attribution", {"since": since, "window": window})

    async def catalog_size(self) -> tuple[int, float | None]:
        rows = await self._rows("catalog_size", {})
        return int(rows[0][0]), rows[0][1]

    async def add_accept_counts(self, counts: Sequence[AcceptCount]) -> None:
        params = [msgspec.structs.asdict(c) for c in counts]
        if params:
            await self._change_many("add_accept_count", params)

    async def accept_counts(self, *, since: float) -> list[AcceptCount]:
        return [AcceptCount(*row) for row in await self._rows("accept_counts", {"since": since})]

    async def sent_events(self, *, since: float, limit: int) -> list[SentEvent]:
        rows = await self._rows("sent_events", {"since": since, "limit": limit})
        return [SentEvent(*row) for row in rows]

    async def finished_deliveries(self, *, since: float, limit: int) -> list[FinishedDelivery]:
        rows = await self._rows("finished_deliveries", {"since": since, "limit": limit})
        return [FinishedDelivery(*row) for row in rows]

    async def timeline(self, *, since: float, bucket: float) -> list[TimelinePoint]:
        rows = await self._rows("timeline", {"since": since, "bucket": float(bucket)})
        return [TimelinePoint(float(r[0]), r[1], r[2], r[3]) for r in rows]

    async def dead_letters_since(self, *, since: float) -> dict[str, int]:
        rows = await self._rows("dead_letters_since", {"since": since})
        return {name: count for name, count in rows if count}


class EventParams:
    """The parameters of one input's event-side statements (``insert_dedup_key``,
    ``delete_dedup_key``, ``insert_event``, ``insert_delivery``), the same in both SQL stores;
    each store's :class:`pinbridge.store.enrich.EventRows` runs them its own way."""

    def __init__(self, pending: PendingInput, now: float, window: float) -> None:
        self._pending = pending
        self._now = now
        self._cutoff = now - window

    def key(self, event: PendingEvent, *, taking: bool = True) -> dict[str, Any]:
        params: dict[str, Any] = {"event_name": event.event_name, "event_id": event.event_id}
        if taking:
            params.update(now=self._now, cutoff=self._cutoff)
        return params

    def event(self, event: PendingEvent, person: int | None) -> dict[str, Any]:
        return {
            "event_name": event.event_name,
            "event_id": event.event_id,
            "event_time": event.event_time,
            "now": self._now,
            "input": self._pending.input,
            "payload": event.payload,
            "person_id": person,
        }

    def deliveries(
        self, row: int | None, event: PendingEvent, enriched: dict[str, tuple[bytes, bytes]]
    ) -> list[dict[str, Any]]:
        none = (None, None)
        return [
            {
                "event_row": row,
                "destination": d,
                "now": self._now,
                "expires_at": event.event_time + MAX_AGE_SECONDS,
                "payload": enriched.get(d, none)[0],
                "enrichment": enriched.get(d, none)[1],
            }
            for d in event.destinations
        ]


def profiles_holding(
    conn: Any, queries: Mapping[str, Any], digests: Iterable[str], *, from_person: int = 0
) -> dict[int, Any]:
    """People (id ``from_person`` and up) whose profile holds one of the digests somewhere,
    with that profile; on a DB-API connection of either SQL store (``queries``: its named
    queries). Only reads: it may run before the ``forget`` transaction's first write."""
    found: dict[int, Any] = {}
    for digest in digests:
        params = {"digest": digest.encode(), "from_id": from_person}
        found.update(conn.execute(queries["forget_profiles"], params).fetchall())
    return found


def forget_in_profiles(
    conn: Any, queries: Mapping[str, Any], digests: frozenset[str], profiles: Mapping[int, Any]
) -> None:
    """Remove the digests from those ``profiles`` (person → profile as stored, from
    :func:`profiles_holding`), inside the ``forget`` transaction."""
    for person, raw in profiles.items():
        profile = _decode_profile(raw)
        if forget_digests(profile, digests):
            encoded = msgspec.json.encode(profile)
            conn.execute(queries["forget_set_profile"], {"person": person, "profile": encoded})


_decode_profile = msgspec.json.Decoder(Profile).decode
