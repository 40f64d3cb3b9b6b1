"""`pinbridge forget`: a person leaves no trace in any table; others stay."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pinbridge.config import load_settings
from pinbridge.service import build_acceptor
from pinbridge.store import PendingEvent, PendingInput, SqliteStore, open_store

pytestmark = pytest.mark.anyio


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def events_of(who: str, email: str, phone: str, click: str, now: float) -> list[dict]:
    context = {
        "ip": f"203.0.113.{len(who)}",
        "userAgent": f"UA-{who}",
        "page": {"url": f"https://shop.example/?epik={click}&utm_campaign=c"},
    }
    return [
        {"type": "page", "anonymousId": f"anon-{who}", "timestamp": now - 600, "context": context},
        {
            "type": "identify",
            "anonymousId": f"anon-{who}",
            "userId": f"user-{who}",
            "timestamp": now - 500,
            "traits": {"email": email, "phone": phone},
        },
        {
            "type": "track",
            "event": "Order Completed",
            "userId": f"user-{who}",
            "messageId": f"order-{who}",
            "timestamp": now - 60,
            "context": {**context, "page": {"url": "https://shop.example/thanks"}},
            "properties": {"order_id": f"o-{who}", "revenue": 10, "currency": "USD"},
        },
    ]


def dump(path: Path) -> bytes:
    """Every value of every table, as bytes."""
    conn = sqlite3.connect(path)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    chunks = []
    for table in tables:
        for row in conn.execute(f"SELECT * FROM {table}"):
            for value in row:
                chunks.append(value if isinstance(value, bytes) else str(value).encode())
    conn.close()
    return b"\n".join(chunks)


async def test_forget_removes_every_trace(tmp_path: Path, monkeypatch):
    """After forget, no table holds the person's digests, ids, click or network data."""
    monkeypatch.chdir(tmp_path)  # no ./pinbridge.toml of the working directory
    url = f"sqlite:///{tmp_path / 'pb.db'}"
    settings = load_settings(None, {"PINBRIDGE_DATABASE_URL": url})
    store = open_store(url)
    now = time.time()
    try:
        acceptor = build_acceptor(settings, store)
        jane = events_of("jane", "Jane@Example.com", "+1 650 555 0101", "EPIK-JANE", now)
        john = events_of("john", "john@example.com", "+1 650 555 0202", "EPIK-JOHN", now)
        results = await acceptor.accept(jane + john, now=now)
        assert [r.status for r in results] == ["accepted", "ignored", "accepted"] * 2
    finally:
        await store.aclose()
    traces = [
        sha("jane@example.com"),
        sha("16505550101"),
        sha("user-jane"),
        "user-jane",
        "anon-jane",
        "EPIK-JANE",
        "UA-jane",
    ]
    before = dump(tmp_path / "pb.db")
    assert all(t.encode() in before for t in traces)
    done = subprocess.run(
        [sys.executable, "-m", "pinbridge", "forget", "--email", " JANE@example.com "],
        env={"PINBRIDGE_DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "Removed 1 person(s)" in done.stdout and "2 event(s)" in done.stdout
    after = dump(tmp_path / "pb.db")
    assert [t for t in traces if t.encode() in after] == []
    assert sha("john@example.com").encode() in after and b"EPIK-JOHN" in after


def order(event_id: str, digest: str) -> PendingInput:
    """A checkout carrying an email digest in its payload (no identity signals)."""
    payload = f'{{"event_id":"{event_id}","user_data":{{"em":["{digest}"]}}}}'.encode()
    event = PendingEvent(event_id, "checkout", 1_795_345_200, payload, ("a",))
    return PendingInput(input=b"{}", events=(event,))


async def test_accepts_commit_while_forget_scans(tmp_path: Path, monkeypatch):
    """SQLite: forget scans on a read connection of its own, outside the writer, so accepts
    commit while it scans (held here by a progress handler); an event of the forgotten
    person accepted meanwhile is removed too, and the others stay."""
    store = SqliteStore(tmp_path / "pb.db")
    jane, john = sha("jane@example.com"), sha("john@example.com")
    now = 1_795_345_200.0
    await store.accept([order("j1", jane), order("k1", john)], now=now, dedup_window=60)
    started, release = threading.Event(), threading.Event()
    open_reader = getattr(store, "_open_reader", lambda: sqlite3.connect(tmp_path / "pb.db"))

    def held_reader() -> sqlite3.Connection:
        conn = open_reader()

        def hold() -> int:
            started.set()
            release.wait(30)
            return 0

        conn.set_progress_handler(hold, 100)
        return conn

    monkeypatch.setattr(store, "_open_reader", held_reader, raising=False)
    forgetting = asyncio.ensure_future(store.forget([], [jane]))
    try:
        for _ in range(1000):
            if started.is_set():
                break
            await asyncio.sleep(0.01)
        assert started.is_set(), "forget did not scan on a read connection"
        during = [order("j2", jane), order("k2", john)]
        answers = await asyncio.wait_for(store.accept(during, now=now, dedup_window=60), 10)
        assert answers == [["accepted"], ["accepted"]]
        assert not forgetting.done()
    finally:
        release.set()
    try:
        report = await forgetting
        assert (report.events, report.undelivered) == (2, 2)
        kept = await store.history(event_id="", needle=b"event_id", limit=10)
        assert sorted(e.event_id for e in kept) == ["k1", "k2"]
    finally:
        await store.aclose()
