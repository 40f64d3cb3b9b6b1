"""Storage: the port, and its SQLite and in-memory implementations."""

from __future__ import annotations

from pathlib import Path

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
from pinbridge.store.sqlite import SqliteStore, StoreError

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
    "open_store",
]


def open_store(url: str, *, synchronous: str = "NORMAL") -> Store:
    """Open the store a database URL names: ``sqlite:///path`` (or ``memory:`` for tests).

    Raises:
        ValueError: the URL's scheme is not supported.
    """
    if url.startswith("sqlite:///"):
        return SqliteStore(Path(url.removeprefix("sqlite:///")), synchronous=synchronous)
    if url == "memory:":
        return MemoryStore()
    scheme = url.split(":", 1)[0]
    raise ValueError(f"unsupported database URL scheme {scheme!r}; use sqlite:///path")
