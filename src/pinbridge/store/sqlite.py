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
import functools
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, NamedTuple, TypeVar

import msgspec

from pinbridge.errors import StoreError
from pinbridge.identity import (
    Click,
    Profile,
    identifying_digests,
    input_names,
    merge_profiles,
    split_needles,
)
from pinbridge.store.base import (
    Answer,
    CatalogProduct,
    Completion,
    ForgetReport,
    HistoryAttempt,
    HistoryDelivery,
    HistoryEvent,
    IdentityPolicy,
    PendingEvent,
    PendingInput,
)
from pinbridge.store.enrich import accept_input
from pinbridge.store.sql import load_migrations, load_queries
from pinbridge.store.sqlbase import (
    EventParams,
    SqlStore,
    forget_in_profiles,
    profiles_holding,
)

__all__ = ["SYNCHRONOUS_MODES", "SqliteStore", "StoreError"]

SYNCHRONOUS_MODES: Final = ("NORMAL", "FULL")
#: Event rows ``forget`` deletes per write transaction.
FORGET_CHUNK: Final = 2000
#: Pinterest refuses events older than this; a delivery row expires with its event.
_Q = load_queries("sqlite")
_T = TypeVar("_T")
_Op = tuple[Callable[..., Any], tuple[Any, ...], "Future[Any]"]
_decode_profile = msgspec.json.Decoder(Profile).decode
_encode_ids = msgspec.json.Encoder().encode


