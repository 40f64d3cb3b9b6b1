"""The store under a long history: status figures never read the delivered history, and
diagnostics never hold up the sender or the accept path (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from pinbridge.store import SqliteStore
from pinbridge.store.postgres import PostgresStore
from pinbridge.store.sql import load_queries

pytestmark = pytest.mark.anyio
NOW = 1_795_345_200.0
DAY = 86400.0
#: Delivered rows of the history: enough for a planner to weigh, few enough to build fast.
HISTORY = 50_000

_HISTORY_SQL = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count})
INSERT INTO {table} {columns} SELECT {values} FROM n
"""


def _fill_sqlite(path: Path) -> None:
    """``HISTORY`` events delivered two days ago (one an hour ago), 3 queued, 2 dead."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(
        _HISTORY_SQL.format(
            count=HISTORY + 5,
            table="events",
            columns="(id, event_id, event_name, event_time, accepted_at, input, payload)",
            values=f"i, 'e' || i, 'checkout', {int(NOW - 2 * DAY)}, {NOW - 2 * DAY}, x'', x''",
        )
    )
    conn.execute(
        "INSERT INTO deliveries (event_row, destination, state, due_at, expires_at, finished_at)"
        " SELECT id, 'a', CASE WHEN id <= :h THEN 'delivered' WHEN id <= :h + 3 THEN 'queued'"
        " ELSE 'dead' END, :old, :now + :day,"
        " CASE WHEN id = 1 THEN :now - 60 WHEN id <= :h THEN :old"
        " WHEN id > :h + 3 THEN :now - 10 END FROM events",
        {"h": HISTORY, "old": NOW - 2 * DAY, "now": NOW, "day": DAY},
    )
    conn.execute("ANALYZE")
    conn.close()


def _deliveries_reads(plan: list[str]) -> list[str]:
    """The plan lines that read deliveries (``d`` in the queries)."""
    return [line for line in plan if " deliveries" in line or line.split()[1:2] == ["d"]]


class TestSqliteHistory:
    async def test_figures_read_no_history(self, tmp_path):
        """queue_stats and dead_letters_since search deliveries_state per destination and read
        the queue through the partial index only: no scan of the delivered rows."""
        store = SqliteStore(tmp_path / "pb.db")
        _fill_sqlite(tmp_path / "pb.db")
        conn = sqlite3.connect(tmp_path / "pb.db")
        queries = load_queries("sqlite")
        for name in ("queue_stats", "dead_letters_since"):
            plan = [
                row[3]
                for row in conn.execute(
                    f"EXPLAIN QUERY PLAN {queries[name]}", {"now": NOW, "since": NOW - 3600}
                )
            ]
            reads = _deliveries_reads(plan)
            assert reads, plan
            for line in reads:
                searched = line.startswith("SEARCH") and "INDEX deliveries_state" in line
                queue = line.startswith("SCAN") and line.endswith("USING INDEX deliveries_due")
                assert searched or queue, (name, line)
        conn.close()
        try:
            [stats] = await store.stats(now=NOW)
            assert (stats.queued, stats.delivered, stats.dead) == (3, 1, 2)
            assert await store.dead_letters_since(since=NOW - 3600) == {"a": 2}
        finally:
            await store.aclose()

    async def test_finished_deliveries_search_by_finish_time(self, tmp_path):
        """The status latencies' deliveries are found by deliveries_finished, not by scanning
        deliveries or events."""
        await SqliteStore(tmp_path / "pb.db").aclose()
        _fill_sqlite(tmp_path / "pb.db")
        conn = sqlite3.connect(tmp_path / "pb.db")
        query = load_queries("sqlite")["finished_deliveries"]
        plan = [r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {query}", {"since": 0, "limit": 1})]
        conn.close()
        assert any(line.startswith("SEARCH d USING INDEX deliveries_finished") for line in plan)
        assert not any(line.startswith("SCAN") for line in plan), plan

    async def test_pause_check_does_not_wait_for_diagnostics(self, tmp_path):
        """The sender's paused() answers while diagnostics reads hold the read connection and
        every default worker thread."""
        store = SqliteStore(tmp_path / "pb.db")
        started, release = threading.Event(), threading.Event()

        def slow(conn: sqlite3.Connection) -> None:
            started.set()
            release.wait(30)

        readers = [asyncio.ensure_future(store._read_with(slow)) for _ in range(40)]
        try:
            await store.pause("a", "HTTP 401", now=NOW)
            for _ in range(1000):  # not to_thread: the readers hold asyncio's threads
                if started.is_set():
                    break
                await asyncio.sleep(0.01)
            assert started.is_set()
            assert await asyncio.wait_for(store.paused(), 10) == {"a": "HTTP 401"}
            assert not any(r.done() for r in readers)
        finally:
            release.set()
            await asyncio.gather(*readers)
            await store.aclose()


class TestPostgresHistory:
    async def test_figures_read_no_history(self, postgres_url):
        """On PostgreSQL too, the figures come from index searches, not a scan of deliveries."""
        import psycopg

        store = PostgresStore(postgres_url)
        try:
            with psycopg.connect(postgres_url, autocommit=True) as conn:
                conn.execute(
                    "INSERT INTO events (event_id, event_name, event_time, accepted_at, input,"
                    " payload) SELECT 'e' || i, 'checkout', %(old)s::bigint, %(old)s, '', ''"
                    " FROM generate_series(1, %(n)s) i",
                    {"old": NOW - 2 * DAY, "n": HISTORY + 5},
                )
                conn.execute(
                    "INSERT INTO deliveries (event_row, destination, state, due_at, expires_at,"
                    " finished_at) SELECT id, 'a', CASE WHEN id <= %(h)s THEN 'delivered'"
                    " WHEN id <= %(h)s + 3 THEN 'queued' ELSE 'dead' END, %(old)s, %(now)s,"
                    " CASE WHEN id = 1 THEN %(now)s - 60 WHEN id <= %(h)s THEN %(old)s"
                    " WHEN id > %(h)s + 3 THEN %(now)s - 10 END FROM events",
                    {"h": HISTORY, "old": NOW - 2 * DAY, "now": NOW},
                )
                conn.execute("VACUUM ANALYZE deliveries")
                queries = load_queries("postgres")
                for name in ("queue_stats", "dead_letters_since"):
                    sql = queries[name].replace(":now", "%(now)s").replace(":since", "%(since)s")
                    plan = "\n".join(
                        row[0]
                        for row in conn.execute(
                            f"EXPLAIN {sql}",  # type: ignore[arg-type]
                            {"now": NOW, "since": NOW - 3600},
                        )
                    )
                    assert "Seq Scan on deliveries" not in plan, (name, plan)
            [stats] = await store.stats(now=NOW)
            assert (stats.queued, stats.delivered, stats.dead) == (3, 1, 2)
            assert await store.dead_letters_since(since=NOW - 3600) == {"a": 2}
        finally:
            await store.aclose()
