"""The dashboard's login over HTTP, in process: off the event loop, throttled, logout, odd
cookies."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx2
import pytest
from starlette.applications import Starlette

from pinbridge.config import DashboardSettings, Settings, StoreSettings
from pinbridge.service import build_acceptor, build_service
from pinbridge.store.memory import MemoryStore
from pinbridge.web.auth import Sessions, hash_password, verify_password
from pinbridge.web.collector import Collector, collector_routes
from pinbridge.web.dashboard import COOKIE, Dashboard, dashboard_routes

pytestmark = pytest.mark.anyio
PASSWORD = "integration-password"
#: How long a test waits for something that should happen at once before failing (not timed).
PATIENCE = 10.0


def settings(**dashboard: Any) -> Settings:
    users = {"ops": hash_password(PASSWORD, iterations=1000)}
    return Settings(
        store=StoreSettings(url="memory:"),
        dashboard=DashboardSettings(users=users, **dashboard),
        embedded_emulator=True,
    )


@pytest.fixture(name="http")
async def _http() -> AsyncIterator[httpx2.AsyncClient]:
    """The whole service (collector, dashboard) from its settings, one client address."""
    service = build_service(settings(), with_sender=False)
    transport = httpx2.ASGITransport(app=service.app, client=("203.0.113.9", 4000))
    async with httpx2.AsyncClient(transport=transport, base_url="http://pb.local") as http:
        yield http
    await service.store.aclose()


async def login(http: httpx2.AsyncClient, password: str, user: str = "ops") -> httpx2.Response:
    return await http.post("/ui/login", data={"user": user, "password": password})


class TestLoginOffTheLoop:
    async def test_healthz_answers_while_a_password_is_hashed(self):
        """While a login's hash runs, the same process still answers /healthz."""
        hashing, done = threading.Event(), threading.Event()
        seen: dict[str, object] = {}

        def verify(password: str, stored: str) -> bool:
            hashing.set()
            seen["released"] = done.wait(PATIENCE)  # False: the loop was blocked meanwhile
            seen["thread"] = threading.current_thread()
            return verify_password(password, stored)

        store = MemoryStore()
        sessions = Sessions({"ops": hash_password(PASSWORD, iterations=1000)}, verify=verify)
        collector = Collector(
            build_acceptor(settings(), store),
            write_keys=["wk"],
            max_body_bytes=10_000,
            max_events=10,
        )
        app = Starlette(
            routes=collector_routes(collector) + dashboard_routes(Dashboard(store, sessions))
        )
        transport = httpx2.ASGITransport(app=app, client=("203.0.113.9", 4000))
        async with httpx2.AsyncClient(transport=transport, base_url="http://pb.local") as http:
            attempt = asyncio.ensure_future(login(http, PASSWORD))
            assert await anyio.to_thread.run_sync(hashing.wait, PATIENCE)
            health = await http.get("/healthz")
            done.set()
            answer = await attempt
        assert health.status_code == 200
        assert seen["released"] is True
        assert seen["thread"] is not threading.main_thread()
        assert answer.status_code == 303


class TestLoginThrottle:
    async def test_too_many_attempts_get_429(self, http):
        """An address gets five attempts a minute; the sixth is 429 with Retry-After, even
        with the right password, and /healthz is not affected."""
        for _ in range(5):
            assert (await login(http, "wrong password")).status_code == 401
        refused = await login(http, PASSWORD)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "12"
        assert "Too many login attempts" in refused.text
        assert COOKIE not in refused.cookies
        assert (await http.get("/healthz")).status_code == 200

    async def test_parallel_attempts_are_bounded(self, http):
        """Of many logins sent at once, those beyond the hashes in flight or the address's
        budget are refused with 429 instead of queueing."""
        answers = await asyncio.gather(*(login(http, f"wrong {i}") for i in range(8)))
        codes = sorted(a.status_code for a in answers)
        assert set(codes) <= {401, 429}
        assert codes.count(401) <= 5 and codes.count(429) >= 3
        assert all(a.headers.get("retry-after") for a in answers if a.status_code == 429)

    async def test_other_address_still_logs_in(self, http):
        """One address's spent budget does not lock out another's login."""
        for _ in range(6):
            await login(http, "wrong password")
        service = build_service(settings(), with_sender=False)  # same users, fresh process
        transport = httpx2.ASGITransport(app=service.app, client=("198.51.100.7", 1))
        async with httpx2.AsyncClient(transport=transport, base_url="http://pb.local") as other:
            assert (await login(other, PASSWORD)).status_code == 303
        await service.store.aclose()


