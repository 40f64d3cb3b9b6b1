"""Identity data is kept for the retention period only."""

from __future__ import annotations

import pytest

from pinbridge.signals import IdentitySignals
from pinbridge.store import IdentityPolicy, MemoryStore, PendingInput, SqliteStore

pytestmark = pytest.mark.anyio
DAY = 86400.0
NOW = 1_795_345_200.0


@pytest.fixture(params=["sqlite", "memory"], name="store")
async def _store(request, tmp_path):
    store = SqliteStore(tmp_path / "pb.db") if request.param == "sqlite" else MemoryStore()
    yield store
    await store.aclose()


def sighting(key: str, at: float) -> PendingInput:
    return PendingInput(input=b"", identity=IdentitySignals(keys=(key,), click_id="E", seen_at=at))


async def test_people_not_seen_within_retention_are_deleted(store):
    """Pruning removes people last seen before the retention period, and only them."""
    policy = IdentityPolicy()
    await store.accept(
        [sighting("aid:old", NOW - 100 * DAY)],
        now=NOW - 100 * DAY,
        dedup_window=DAY,
        identity=policy,
    )
    await store.accept(
        [sighting("aid:new", NOW - DAY)], now=NOW - DAY, dedup_window=DAY, identity=policy
    )
    await store.prune(now=NOW, dedup_window=DAY, identity_retention=90 * DAY)
    remaining = await store.forget(["aid:old", "aid:new"], [])
    assert (remaining.persons, remaining.identifiers, remaining.clicks) == (1, 1, 1)