class SqliteStore(SqlStore):
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
        # Reads go to their own connection (WAL lets it read beside the writer), so that
        # status pages and pause checks never wait behind a group commit.
        self._reader = self._open_reader()
        self._reader_lock = threading.Lock()
        # The sender's pause check (once a second per destination) has a connection and a
        # thread of its own: no diagnostics read (a /metrics scrape, a dashboard page, waiting
        # for the reader above or filling asyncio's default threads) can hold it up.
        self._control_thread = ThreadPoolExecutor(1, thread_name_prefix="pinbridge-sqlite-pause")
        self._control = self._control_thread.submit(self._open_reader).result()

    def _open_reader(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 10000")
        return conn

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

    async def _read(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        def run() -> list[tuple[Any, ...]]:
            with self._reader_lock:
                try:
                    return self._reader.execute(sql, params).fetchall()
                except sqlite3.Error as exc:
                    raise StoreError(str(exc)) from exc

        return await asyncio.to_thread(run)

    async def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        future: Future[_T] = Future()
        self._queue.put((fn, args, future))
        return await asyncio.wrap_future(future)

    # -- the port ---------------------------------------------------------------------------

    async def _rows(self, name: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return await self._read(_Q[name], params)

    async def _change(self, name: str, params: dict[str, Any]) -> int:
        return await self._call(_execute, _Q[name], params)

    async def _change_many(self, name: str, params: Sequence[dict[str, Any]]) -> int:
        return await self._call(_execute_many, _Q[name], list(params))

    async def accept(
        self,
        inputs: Sequence[PendingInput],
        *,
        now: float,
        dedup_window: float,
        identity: IdentityPolicy | None = None,
    ) -> list[list[Answer]]:
        return await self._call(_accept, inputs, now, dedup_window, identity)

    async def _claim_rows(self, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return await self._call(_claim, params)

    async def complete(self, owner: str, completions: Sequence[Completion], *, now: float) -> int:
        return await self._call(_complete, owner, completions, now)

    async def forget(self, keys: Sequence[str], needles: Sequence[str]) -> ForgetReport:
        """Forget in three steps, so that the writer (and every accept) never waits for a
        full-table scan: the scans on a read connection of their own, outside any write
        transaction; the rows found deleted by id, :data:`FORGET_CHUNK` at a time, each its
        own short write; then one short write that finds the people again, takes the events
        accepted since the scan (rows from its boundary on, and the people's by index) and
        cleans the profiles."""
        scan = await asyncio.to_thread(self._forget_scan, keys, needles)
        events = undelivered = 0
        for start in range(0, len(scan.rows), FORGET_CHUNK):
            chunk = scan.rows[start : start + FORGET_CHUNK]
            deleted, queued = await self._call(_forget_delete, chunk)
            events, undelivered = events + deleted, undelivered + queued
        report, deleted, queued = await self._call(_forget_finish, keys, needles, scan)
        return msgspec.structs.replace(
            report, events=events + deleted, undelivered=undelivered + queued
        )

    def _forget_scan(self, keys: Sequence[str], needles: Sequence[str]) -> _ForgetScan:
        conn = self._open_reader()
        try:
            return _forget_scan(conn, keys, needles)
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from exc
        finally:
            conn.close()

    async def paused(self) -> dict[str, str]:
        def run() -> list[tuple[Any, ...]]:
            try:
                return self._control.execute(_Q["destination_states"]).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(str(exc)) from exc

        loop = asyncio.get_running_loop()
        rows = await loop.run_in_executor(self._control_thread, run)
        return {name: reason for name, reason, _ in rows if reason}

    async def aclose(self) -> None:
        """Finish queued operations, then close the connections."""
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)
        with self._reader_lock:
            self._reader.close()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._control_thread, self._control.close)
        self._control_thread.shutdown()

    # -- diagnostics ------------------------------------------------------------------------

    async def _read_with(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run ``fn(connection, *args)`` on the read connection (never the writer thread)."""

        def run() -> _T:
            with self._reader_lock:
                try:
                    return fn(self._reader, *args)
                except sqlite3.Error as exc:
                    raise StoreError(str(exc)) from exc

        return await asyncio.to_thread(run)

    async def catalog_load(
        self, products: Sequence[CatalogProduct], *, now: float, replace: bool = True
    ) -> int:
        return await self._call(_catalog_load, products, now, replace)

    async def catalog_known(self, ids: Sequence[str]) -> set[str]:
        return await self._read_with(_catalog_known, ids)

    async def history(
        self, *, event_id: str, needle: bytes | None, limit: int
    ) -> list[HistoryEvent]:
        return await self._read_with(_history, event_id, needle, limit)


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
    conn: sqlite3.Connection,
    inputs: Sequence[PendingInput],
    now: float,
    window: float,
    policy: IdentityPolicy | None,
) -> list[list[Answer]]:
    tables = _IdentitySql(conn)
    return [
        accept_input(pending, policy, tables, now, _Events(conn, pending, now, window))
        for pending in inputs
    ]


class _Events(EventParams):
    """:class:`pinbridge.store.enrich.EventRows` on the transaction's connection."""

    def __init__(
        self, conn: sqlite3.Connection, pending: PendingInput, now: float, window: float
    ) -> None:
        super().__init__(pending, now, window)
        self._conn = conn

    def take_key(self, event: PendingEvent) -> bool:
        return bool(self._conn.execute(_Q["insert_dedup_key"], self.key(event)).rowcount == 1)

    def give_back_key(self, event: PendingEvent) -> None:
        self._conn.execute(_Q["delete_dedup_key"], self.key(event, taking=False))

    def insert(
        self, event: PendingEvent, person: int | None, enriched: dict[str, tuple[bytes, bytes]]
    ) -> None:
        row = self._conn.execute(_Q["insert_event"], self.event(event, person)).lastrowid
        self._conn.executemany(_Q["insert_delivery"], self.deliveries(row, event, enriched))


@functools.lru_cache(maxsize=64)
def _persons_sql(count: int) -> str:
    """The persons of ``count`` identifier keys, with their profiles."""
    marks = ",".join("?" * count)
    return (
        "SELECT i.key, i.person_id, p.profile FROM identifiers i"
        f" LEFT JOIN persons p ON p.id = i.person_id WHERE i.key IN ({marks})"
    )


class _IdentitySql:
    """:class:`pinbridge.identity.IdentityTables` on the transaction's connection.

    Profiles are read with the identifiers that lead to them and kept for the rest of the
    ``_accept`` call: the writer holds the transaction (``BEGIN IMMEDIATE``) until then, so no
    other process can change them; the cache dies with the call.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._profiles: dict[int, Profile | bytes | None] = {}

    def persons_of(self, keys: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        profiles = self._profiles
        for key, person, profile in self._conn.execute(_persons_sql(len(keys)), keys):
            found[key] = person
            if person not in profiles:
                profiles[person] = profile
        return found

    def kind_counts(self, person: int) -> dict[str, int]:
        return dict(self._conn.execute(_Q["kind_counts"], {"person": person}).fetchall())

    def new_person(self, now: float) -> int:
        row = self._conn.execute(_Q["new_person"], {"now": now}).lastrowid
        assert row is not None
        self._profiles[row] = Profile()
        return row

    def merge(self, into: int, other: int, now: float) -> None:
        params = {"into": into, "other": other}
        merged = merge_profiles(self.profile(into), self.profile(other))
        for name in ("merge_identifiers", "merge_clicks", "merge_events"):
            self._conn.execute(_Q[name], params)
        self._conn.execute(_Q["delete_person"], {"person": other})
        self._profiles.pop(other, None)
        self.save_profile(into, merged, now)

    def attach(self, person: int, keys: Sequence[str], now: float) -> None:
        self._conn.executemany(
            _Q["attach_identifier"], [{"key": k, "person": person, "now": now} for k in keys]
        )

    def add_click(self, person: int, click: Click) -> None:
        self._conn.execute(
            _Q["add_click"],
            {
                "person": person,
                "click_id": click.click_id,
                "first_seen": click.first_seen,
                "last_seen": click.last_seen,
                "landing_url": click.landing_url,
                "utm": msgspec.json.encode(click.utm),
            },
        )

    def clicks(self, person: int) -> list[Click]:
        rows = self._conn.execute(_Q["clicks"], {"person": person}).fetchall()
        return [Click(r[0], r[1], r[2], r[3], msgspec.json.decode(r[4])) for r in rows]

    def profile(self, person: int) -> Profile:
        if person in self._profiles:
            cached = self._profiles[person]
            if isinstance(cached, Profile):
                return cached
        else:
            row = self._conn.execute(_Q["profile"], {"person": person}).fetchone()
            cached = row[0] if row else None
        profile = _decode_profile(cached) if cached is not None else Profile()
        self._profiles[person] = profile
        return profile

    def save_profile(self, person: int, profile: Profile, now: float) -> None:
        self._conn.execute(
            _Q["save_profile"],
            {"person": person, "profile": msgspec.json.encode(profile), "now": now},
        )
        self._profiles[person] = profile


class _ForgetScan(NamedTuple):
    """What ``forget``'s read-only scan found, for the short write transactions after it."""

    rows: list[int]  # matching event rows below ``boundary``
    boundary: int  # the newest event row when scanned: it and newer are checked at the end
    digests: frozenset[str]  # the email and phone digests looked for in profiles
    profiles: list[int]  # people below ``person_boundary`` whose profile held one of them
    person_boundary: int


def _forget_scan(
    conn: sqlite3.Connection, keys: Sequence[str], needles: Sequence[str]
) -> _ForgetScan:
    """The full-table scans of ``forget``, on a read connection (WAL: beside the writer,
    holding no lock that an accept waits for), in one read transaction (one snapshot)."""
    conn.execute("BEGIN")
    try:
        boundary = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
        person_boundary = conn.execute("SELECT coalesce(max(id), 0) FROM persons").fetchone()[0]
        persons, owned = _forget_persons(conn, keys)
        digests, fields = split_needles(needles)
        rows = _forget_rows(conn, persons, digests, fields, from_id=0)
        forgotten = identifying_digests([*keys, *owned])
        profiles = profiles_holding(conn, _Q, forgotten)
    finally:
        conn.execute("COMMIT")
    return _ForgetScan(
        rows=sorted(r for r in rows if r < boundary),
        boundary=boundary,
        digests=forgotten,
        profiles=sorted(p for p in profiles if p < person_boundary),
        person_boundary=person_boundary,
    )


def _forget_persons(conn: sqlite3.Connection, keys: Sequence[str]) -> tuple[list[int], list[str]]:
    """The people owning ``keys``, and every identifier key they own."""
    found = _IdentitySql(conn).persons_of(keys) if keys else {}
    persons = sorted(set(found.values()))
    owned: list[str] = []
    if persons:
        marks = ",".join("?" * len(persons))
        sql = f"SELECT key FROM identifiers WHERE person_id IN ({marks})"
        owned = [r[0] for r in conn.execute(sql, persons)]
    return persons, owned


def _forget_rows(
    conn: sqlite3.Connection,
    persons: Sequence[int],
    digests: Sequence[str],
    fields: Sequence[tuple[str, str]],
    *,
    from_id: int,
) -> set[int]:
    """Event rows of the people (any id: events_person), and rows from ``from_id`` on whose
    payload, kept input or enriched copy holds a digest or whose input names a field."""
    clauses = [f"person_id IN ({','.join('?' * len(persons))})"] if persons else []
    params: list[Any] = list(persons)
    for digest in digests:
        clauses.append("(id >= ? AND (instr(payload, ?) > 0 OR instr(input, ?) > 0))")
        params += [from_id, digest.encode(), digest.encode()]
    rows: set[int] = set()
    if clauses:
        sql = f"SELECT id FROM events WHERE {' OR '.join(clauses)}"
        rows.update(r[0] for r in conn.execute(sql, params))
    for value in dict.fromkeys(v for _, v in fields):
        found = conn.execute(_Q["forget_inputs"], {"value": value.encode(), "from_id": from_id})
        rows.update(r[0] for r in found if input_names(bytes(r[1]), fields))
    for digest in digests:  # enriched copies hold the person's digests too
        sql = "SELECT event_row FROM deliveries WHERE event_row >= ? AND instr(payload, ?) > 0"
        rows.update(r[0] for r in conn.execute(sql, [from_id, digest.encode()]))
    return rows


def _forget_delete(conn: sqlite3.Connection, rows: Sequence[int]) -> tuple[int, int]:
    """Delete event rows (with their deliveries and attempts) by id, in one short write
    transaction; returns the events deleted (rows already gone are not counted) and the
    deliveries among them that were still queued."""
    events = undelivered = 0
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        in_rows = ",".join("?" * len(chunk))
        undelivered += conn.execute(
            f"SELECT count(*) FROM deliveries WHERE state = 'queued' AND event_row IN ({in_rows})",
            chunk,
        ).fetchone()[0]
        events += conn.execute(f"DELETE FROM events WHERE id IN ({in_rows})", chunk).rowcount
    return events, undelivered


def _forget_finish(
    conn: sqlite3.Connection, keys: Sequence[str], needles: Sequence[str], scan: _ForgetScan
) -> tuple[ForgetReport, int, int]:
    """The last write transaction of ``forget``: the people as they are now, their events
    (by index), the events from the scan's boundary on (accepted while it ran), the people
    themselves, and the digests in the profiles the scan found (read again) or newer ones."""
    persons, owned = _forget_persons(conn, keys)
    counts = {"persons": len(persons), "identifiers": len(owned), "clicks": 0}
    if persons:
        marks = ",".join("?" * len(persons))
        sql = f"SELECT count(*) FROM clicks WHERE person_id IN ({marks})"
        counts["clicks"] = conn.execute(sql, persons).fetchone()[0]
    digests, fields = split_needles(needles)
    rows = _forget_rows(conn, persons, digests, fields, from_id=scan.boundary)
    events, undelivered = _forget_delete(conn, sorted(rows))
    forgotten = identifying_digests([*keys, *owned])
    profiles: dict[int, Any] = {}
    for start in range(0, len(scan.profiles), 500):
        chunk = scan.profiles[start : start + 500]
        sql = f"SELECT id, profile FROM persons WHERE id IN ({','.join('?' * len(chunk))})"
        profiles.update(conn.execute(sql, chunk).fetchall())
    profiles.update(profiles_holding(conn, _Q, forgotten, from_person=scan.person_boundary))
    profiles.update(profiles_holding(conn, _Q, forgotten - scan.digests))  # rare: new keys
    if persons:
        conn.execute(f"DELETE FROM persons WHERE id IN ({','.join('?' * len(persons))})", persons)
    deleted = set(persons)
    alive = {p: raw for p, raw in profiles.items() if p not in deleted}
    forget_in_profiles(conn, _Q, forgotten, alive)
    return ForgetReport(**counts), events, undelivered


def _claim(conn: sqlite3.Connection, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The due rows, then their lease by id, in the writer's transaction."""
    rows = conn.execute(_Q["claim"], params).fetchall()
    if rows:
        ids = _encode_ids([r[0] for r in rows]).decode()
        conn.execute(_Q["claim_lease"], {**params, "ids": ids})
    return rows


_MARK: Final = {
    "delivered": _Q["mark_delivered"],
    "retry": _Q["mark_retry"],
    "dead": _Q["mark_dead"],
    "release": _Q["release"],
}


def _complete(
    conn: sqlite3.Connection, owner: str, completions: Sequence[Completion], now: float
) -> int:
    """Record the answers: one statement per group of equal answers (usually the whole
    batch), and one for their attempts log.

    When a lease was lost (fewer rows changed than asked), the batch is undone and recorded
    one completion at a time, so that only the completions still leased are logged.
    """
    groups: dict[tuple[Any, ...], list[int]] = {}
    for c in completions:
        key = (c.kind, c.outcome, c.http_status, c.message, c.warning, c.due_at, c.counted)
        groups.setdefault(key, []).append(c.id)
    conn.execute("SAVEPOINT complete")
    if sum(_mark(conn, key, ids, owner, now) for key, ids in groups.items()) == len(completions):
        conn.execute("RELEASE complete")
        return len(completions)
    conn.execute("ROLLBACK TO complete")
    conn.execute("RELEASE complete")
    done = 0
    for c in completions:
        key = (c.kind, c.outcome, c.http_status, c.message, c.warning, c.due_at, c.counted)
        done += _mark(conn, key, [c.id], owner, now)
    return done


def _mark(
    conn: sqlite3.Connection, key: tuple[Any, ...], ids: list[int], owner: str, now: float
) -> int:
    """Record one answer for rows ``ids`` still leased to ``owner``, and log it as an attempt
    when all of them were; returns how many rows changed."""
    kind, outcome, http_status, message, warning, due_at, counted = key
    params = {
        "ids": _encode_ids(ids).decode(),
        "owner": owner,
        "now": now,
        "outcome": outcome,
        "http_status": http_status,
        "message": message,
        "warning": warning,
        "due_at": due_at,
        "counted": int(counted),
    }
    changed: int = conn.execute(_MARK[kind], params).rowcount
    if changed == len(ids) and (counted or kind == "release"):
        conn.execute(_Q["insert_attempt"], params)
    return changed


def _execute(conn: sqlite3.Connection, sql: str, params: dict[str, Any]) -> int:
    return conn.execute(sql, params).rowcount


def _execute_many(conn: sqlite3.Connection, sql: str, params: list[dict[str, Any]]) -> int:
    return sum(conn.execute(sql, p).rowcount for p in params)


# -- diagnostics --------------------------------------------------------------------------------


def _catalog_load(
    conn: sqlite3.Connection, products: Sequence[CatalogProduct], now: float, replace: bool
) -> int:
    if replace:
        conn.execute(_Q["catalog_clear"])
    conn.executemany(
        _Q["catalog_insert"], [{**msgspec.structs.asdict(p), "now": now} for p in products]
    )
    return len(products)


def _catalog_known(conn: sqlite3.Connection, ids: Sequence[str]) -> set[str]:
    known: set[str] = set()
    unique = sorted(set(ids))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT id FROM catalog_products WHERE id IN ({marks})"
        known.update(row[0] for row in conn.execute(sql, chunk))
    return known


def _history(
    conn: sqlite3.Connection, event_id: str, needle: bytes | None, limit: int
) -> list[HistoryEvent]:
    params = {"event_id": event_id, "needle": needle, "limit": limit}
    found = []
    for row in conn.execute(_Q["history_events"], params).fetchall():
        deliveries = []
        for d in conn.execute(_Q["history_deliveries"], {"event_row": row[0]}).fetchall():
            answers = [
                HistoryAttempt(*a) for a in conn.execute(_Q["history_attempts"], {"id": d[0]})
            ]
            deliveries.append(HistoryDelivery(*d[:10], answers=answers))  # type: ignore[misc]
        found.append(HistoryEvent(*row[:7], deliveries=deliveries))  # type: ignore[misc]
    return found
