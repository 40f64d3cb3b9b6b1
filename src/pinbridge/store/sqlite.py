"""The embedded store: SQLite through the standard library, on one writer thread.

Every operation is queued to a single thread that owns the connection. The thread takes
everything that has piled up, runs it in **one** transaction (each operation inside its own
savepoint, so one failure does not undo the others) and commits once: many requests, one
fsync (group commit). A caller's coroutine resumes only after that commit, so "accepted"
always means "on disk".

Durability, by ``synchronous`` (WAL mode in both cases):

* ``NORMAL`` (default): survives a crash of pinbridge (``kill -9``) and of the OS process
  tree; a power loss or kernel crash may lose the last commits.
* ``FULL``: also survives a power loss, at about one extra fsync per group commit.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from pinbridge.store.base import (
    AcceptItem,
    Claimed,
    Completion,
    DeadLetter,
    DestinationStats,
)
from pinbridge.store.sql import load_migrations, load_queries

__all__ = ["SYNCHRONOUS_MODES", "SqliteStore", "StoreError"]

SYNCHRONOUS_MODES: Final = ("NORMAL", "FULL")
#: Pinterest refuses events older than this; a delivery row expires with its event.
MAX_AGE_SECONDS: Final = 7 * 24 * 3600
_Q = load_queries("sqlite")
_T = TypeVar("_T")
_Op = tuple[Callable[..., Any], tuple[Any, ...], "Future[Any]"]


class StoreError(Exception):
    """The database failed; the original error is ``__cause__``."""


class SqliteStore:
    """The store port on one SQLite file.

    Args:
        path: database file (created with its folder when missing).
        synchronous: ``NORMAL`` or ``FULL`` (see the module docstring).
        max_group: most operations committed together.
    """

    def __init__(
        self, path: str | Path, *, synchronous: str = "NORMAL", max_group: int = 512
    ) -> None:
        mode = synchronous.upper()
        if mode not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._mode = mode
        self._max_group = max_group
        self._queue: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, name="pinbridge-sqlite", daemon=True)
        self._thread.start()
        self._ready.result()

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r}, synchronous={self._mode!r})"

    # -- the writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            conn = self._connect()
        except Exception as exc:
            self._ready.set_exception(StoreError(f"cannot open {self.path}: {exc}"))
            return
        self._ready.set_result(None)
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                group = [first]
                while len(group) < self._max_group:
                    try:
                        op = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if op is None:
                        self._queue.put(None)
                        break
                    group.append(op)
                self._commit_group(conn, group)
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self._mode}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 10000")
        migrate(conn)
        return conn

    def _commit_group(self, conn: sqlite3.Connection, group: list[_Op]) -> None:
        results: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, args, _ in group:
                conn.execute("SAVEPOINT op")
                try:
                    results.append((True, fn(conn, *args)))
                    conn.execute("RELEASE op")
                except Exception as exc:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    results.append((False, exc))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            error = StoreError(f"commit failed: {exc}")
            error.__cause__ = exc
            for _, _, future in group:
                future.set_exception(error)
            return
        for (ok, value), (_, _, future) in zip(results, group, strict=True):
            if ok:
                future.set_result(value)
            elif isinstance(value, sqlite3.Error):
                error = StoreError(str(value))
                error.__cause__ = value
                future.set_exception(error)
            else:
                future.set_exception(value)

    async def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        future: Future[_T] = Future()
        self._queue.put((fn, args, future))
        return await asyncio.wrap_future(future)

    # -- the port ---------------------------------------------------------------------------

    async def accept(
        self, items: Sequence[AcceptItem], *, now: float, dedup_window: float
    ) -> list[Literal["accepted", "duplicate"]]:
        return await self._call(_accept, items, now, dedup_window)

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
        rows = await self._call(_fetch, _Q["claim"], params)
        return sorted(
            (Claimed(id=r[0], attempts=r[1], expires_at=r[2], payload=r[3]) for r in rows),
            key=lambda c: c.id,
        )

    async def complete(self, owner: str, completions: Sequence[Completion], *, now: float) -> int:
        return await self._call(_complete, owner, completions, now)

    async def pause(self, destination: str, reason: str, *, now: float) -> None:
        params = {"name": destination, "reason": reason, "now": now}
        await self._call(_execute, _Q["pause_destination"], params)

    async def resume(self, destination: str) -> None:
        await self._call(_execute, _Q["resume_destination"], {"name": destination})

    async def paused(self) -> dict[str, str]:
        rows = await self._call(_fetch, _Q["destination_states"], {})
        return {name: reason for name, reason, _ in rows if reason}

    async def stats(self, *, now: float) -> list[DestinationStats]:
        rows = await self._call(_fetch, _Q["queue_stats"], {"now": now})
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
        rows = await self._call(_fetch, _Q["dead_letters"], params)
        return [DeadLetter(*row) for row in rows]

    async def replay(self, ids: Sequence[int], *, now: float) -> int:
        params = [{"id": i, "now": now} for i in ids]
        return await self._call(_execute_many, _Q["replay"], params)

    async def delivered_payloads(self, destination: str) -> list[bytes]:
        rows = await self._call(_fetch, _Q["delivered_payloads"], {"destination": destination})
        return [row[0] for row in rows]

    async def prune(self, *, now: float, dedup_window: float) -> None:
        await self._call(_execute, _Q["prune_dedup_keys"], {"cutoff": now - dedup_window})

    async def aclose(self) -> None:
        """Finish queued operations, then close the connection."""
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)


# -- operations, run on the writer thread inside the group's transaction ---------------------


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations the database lacks; returns the schema version."""
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    for number, script in load_migrations("sqlite"):
        if number > version:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _statements(script):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
                conn.execute("COMMIT")
            except sqlite3.Error:
                conn.execute("ROLLBACK")
                raise
            version = number
    return version


