"""Storage: the port, and its SQLite, PostgreSQL and in-memory implementations.

The PostgreSQL module (and psycopg) is imported only when a ``postgresql://`` URL is opened.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pinbridge.errors import StoreError
from pinbridge.ratelimit import RateLimit, TokenBucket
from pinbridge.store.base import (
    Answer,
    Claimed,
    Completion,
    DeadLetter,
    DestinationStats,
    ForgetReport,
    IdentityPolicy,
    PendingEvent,
    PendingInput,
    Store,
)
from pinbridge.store.memory import MemoryStore
from pinbridge.store.sqlite import SqliteStore
from pinbridge.store.urls import display_url

__all__ = [
    "Answer",
    "Claimed",
    "Completion",
    "DeadLetter",
    "DestinationStats",
    "ForgetReport",
    "IdentityPolicy",
    "MemoryStore",
    "PendingEvent",
    "PendingInput",
    "SqliteStore",
    "Store",
    "StoreError",
    "display_url",
    "migrate_store",
    "open_store",
    "rate_limit",
]

if TYPE_CHECKING:
    from pinbridge.store.postgres import PostgresStore

_POSTGRES = ("postgresql://", "postgres://")


def open_store(
    url: str,
    *,
    synchronous: str = "NORMAL",
    pool_size: int = 10,
    migrate: bool = True,
    connect_wait: float = 30.0,
) -> Store:
    """Open the store a database URL names: ``sqlite:///path``, ``postgresql://...`` (or
    ``memory:`` for tests). SQLite always migrates; PostgreSQL only when ``migrate`` is true
    (otherwise it refuses a database whose schema is behind), and waits up to
    ``connect_wait`` seconds for a PostgreSQL that refuses connections.

    Raises:
        ValueError: the URL's scheme is not supported.
        StoreError: the database cannot be opened or its schema is behind.
    """
    if url.startswith("sqlite:///"):
        return SqliteStore(Path(url.removeprefix("sqlite:///")), synchronous=synchronous)
    if url == "memory:":
        return MemoryStore()
    if url.startswith(_POSTGRES):
        return _postgres(url, pool_size=pool_size, migrate=migrate, connect_wait=connect_wait)
    scheme = url.split(":", 1)[0]
    raise ValueError(
        f"unsupported database URL scheme {scheme!r}; use sqlite:///path or postgresql://..."
    )


def _postgres(url: str, *, pool_size: int, migrate: bool, connect_wait: float) -> PostgresStore:
    from pinbridge.store.postgres import PostgresStore

    return PostgresStore(
        url, pool_size=pool_size, migrate_schema=migrate, connect_wait=connect_wait
    )


def migrate_store(url: str) -> int:
    """Bring the database's schema up to date (``pinbridge migrate``); returns its version."""
    if url.startswith(_POSTGRES):
        import psycopg

        from pinbridge.store.postgres import CONNECT_TIMEOUT, migrate

        try:
            with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT) as conn:
                return migrate(conn)
        except psycopg.Error as exc:
            reason = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            raise StoreError(f"cannot migrate {display_url(url)}: {reason}") from exc
    if url.startswith("sqlite:///"):
        import sqlite3

        from pinbridge.store.sqlite import migrate as migrate_sqlite

        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None)
        try:
            return migrate_sqlite(db)
        finally:
            db.close()
    raise ValueError(f"nothing to migrate for {url.split(':', 1)[0]!r}")


def rate_limit(store: Store, key: str, rate_per_minute: float, burst: float = 0.0) -> RateLimit:
    """The calls-per-minute budget of ad account ``key``: shared in the database with every
    other sender on PostgreSQL; this process's own token bucket otherwise (one process
    sends for an SQLite file). ``burst``: calls allowed at once (default: a minute's)."""
    postgres = sys.modules.get("pinbridge.store.postgres")  # not imported: not PostgreSQL
    if postgres is not None and isinstance(store, postgres.PostgresStore):
        bucket: RateLimit = postgres.SharedTokenBucket(store, key, rate_per_minute, burst)
        return bucket
    return TokenBucket(rate_per_minute, burst=burst)