async def session_cookie(http: httpx2.AsyncClient) -> str:
    """A fresh session's cookie value, taken out of the client's jar (tests send it by hand)."""
    answer = await login(http, PASSWORD)
    assert answer.status_code == 303
    cookie = answer.cookies[COOKIE]
    http.cookies.clear()
    return cookie


def as_session(cookie: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={cookie}"}


class TestLogout:
    async def test_copied_cookie_is_refused_after_logout(self, http):
        """A session cookie captured before logout no longer opens /ui or /ui/api/* after it;
        another session of the same user stays valid (also after odd logouts)."""
        copied, other = await session_cookie(http), await session_cookie(http)
        assert (await http.get("/ui/api/status", headers=as_session(copied))).status_code == 200
        out = await http.post("/ui/logout", headers=as_session(copied))
        assert (out.status_code, out.headers["location"]) == (303, "/ui/login")
        assert 'pinbridge_session=""' in out.headers["set-cookie"]
        http.cookies.clear()
        assert (await http.get("/ui/api/status", headers=as_session(copied))).status_code == 401
        page = await http.get("/ui", headers=as_session(copied))
        assert (page.status_code, page.headers["location"]) == (303, "/ui/login")
        replay = await http.post(
            "/ui/dead/replay", headers=as_session(copied), data={"csrf": "x", "all": "1"}
        )
        assert replay.status_code == 303 and replay.headers["location"] == "/ui/login"
        assert (await http.get("/ui/api/status", headers=as_session(other))).status_code == 200
        for headers in ({}, as_session(f"{copied[:-3]}xyz")):  # none, or forged: no error
            out = await http.post("/ui/logout", headers=headers)
            assert (out.status_code, out.headers["location"]) == (303, "/ui/login")
        assert (await http.get("/ui/api/status", headers=as_session(other))).status_code == 200


class TestThrottleSettings:
    async def test_attempts_per_minute_is_honoured(self):
        """``login_attempts_per_minute = 2``: the third attempt is refused, and the wait is
        one attempt's share of a minute."""
        service = build_service(settings(login_attempts_per_minute=2), with_sender=False)
        transport = httpx2.ASGITransport(app=service.app, client=("203.0.113.9", 4000))
        async with httpx2.AsyncClient(transport=transport, base_url="http://pb.local") as http:
            for _ in range(2):
                assert (await login(http, "wrong password")).status_code == 401
            refused = await login(http, PASSWORD)
        await service.store.aclose()
        assert (refused.status_code, refused.headers["retry-after"]) == (429, "30")

    async def test_hashes_in_flight_is_honoured(self, monkeypatch):
        """``login_hashes_in_flight = 1``: while one password is hashed, a second login (with
        budget left) is refused with ``Retry-After: 1``; the first then completes."""
        hashing, done = threading.Event(), threading.Event()
        pbkdf2 = hashlib.pbkdf2_hmac

        def slow_pbkdf2(*args: Any, **kwargs: Any) -> bytes:
            hashing.set()
            done.wait(PATIENCE)
            return pbkdf2(*args, **kwargs)

        service = build_service(settings(login_hashes_in_flight=1), with_sender=False)
        monkeypatch.setattr(hashlib, "pbkdf2_hmac", slow_pbkdf2)
        transport = httpx2.ASGITransport(app=service.app, client=("203.0.113.9", 4000))
        async with httpx2.AsyncClient(transport=transport, base_url="http://pb.local") as http:
            first = asyncio.ensure_future(login(http, PASSWORD))
            assert await anyio.to_thread.run_sync(hashing.wait, PATIENCE)
            second = await login(http, PASSWORD)
            done.set()
            answer = await first
        await service.store.aclose()
        assert (second.status_code, second.headers["retry-after"]) == (429, "1")
        assert answer.status_code == 303


class TestOddCookies:
    @pytest.mark.parametrize("value", ["admin|9999999999|é", "ops|9999999999|€", "é"])
    async def test_non_ascii_session_cookie_is_not_logged_in(self, http, value):
        """A session cookie with non-ASCII characters is a logged-out visitor, not a 500."""
        headers = {"Cookie": f"{COOKIE}={value}".encode()}  # UTF-8, as curl sends it
        page = await http.get("/ui", headers=headers)
        assert (page.status_code, page.headers["location"]) == (303, "/ui/login")
        api = await http.get("/ui/api/status", headers=headers)
        assert api.status_code == 401

    async def test_non_ascii_csrf_token_is_403(self, http):
        """A replay form with a non-ASCII CSRF token is refused, not a 500."""
        assert (await login(http, PASSWORD)).status_code == 303
        answer = await http.post("/ui/dead/replay", data={"csrf": "é€", "all": "1"})
        assert answer.status_code == 403
