"""Fixtures for the emulator tests: a fake clock, in-process clients and a real loopback server."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx2
import pytest
import uvicorn
from starlette.applications import Starlette

from pinbridge.pinterest.emulator import (
    DropLogFilter,
    EmulatorConfig,
    EmulatorTransport,
    create_emulator_app,
)

NOW = 1_750_000_000
H = hashlib.sha256(b"someone@example.com").hexdigest()
TOKEN = "tok-secret"
OTHER_TOKEN = "tok-other"
ACCOUNT = "123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TOKENS = {TOKEN: frozenset({ACCOUNT, "456"}), OTHER_TOKEN: frozenset({"999"})}


def event(now: int = NOW, **changes: Any) -> dict[str, Any]:
    """REFERENCE.md §9's ``E``, with ``changes`` applied (a value of ``...`` removes the key)."""
    body: dict[str, Any] = {
        "event_name": "checkout",
        "action_source": "web",
        "event_time": now,
        "event_id": "e1",
        "user_data": {"em": [H]},
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, now: float = NOW) -> None:
        self.now = float(now)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += seconds


@pytest.fixture(name="clock")
def _clock() -> FakeClock:
    """A fake clock at ``NOW``, shared by the in-process emulators of a test."""
    return FakeClock()


@pytest.fixture(name="make_emulator")
async def _make_emulator(
    clock: FakeClock,
) -> AsyncIterator[Callable[..., httpx2.AsyncClient]]:
    """Build in-process clients on fresh emulator apps; all closed at teardown."""
    clients: list[httpx2.AsyncClient] = []

    def make(config: EmulatorConfig | None = None, **options: Any) -> httpx2.AsyncClient:
        config = config or EmulatorConfig(tokens=TOKENS)
        app = create_emulator_app(config, clock=clock, **options)
        client = httpx2.AsyncClient(
            transport=EmulatorTransport(app=app), base_url="http://emulator"
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture(name="emulator")
def _emulator(make_emulator: Callable[..., httpx2.AsyncClient]) -> httpx2.AsyncClient:
    """An in-process client to an emulator with the test tokens and the fake clock."""
    return make_emulator()


class LiveEmulator:
    """A uvicorn server on loopback, running an emulator app in a background thread."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", ws="none"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        """The server's base URL."""
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __enter__(self) -> LiveEmulator:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the emulator server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(name="emulator_server", scope="session")
def _emulator_server() -> Iterator[LiveEmulator]:
    """One loopback emulator for the session (tests reset it through ``live_emulator``)."""
    drop_filter = DropLogFilter()
    logging.getLogger("uvicorn.error").addFilter(drop_filter)
    app = create_emulator_app(EmulatorConfig(tokens=TOKENS, seed=1))
    with LiveEmulator(app) as server:
        yield server
    logging.getLogger("uvicorn.error").removeFilter(drop_filter)


@pytest.fixture(name="live_emulator")
async def _live_emulator(emulator_server: LiveEmulator) -> AsyncIterator[httpx2.AsyncClient]:
    """A client over real HTTP to the loopback emulator, reset before each test."""
    async with httpx2.AsyncClient(base_url=emulator_server.url) as client:
        await client.post("/_emulator/reset")
        yield client
        await client.post("/_emulator/reset")
