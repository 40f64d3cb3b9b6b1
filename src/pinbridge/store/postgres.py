"""The scaled-out store: PostgreSQL through psycopg 3, shared by many collectors and senders.

Same contract as :mod:`pinbridge.store.sqlite`, on the same schema (``sql/postgres.sql`` holds
the same named queries, in the same order, as ``sql/sqlite.sql``). What changes with several
processes on one database:

* **Claims** lock the rows they lease with ``FOR UPDATE SKIP LOCKED``: two senders claiming at
  once get disjoint rows, and neither waits for the other. A lease that runs out makes the rows
  claimable again (a sender killed mid-batch: its batch is sent again, by someone else).
* **Dedup** is the unique key of ``dedup_keys``, written in the accept transaction
  (``INSERT ... ON CONFLICT DO UPDATE ... WHERE seen_at < cutoff RETURNING``): two collectors
  accepting the same event at once wait on the index, and the second sees a duplicate.
* **The rate limit** of an ad account is a token bucket row (``rate_limits``) that every sender
  takes from atomically: :class:`SharedTokenBucket`.

**Threads, not async.** The identity algorithm (:mod:`pinbridge.identity`) calls its tables
synchronously, in the middle of the accept transaction, and must not be written twice. So the
whole store uses psycopg's *sync* API on a :class:`psycopg_pool.ConnectionPool`: accepts run on
``accept_writers`` threads (below), every other operation in ``asyncio.to_thread`` with one
pooled connection and one transaction. A thread hop costs tens of microseconds, far less than
the round trips of the transaction it carries.

**Group commit.** Accepts are queued; each writer thread takes everything that has piled up
(at most ``max_group`` calls), runs it in one transaction, each call inside its own savepoint
(a failed call does not undo the others), and commits once. Under load this cuts the commits
(and WAL flushes) by the group size; with several writers, groups still run in parallel.
A call that hits a deadlock or a serialization failure is rolled back to its savepoint and run
again.
"""

from __future__ import annotations

import asyncio
import queue
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Final, TypeVar

import msgspec
import psycopg
import psycopg.errors
from psycopg_pool import ConnectionPool, PoolTimeout

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
from pinbridge.store.urls import display_url

__all__ = ["PostgresStore", "SharedTokenBucket", "latest_version", "migrate"]

DEFAULT_POOL_SIZE: Final = 10
DEFAULT_ACCEPT_WRITERS: Final = 2
DEFAULT_MAX_GROUP: Final = 64
#: Seconds a server waits at start for the database to accept connections (it may be starting
#: beside pinbridge); a command run by hand passes 0 and fails on the first refusal.
DEFAULT_CONNECT_WAIT: Final = 30.0
#: libpq's ``connect_timeout`` of one attempt (its minimum is 2 s): an unreachable host that
#: drops packets fails after this long instead of the kernel's minutes.
CONNECT_TIMEOUT: Final = 5
#: Times a call is run again after a deadlock or serialization failure.
_RETRIES: Final = 5
_TRANSIENT = (
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
    psycopg.errors.ForeignKeyViolation,  # a person merged away under a concurrent accept
)
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_T = TypeVar("_T")
_Op = tuple[Callable[..., Any], tuple[Any, ...], "Future[Any]"]


