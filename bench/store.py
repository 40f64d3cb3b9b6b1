"""The SQLite store's accept transaction alone, beside raw SQLite inserts measured in the same run.

Reference mix (the one of ``bench/transform.py``): ``Order Completed`` with a full set of
traits, 100,000 events over 20,000 people, so most people are seen again. The inputs are run
once through the real accept path (``build_acceptor`` with the default settings: identity on,
one destination) into a store that only records the ``PendingInput`` values it is given; they
are then replayed through the store's ``_accept`` on one connection, ``--group`` inputs per
transaction (what one group commit of the writer thread does), on a fresh database.

Baseline: raw inserts of the same payloads into a table with a ``UNIQUE`` key, in the same
transactions: the ceiling of SQLite itself on this machine.

Usage: python bench/store.py [--events N] [--people N] [--group N] [--synchronous NORMAL]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
from transform import NOW, make_lines

from pinbridge.config import Settings
from pinbridge.service import build_acceptor
from pinbridge.store import PendingInput
from pinbridge.store.base import IdentityPolicy
from pinbridge.store.sqlite import SqliteStore, _accept

WINDOW = 48 * 3600.0


class Recorder:
    """A store that only keeps what the acceptor hands it."""

    def __init__(self) -> None:
        self.inputs: list[PendingInput] = []
        self.policy: IdentityPolicy | None = None

    async def accept(
        self,
        inputs: Sequence[PendingInput],
        *,
        now: float,
        dedup_window: float,
        identity: IdentityPolicy | None = None,
    ) -> list[list[str]]:
        self.inputs.extend(inputs)
        self.policy = identity
        return [["accepted"] * len(p.events) for p in inputs]


def capture(lines: list[bytes]) -> tuple[list[PendingInput], IdentityPolicy | None]:
    recorder = Recorder()
    acceptor = build_acceptor(Settings(), recorder)  # type: ignore[arg-type]
    messages = [msgspec.json.decode(line) for line in lines]

    async def run() -> None:
        for start in range(0, len(messages), 500):
            await acceptor.accept(messages[start : start + 500], now=NOW)

    asyncio.run(run())
    return recorder.inputs, recorder.policy


def connect(path: Path, synchronous: str) -> tuple[SqliteStore, sqlite3.Connection]:
    """A store (which creates and migrates the file) and a writer connection like its own."""
    store = SqliteStore(path, synchronous=synchronous)
    return store, store._connect()


def replay(
    conn: sqlite3.Connection, inputs: list[PendingInput], policy: Any, group: int
) -> tuple[float, dict[str, int]]:
    answers: dict[str, int] = {}
    started = time.perf_counter()
    for start in range(0, len(inputs), group):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("SAVEPOINT op")
        for answer in _accept(conn, inputs[start : start + group], NOW, WINDOW, policy):
            for a in answer:
                answers[a] = answers.get(a, 0) + 1
        conn.execute("RELEASE op")
        conn.execute("COMMIT")
    return time.perf_counter() - started, answers


def raw_inserts(conn: sqlite3.Connection, inputs: list[PendingInput], group: int) -> float:
    conn.execute("CREATE TABLE raw (k TEXT UNIQUE, payload BLOB)")
    events = [e for p in inputs for e in p.events]
    started = time.perf_counter()
    for start in range(0, len(events), group):
        conn.execute("BEGIN IMMEDIATE")
        for e in events[start : start + group]:
            conn.execute("INSERT INTO raw VALUES (?, ?)", (e.event_id, e.payload))
        conn.execute("COMMIT")
    return len(events) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--group", type=int, default=500, help="inputs per transaction")
    parser.add_argument("--synchronous", default="NORMAL")
    parser.add_argument("--profile", action="store_true", help="cProfile the replay")
    args = parser.parse_args()
    inputs, policy = capture(make_lines(args.events, args.people))
    count = sum(len(p.events) for p in inputs)
    with tempfile.TemporaryDirectory(prefix="pinbridge-store-") as folder:
        store, conn = connect(Path(folder) / "store.db", args.synchronous)
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
        seconds, answers = replay(conn, inputs, policy, args.group)
        if args.profile:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        raw = raw_inserts(conn, inputs, args.group)
        conn.close()
        asyncio.run(store.aclose())
    rate = count / seconds
    print(
        f"store _accept: {count:,} events ({len(inputs):,} inputs, {args.people:,} people, "
        f"{args.group} per transaction, synchronous={args.synchronous})"
    )
    print(f"    answers {answers}")
    print(f"    _accept       {rate:10,.0f} events/s  ({seconds / count * 1e6:.0f} µs/event)")
    print(f"    raw inserts   {raw:10,.0f} events/s  (_accept = {rate / raw:.2f}x)")


if __name__ == "__main__":
    main()
