"""`pinbridge forget`: a person leaves no trace in any table; others stay."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pinbridge.config import load_settings
from pinbridge.service import build_acceptor
from pinbridge.store import open_store

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


async def test_forget_removes_every_trace(tmp_path: Path):
    """After forget, no table holds the person's digests, ids, click or network data."""
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