def _to_psycopg(sql: str) -> str:
    """``:name`` → ``%(name)s`` (``::type`` casts untouched); comment lines dropped."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return _PARAM.sub(r"%(\1)s", "\n".join(lines).replace("%", "%%"))


#: Bytes, not str: psycopg's typing takes only literal strings, bytes or composed SQL.
_Q: Final = {name: _to_psycopg(sql).encode() for name, sql in load_queries("postgres").items()}


def latest_version() -> int:
    """The schema version the migrations in this package lead to."""
    return load_migrations("postgres")[-1][0]


def migrate(conn: psycopg.Connection[Any]) -> int:
    """Apply the migrations the database lacks, all in one transaction under an advisory
    lock (several nodes may start at once); returns the schema version."""
    with conn.transaction():
        conn.execute(_Q["lock_schema"])
        conn.execute(_Q["create_schema_version"])
        row = conn.execute(_Q["schema_version"]).fetchone()
        version = int(row[0]) if row else 0
        for number, script in load_migrations("postgres"):
            if number > version:
                conn.execute(script.encode())
                conn.execute(_Q["set_schema_version"], {"version": number})
                version = number
    return version


def _schema_version(conn: psycopg.Connection[Any]) -> int:
    with conn.transaction():
        exists = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return 0
        row = conn.execute(_Q["schema_version"]).fetchone()
        return int(row[0]) if row else 0


class PostgresStore(SqlStore):
    """The store port on PostgreSQL.

    Args:
        url: a libpq connection URL (``postgresql://user:password@host:5432/db``).
        pool_size: most connections this process opens (accept writers plus concurrent
            claims, completions and dashboard queries).
        accept_writers: threads committing groups of accepts in parallel.
        max_group: most accept calls committed together.
        migrate_schema: apply missing migrations now; otherwise refuse an old schema.
        connect_wait: seconds to keep trying while the database refuses connections (0: try
            once). Each attempt gives up after :data:`CONNECT_TIMEOUT` seconds.

    Raises:
        StoreError: the database cannot be reached (the message names it, password masked,
            and gives libpq's reason), or its schema is behind.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        accept_writers: int = DEFAULT_ACCEPT_WRITERS,
        max_group: int = DEFAULT_MAX_GROUP,
        migrate_schema: bool = True,
        connect_wait: float = DEFAULT_CONNECT_WAIT,
    ) -> None:
        if pool_size < 1 or accept_writers < 1 or max_group < 1:
            raise ValueError("pool_size, accept_writers and max_group must be positive")
        self._url = url
        self._max_group = max_group
        version = _first_connection(url, migrate_schema=migrate_schema, wait=connect_wait)
        if version < latest_version():
            raise StoreError(
                f"the database schema is at version {version}, this pinbridge needs "
                f"{latest_version()}: run `pinbridge migrate`"
            )
        self._pool = ConnectionPool(
            url, min_size=1, max_size=pool_size, open=False, name="pinbridge", timeout=30.0
        )
        try:
            self._pool.open(wait=True, timeout=30.0)
        except (psycopg.Error, PoolTimeout) as exc:
            self._pool.close()
            raise StoreError(f"cannot open the PostgreSQL store: {exc}") from exc
        self._queue: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._writers = [
            threading.Thread(target=self._run, name=f"pinbridge-pg-{n}", daemon=True)
            for n in range(accept_writers)
        ]
        for writer in self._writers:
            writer.start()

    def __repr__(self) -> str:
        return f"PostgresStore({display_url(self._url)!r})"

    # -- threads ----------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                self._queue.put(None)  # for the other writers
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
            self._commit_group(group)

    def _commit_group(self, group: list[_Op]) -> None:
        results: list[tuple[bool, Any]] = []
        try:
            with self._pool.connection() as conn, conn.transaction():
                for fn, args, _ in group:
                    try:
                        results.append((True, _with_retries(conn, fn, args)))
                    except Exception as exc:
                        results.append((False, _wrap(exc)))
        except Exception as exc:
            error = _wrap(exc)
            for _, _, future in group:
                future.set_exception(error)
            return
        for (ok, value), (_, _, future) in zip(results, group, strict=True):
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def _transact(self, fn: Callable[..., _T], args: tuple[Any, ...]) -> _T:
        try:
            with self._pool.connection() as conn, conn.transaction():
                return _with_retries(conn, fn, args)
        except Exception as exc:
            raise _wrap(exc) from exc

    async def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.to_thread(self._transact, fn, args)

    async def _grouped(self, fn: Callable[..., _T], *args: Any) -> _T:
        future: Future[_T] = Future()
        self._queue.put((fn, args, future))
        return await asyncio.wrap_future(future)

    # -- the port ---------------------------------------------------------------------------

    async def _rows(self, name: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return await self._call(_fetch, _Q[name], params)

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
        return await self._grouped(_accept, inputs, now, dedup_window, identity)

    async def _claim_rows(self, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return await self._call(_claim, params)

    async def complete(self, owner: str, completions: Sequence[Completion], *, now: float) -> int:
        return await self._call(_complete, owner, completions, now)

    async def forget(self, keys: Sequence[str], needles: Sequence[str]) -> ForgetReport:
        return await self._call(_forget, keys, needles)

    async def take_token(
        self, key: str, *, rate_per_minute: float, burst: float, now: float
    ) -> float:
        """Take one call from ``key``'s shared bucket; returns the tokens left (may be < 0)."""
        params = {"key": key, "rate": rate_per_minute, "burst": burst, "now": now}
        rows = await self._call(_fetch, _Q["take_token"], params)
        return float(rows[0][0])

    async def aclose(self) -> None:
        """Finish queued accepts, then close the pool."""
        self._queue.put(None)
        for writer in self._writers:
            await asyncio.to_thread(writer.join)
        await asyncio.to_thread(self._pool.close)

    # -- diagnostics ------------------------------------------------------------------------

    async def catalog_load(
        self, products: Sequence[CatalogProduct], *, now: float, replace: bool = True
    ) -> int:
        return await self._call(_catalog_load, products, now, replace)

    async def catalog_known(self, ids: Sequence[str]) -> set[str]:
        rows = await self._call(_fetch, _Q["catalog_known"], {"ids": sorted(set(ids))})
        return {row[0] for row in rows}

    async def history(
        self, *, event_id: str, needle: bytes | None, limit: int
    ) -> list[HistoryEvent]:
        return await self._call(_history, event_id, needle, limit)


class SharedTokenBucket:
    """Calls per minute per ad account, one budget for every sender on the database.

    :class:`pinbridge.ratelimit.TokenBucket`'s contract (``reserve``), kept in the
    ``rate_limits`` table: each call takes a token atomically; when none is left the token is
    borrowed and the caller told how long to wait, so N senders together never pass the rate.
    """

    def __init__(
        self, store: PostgresStore, key: str, rate_per_minute: float, burst: float = 0.0
    ) -> None:
        if rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be positive")
        self._store = store
        self.key = key
        self.rate_per_minute = rate_per_minute
        self.burst = burst or rate_per_minute

    def __repr__(self) -> str:
        return f"SharedTokenBucket({self.key!r}, {self.rate_per_minute!r}/min)"

    async def reserve(self, now: float) -> float:
        tokens = await self._store.take_token(
            self.key, rate_per_minute=self.rate_per_minute, burst=self.burst, now=now
        )
        return 0.0 if tokens >= 0 else -tokens * 60.0 / self.rate_per_minute


def _first_connection(url: str, *, migrate_schema: bool, wait: float) -> int:
    """Connect once (again every second for ``wait`` seconds while refused), migrate or read
    the schema version, and return it.

    One direct connection rather than the pool's: a pool that cannot connect only says that
    it timed out, and libpq's reason (refused, unknown host, bad password) is what the
    operator needs.
    """
    deadline = time.monotonic() + wait
    while True:
        try:
            with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT) as conn:
                return migrate(conn) if migrate_schema else _schema_version(conn)
        except psycopg.OperationalError as exc:
            # Refused or unreachable (no SQLSTATE) or starting up (57P03) may pass; a wrong
            # password or database will not.
            if exc.sqlstate not in (None, "57P03") or time.monotonic() + 1.0 > deadline:
                raise StoreError(f"cannot connect to {display_url(url)}: {_reason(exc)}") from exc
            time.sleep(1.0)
        except psycopg.Error as exc:
            raise StoreError(f"cannot open {display_url(url)}: {_reason(exc)}") from exc


def _reason(exc: Exception) -> str:
    """libpq's message on one line (it adds hints on further lines)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines) or type(exc).__name__


def _wrap(exc: Exception) -> Exception:
    if isinstance(exc, psycopg.Error | PoolTimeout):
        error = StoreError(str(exc).strip() or type(exc).__name__)
        error.__cause__ = exc
        return error
    return exc


def _with_retries(
    conn: psycopg.Connection[Any], fn: Callable[..., _T], args: tuple[Any, ...]
) -> _T:
    """Run ``fn`` in a savepoint; again after a deadlock or serialization failure."""
    for attempt in range(_RETRIES):
        try:
            with conn.transaction():
                return fn(conn, *args)
        except _TRANSIENT:
            if attempt == _RETRIES - 1:
                raise
    raise AssertionError("unreachable")


# -- operations, run on a pooled connection inside a transaction -------------------------------


def _accept(
    conn: psycopg.Connection[Any],
    inputs: Sequence[PendingInput],
    now: float,
    window: float,
    policy: IdentityPolicy | None,
) -> list[list[Answer]]:
    tables = _IdentityPg(conn)
    return [
        accept_input(pending, policy, tables, now, _Events(conn, pending, now, window))
        for pending in inputs
    ]


class _Events(EventParams):
    """:class:`pinbridge.store.enrich.EventRows` on the transaction's connection."""

    def __init__(
        self, conn: psycopg.Connection[Any], pending: PendingInput, now: float, window: float
    ) -> None:
        super().__init__(pending, now, window)
        self._conn = conn

    def take_key(self, event: PendingEvent) -> bool:
        return self._conn.execute(_Q["insert_dedup_key"], self.key(event)).fetchone() is not None

    def give_back_key(self, event: PendingEvent) -> None:
        self._conn.execute(_Q["delete_dedup_key"], self.key(event, taking=False))

    def insert(
        self, event: PendingEvent, person: int | None, enriched: dict[str, tuple[bytes, bytes]]
    ) -> None:
        row = self._conn.execute(_Q["insert_event"], self.event(event, person)).fetchone()
        assert row is not None
        with self._conn.cursor() as cursor:
            cursor.executemany(_Q["insert_delivery"], self.deliveries(row[0], event, enriched))


class _IdentityPg:
    """:class:`pinbridge.identity.IdentityTables` on the transaction's connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def persons_of(self, keys: Sequence[str]) -> dict[str, int]:
        rows = self._conn.execute(_Q["persons_of"], {"keys": list(keys)}).fetchall()
        return {key: person for key, person in rows}

    def kind_counts(self, person: int) -> dict[str, int]:
        rows = self._conn.execute(_Q["kind_counts"], {"person": person}).fetchall()
        return {kind: count for kind, count in rows}

    def new_person(self, now: float) -> int:
        row = self._conn.execute(_Q["new_person"], {"now": now}).fetchone()
        assert row is not None
        return int(row[0])

    def merge(self, into: int, other: int, now: float) -> None:
        params = {"into": into, "other": other}
        merged = merge_profiles(self.profile(into), self.profile(other))
        for name in ("merge_identifiers", "merge_clicks", "merge_events"):
            self._conn.execute(_Q[name], params)
        self._conn.execute(_Q["delete_person"], {"person": other})
        self.save_profile(into, merged, now)

    def attach(self, person: int, keys: Sequence[str], now: float) -> None:
        if not keys:
            return
        with self._conn.cursor() as cursor:
            cursor.executemany(
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
        row = self._conn.execute(_Q["profile"], {"person": person}).fetchone()
        return msgspec.json.decode(row[0], type=Profile) if row else Profile()

    def save_profile(self, person: int, profile: Profile, now: float) -> None:
        self._conn.execute(
            _Q["save_profile"],
            {"person": person, "profile": msgspec.json.encode(profile), "now": now},
        )


def _forget(
    conn: psycopg.Connection[Any], keys: Sequence[str], needles: Sequence[str]
) -> ForgetReport:
    """Remove the people owning ``keys``, their events (by person, by digest, or by an exact
    user or anonymous id in the kept input), and their email and phone digests from any
    other person's profile.

    Every scan (events, deliveries, profiles) runs before the first write: the scans take no
    lock, so concurrent accepts and claims wait only on the rows deleted or changed, and only
    from those writes to the commit.
    """
    found = _IdentityPg(conn).persons_of(keys) if keys else {}
    persons = sorted(set(found.values()))
    counts = conn.execute(_Q["forget_counts"], {"persons": persons}).fetchone()
    assert counts is not None
    owned = [r[0] for r in conn.execute(_Q["forget_keys"], {"persons": persons})]
    digests, fields = split_needles(needles)
    params = {"persons": persons, "needles": [d.encode() for d in digests]}
    rows = {r[0] for r in conn.execute(_Q["forget_rows"], params)}
    for value in dict.fromkeys(v for _, v in fields):
        found_rows = conn.execute(_Q["forget_inputs"], {"value": value.encode(), "from_id": 0})
        rows.update(r[0] for r in found_rows if input_names(bytes(r[1]), fields))
    forgotten = identifying_digests([*keys, *owned])
    profiles = profiles_holding(conn, _Q, forgotten)
    ordered = sorted(rows)
    gone = conn.execute(_Q["forget_events"], {"rows": ordered}).fetchone()
    conn.execute(_Q["forget_delete_events"], {"rows": ordered})
    conn.execute(_Q["forget_delete_persons"], {"persons": persons})
    deleted = set(persons)
    alive = {p: raw for p, raw in profiles.items() if p not in deleted}
    forget_in_profiles(conn, _Q, forgotten, alive)
    return ForgetReport(
        persons=len(persons),
        identifiers=counts[0],
        clicks=counts[1],
        events=len(ordered),
        undelivered=gone[0] if gone else 0,
    )


_MARKS: Final = {
    "delivered": "mark_delivered",
    "retry": "mark_retry",
    "dead": "mark_dead",
    "release": "release",
}


def _complete(
    conn: psycopg.Connection[Any], owner: str, completions: Sequence[Completion], now: float
) -> int:
    """Each kind's updates in one pipelined ``executemany``; rows no longer held by
    ``owner`` come back empty and are not counted (nor logged as attempts)."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    logged: dict[int, dict[str, Any]] = {}
    for c in completions:
        params: dict[str, Any] = {
            "id": c.id,
            "owner": owner,
            "now": now,
            "http_status": c.http_status,
            "message": c.message,
        }
        if c.counted or c.kind == "release":
            logged[c.id] = {**params, "outcome": c.outcome}
        if c.kind == "delivered":
            params["warning"] = c.warning
        elif c.kind == "retry":
            params["due_at"] = c.due_at
        elif c.kind == "dead":
            params["counted"] = int(c.counted)
        by_kind.setdefault(c.kind, []).append(params)
    done: list[int] = []
    with conn.cursor() as cursor:
        for kind, rows in by_kind.items():
            cursor.executemany(_Q[_MARKS[kind]], rows, returning=True)
            while True:
                done += [r[0] for r in cursor.fetchall()]
                if not cursor.nextset():
                    break
        attempts = [logged[i] for i in done if i in logged]
        if attempts:
            cursor.executemany(_Q["insert_attempt"], attempts)
    return len(done)


def _claim(conn: psycopg.Connection[Any], params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The due rows, locked, then their lease by id, in one transaction."""
    rows = conn.execute(_Q["claim"], params).fetchall()
    if rows:
        conn.execute(_Q["claim_lease"], {**params, "ids": [r[0] for r in rows]})
    return rows


def _fetch(
    conn: psycopg.Connection[Any], sql: bytes, params: dict[str, Any]
) -> list[tuple[Any, ...]]:
    return conn.execute(sql, params).fetchall()


def _execute(conn: psycopg.Connection[Any], sql: bytes, params: dict[str, Any]) -> int:
    return conn.execute(sql, params).rowcount


def _execute_many(conn: psycopg.Connection[Any], sql: bytes, params: list[dict[str, Any]]) -> int:
    return sum(conn.execute(sql, p).rowcount for p in params)


# -- diagnostics --------------------------------------------------------------------------------


def _catalog_load(
    conn: psycopg.Connection[Any], products: Sequence[CatalogProduct], now: float, replace: bool
) -> int:
    if replace:
        conn.execute(_Q["catalog_clear"])
    if products:
        with conn.cursor() as cursor:
            cursor.executemany(
                _Q["catalog_insert"],
                [{**msgspec.structs.asdict(p), "now": now} for p in products],
            )
    return len(products)


def _history(
    conn: psycopg.Connection[Any], event_id: str, needle: bytes | None, limit: int
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
