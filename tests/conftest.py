"""Suite-wide fixtures: a clean environment and the anyio backend."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PINBRIDGE_* or PINTEREST_* variable of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith(("PINBRIDGE_", "PINTEREST_")) and name not in (
            "PINTEREST_OPENAPI",
            "PINBRIDGE_REQUIRE_SPEC",
        ):
            monkeypatch.delenv(name)


@pytest.fixture(name="anyio_backend")
def _anyio_backend() -> str:
    return "asyncio"


# -- PostgreSQL: one throw-away cluster per session, one database per test ----------------------

PG_TEMPLATE = "pinbridge_tmpl"


class PgDatabases:
    """Creates a fresh, migrated database per test from a template (procrastinate's way:
    ``CREATE DATABASE ... TEMPLATE`` costs tens of milliseconds, migrating costs more)."""

    def __init__(self, cluster: object) -> None:
        from pinbridge.testing import ThrowawayCluster

        assert isinstance(cluster, ThrowawayCluster)
        self.cluster = cluster
        self.count = 0

    def create(self, *, migrated: bool = True) -> str:
        """A new database (empty unless ``migrated``); returns its URL."""
        import psycopg

        self.count += 1
        name = f"test_{self.count}"
        template = f" TEMPLATE {PG_TEMPLATE}" if migrated else ""
        with psycopg.connect(self.cluster.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}{template}")  # type: ignore[arg-type]
        return self.cluster.url(name)


@pytest.fixture(scope="session", name="pg_databases")
def _pg_databases() -> Iterator[PgDatabases]:
    """A PostgreSQL server from the system's binaries, started once; never skipped: when the
    binaries are missing the tests that need it fail, saying what to install."""
    import psycopg

    from pinbridge.store.postgres import migrate
    from pinbridge.testing import PostgresMissing, ThrowawayCluster

    try:
        cluster = ThrowawayCluster().start()
    except PostgresMissing as exc:
        pytest.fail(f"{exc}. The PostgreSQL tests are never skipped.", pytrace=False)
    try:
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {PG_TEMPLATE}")  # type: ignore[arg-type]
        with psycopg.connect(cluster.url(PG_TEMPLATE)) as conn:
            migrate(conn)
        yield PgDatabases(cluster)
    finally:
        cluster.stop()


@pytest.fixture(name="postgres_url")
def _postgres_url(pg_databases: PgDatabases) -> str:
    """The URL of a fresh, migrated PostgreSQL database for this test."""
    return pg_databases.create()