def _statements(script: str) -> list[str]:
    body = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def _accept(
    conn: sqlite3.Connection, items: Sequence[AcceptItem], now: float, window: float
) -> list[Literal["accepted", "duplicate"]]:
    answers: list[Literal["accepted", "duplicate"]] = []
    for item in items:
        key = {"event_name": item.event_name, "event_id": item.event_id}
        fresh = {**key, "now": now, "cutoff": now - window}
        if conn.execute(_Q["insert_dedup_key"], fresh).rowcount != 1:
            answers.append("duplicate")
            continue
        row = conn.execute(
            _Q["insert_event"],
            {
                **key,
                "event_time": item.event_time,
                "now": now,
                "input": item.input,
                "payload": item.payload,
            },
        ).lastrowid
        expires_at = item.event_time + MAX_AGE_SECONDS
        conn.executemany(
            _Q["insert_delivery"],
            [
                {"event_row": row, "destination": d, "now": now, "expires_at": expires_at}
                for d in item.destinations
            ],
        )
        answers.append("accepted")
    return answers


def _complete(
    conn: sqlite3.Connection, owner: str, completions: Sequence[Completion], now: float
) -> int:
    done = 0
    for c in completions:
        params: dict[str, Any] = {
            "id": c.id,
            "owner": owner,
            "now": now,
            "http_status": c.http_status,
            "message": c.message,
        }
        if c.kind == "delivered":
            cursor = conn.execute(_Q["mark_delivered"], {**params, "warning": c.warning})
        elif c.kind == "retry":
            cursor = conn.execute(_Q["mark_retry"], {**params, "due_at": c.due_at})
        elif c.kind == "dead":
            cursor = conn.execute(_Q["mark_dead"], {**params, "counted": int(c.counted)})
        else:
            cursor = conn.execute(_Q["release"], params)
        if cursor.rowcount == 1:
            done += 1
            if c.counted or c.kind == "release":
                conn.execute(_Q["insert_attempt"], {**params, "outcome": c.outcome})
    return done


def _fetch(conn: sqlite3.Connection, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    return conn.execute(sql, params).fetchall()


def _execute(conn: sqlite3.Connection, sql: str, params: dict[str, Any]) -> int:
    return conn.execute(sql, params).rowcount


def _execute_many(conn: sqlite3.Connection, sql: str, params: list[dict[str, Any]]) -> int:
    return sum(conn.execute(sql, p).rowcount for p in params)
