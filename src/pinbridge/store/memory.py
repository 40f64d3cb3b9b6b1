"""An in-memory store with the same contract as the SQLite one, for unit tests.

It keeps everything in dicts, answers at once, and records the name of every call in
``calls`` so that tests can assert which operations ran. It is not durable: never use it to
run pinbridge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pinbridge.store.base import (
    AcceptItem,
    Claimed,
    Completion,
    DeadLetter,
    DestinationStats,
)

__all__ = ["MemoryStore"]

_MAX_AGE = 7 * 24 * 3600


@dataclass
class _Row:
    id: int
    item: AcceptItem
    destination: str
    due_at: float
    state: str = "queued"
    attempts: int = 0
    lease_owner: str | None = None
    lease_until: float | None = None
    http_status: int | None = None
    message: str = ""
    warning: str = ""
    finished_at: float | None = None


class MemoryStore:
    """The store port in memory."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.attempts: list[tuple[int, str, int | None, str]] = []
        self._rows: dict[int, _Row] = {}
        self._dedup: dict[tuple[str, str], float] = {}
        self._paused: dict[str, str] = {}

    async def accept(
        self, items: Sequence[AcceptItem], *, now: float, dedup_window: float
    ) -> list[Literal["accepted", "duplicate"]]:
        self.calls.append("accept")
        answers: list[Literal["accepted", "duplicate"]] = []
        for item in items:
            key = (item.event_name, item.event_id)
            seen = self._dedup.get(key)
            if seen is not None and seen >= now - dedup_window:
                answers.append("duplicate")
                continue
            self._dedup[key] = now
            for destination in item.destinations:
                row = _Row(len(self._rows) + 1, item, destination, due_at=now)
                self._rows[row.id] = row
            answers.append("accepted")
        return answers

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
            (Claimed(r.id, r.item.payload, r.attempts, r.item.event_time + _MAX_AGE) for r in due),
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
                    delivered=sum(1 for r in rows if r.state == "delivered"),
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
        return [r.item.payload for r in delivered]

    async def prune(self, *, now: float, dedup_window: float) -> None:
        self._dedup = {k: v for k, v in self._dedup.items() if v >= now - dedup_window}

    async def aclose(self) -> None:
        self.calls.append("aclose")
