"""The dashboard: ``/ui``, server-rendered pages behind a login, charts drawn by vendored uPlot.

Pages (every table works without JavaScript; the charts need it):

* ``/ui``: delivery status, throughput and outcomes, error codes, dedup rate and freshness
  over time, resilience level with reasons, signal coverage, catalog mismatches, Pinterest's
  Event Quality Score, attribution.
* ``/ui/events?q=``: event history by event id, order id or email (searched by its digest):
  the input with PII removed, the payload sent, identity enrichment, Pinterest's answers.
* ``/ui/dead``: dead letters, with a replay button (POST with a CSRF token).
* ``/ui/api/status``, ``/ui/api/timeline?window=1h``, ``/ui/api/quality?since=24h``: the
  same figures as JSON (for the charts, and for scripts holding a session cookie).

Login: ``/ui/login`` checks a configured user's password (see :mod:`pinbridge.web.auth`) and
sets an HttpOnly, SameSite=Strict session cookie; ``/ui/logout`` revokes that session, not
just the cookie in the browser. The password is hashed in a worker thread, so a login never
holds up the event loop (collection, delivery, ``/healthz``); attempts are throttled per
client address and in total (429 with ``Retry-After``). Without a configured user every page
says how to configure one and shows nothing else.
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from importlib import resources
from typing import Any, Final

import jinja2
import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pinbridge.diagnostics import EqsFetcher, quality_report, status_report, timeline
from pinbridge.normalize import Normalizer
from pinbridge.quality import EVENT_DATA, IDENTIFIERS
from pinbridge.report import attribute
from pinbridge.store.base import Store
from pinbridge.web.auth import LoginThrottle, Sessions
from pinbridge.web.proxies import TrustedProxies

__all__ = ["Dashboard", "dashboard_routes"]

COOKIE: Final = "pinbridge_session"
UPLOT: Final = "vendor/uplot-1.6.32"
#: Chart windows offered, in seconds, with their bucket size.
WINDOWS: Final = {
    "1h": (3600, 60),
    "6h": (6 * 3600, 300),
    "24h": (86400, 900),
    "7d": (7 * 86400, 3600),
}
SINCE: Final = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "14d": 14 * 86400}
_STATIC: Final = {
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
    f"{UPLOT}/uPlot.iife.min.js": "text/javascript",
    f"{UPLOT}/uPlot.min.css": "text/css",
}
_MAX_FORM: Final = 64_000
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class Dashboard:
    """Request handlers for ``/ui``.

    Args:
        store: the store.
        sessions: users and session signing.
        eqs: per destination, a fetcher of Pinterest's Event Quality Score.
        default_region: for normalising searched phone numbers and emails.
        secure_cookie: mark the session cookie ``Secure`` (HTTPS only).
        clock: seconds since the epoch.
        throttle: how often login may be tried (default: :class:`LoginThrottle`'s limits).
        trusted_proxies: whose forwarding headers name the client, for the throttle.
    """

    def __init__(
        self,
        store: Store,
        sessions: Sessions,
        *,
        eqs: Mapping[str, EqsFetcher] | None = None,
        default_region: str = "US",
        secure_cookie: bool = False,
        clock: Callable[[], float] = time.time,
        throttle: LoginThrottle | None = None,
        trusted_proxies: TrustedProxies | None = None,
    ) -> None:
        self._store = store
        self._sessions = sessions
        self._throttle = throttle or LoginThrottle()
        self._proxies = trusted_proxies or TrustedProxies(())
        self._eqs = dict(eqs or {})
        self._normalizer = Normalizer(default_region=default_region, cache_size=0)
        self._secure = secure_cookie
        self._clock = clock
        self._env = jinja2.Environment(
            loader=jinja2.PackageLoader("pinbridge.web", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self._env.filters["ts"] = _timestamp
        self._env.filters["pct"] = _percent
        self._env.filters["secs"] = _seconds
        self._env.filters["pretty"] = _pretty_json
        self._static = resources.files("pinbridge.web").joinpath("static")

    # -- plumbing -----------------------------------------------------------------------------

    def _render(self, name: str, request: Request, status: int = 200, **context: Any) -> Response:
        cookie = request.cookies.get(COOKIE, "")
        csrf = self._sessions.csrf(cookie) if cookie else ""
        html = self._env.get_template(name).render(
            csrf=csrf, user=self._sessions.user(cookie), uplot=UPLOT, **context
        )
        return HTMLResponse(html, status_code=status, headers=_SECURITY_HEADERS)

    def _guard(
        self, handler: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """Let only logged-in users through; others go to the login page (JSON: 401)."""

        async def guarded(request: Request) -> Response:
            if not self._sessions.enabled:
                return self._render("disabled.html", request, status=503)
            if self._sessions.user(request.cookies.get(COOKIE)) is None:
                if request.url.path.startswith("/ui/api/"):
                    return _json({"error": "log in at /ui/login"}, 401)
                return RedirectResponse("/ui/login", status_code=303)
            return await handler(request)

        return guarded

    async def _form(self, request: Request) -> list[tuple[str, str]] | None:
        """The POSTed form's fields when its CSRF token matches the session, else ``None``."""
        fields = await _fields(request)
        cookie = request.cookies.get(COOKIE, "")
        token = next((v for k, v in fields if k == "csrf"), "")
        if not cookie or not self._sessions.check_csrf(cookie, token):
            return None
        return fields

    # -- login ----------------------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        if not self._sessions.enabled:
            return self._render("disabled.html", request, status=503)
        return self._render("login.html", request, error="")

    async def login(self, request: Request) -> Response:
        if not self._sessions.enabled:
            return self._render("disabled.html", request, status=503)
        form = dict(await _fields(request))
        user, password = form.get("user", ""), form.get("password", "")
        peer = request.client.host if request.client else ""
        address = self._proxies.client_ip(peer, request.headers.items())
        wait = self._throttle.acquire(address, self._clock())
        if wait:
            error = f"Too many login attempts; try again in {wait:.0f} s."
            response = self._render("login.html", request, status=429, error=error)
            response.headers["Retry-After"] = f"{wait:.0f}"
            return response
        # Shielded: a cancelled request must not cancel a hash not yet started, or its
        # throttle slot would never come back.
        cookie = await asyncio.shield(asyncio.to_thread(self._check, user, password))
        if cookie is None:
            return self._render("login.html", request, status=401, error="Wrong user or password.")
        response = RedirectResponse("/ui", status_code=303)
        response.set_cookie(
            COOKIE, cookie, httponly=True, samesite="strict", secure=self._secure, path="/ui"
        )
        return response

    def _check(self, user: str, password: str) -> str | None:
        """In a worker thread: the password's hash, then the throttle's slot back (when the
        request was cancelled meanwhile, the slot stays taken until the hash ends)."""
        try:
            return self._sessions.login(user, password)
        finally:
            self._throttle.release()

    async def logout(self, request: Request) -> Response:
        """Revoke the session (in this process, until it would have expired) and drop the
        cookie: a copy of it no longer logs anyone in."""
        self._sessions.logout(request.cookies.get(COOKIE))
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie(COOKIE, path="/ui")
        return response

    # -- pages ----------------------------------------------------------------------------

    async def overview(self, request: Request) -> Response:
        now = self._clock()
        window = request.query_params.get("window", "1h")
        window = window if window in WINDOWS else "1h"
        since_key = request.query_params.get("since", "24h")
        since_key = since_key if since_key in SINCE else "24h"
        status = await status_report(self._store, now=now)
        quality = await quality_report(
            self._store, since=now - SINCE[since_key], now=now, eqs=self._eqs
        )
        span, bucket = WINDOWS[window]
        series = await timeline(self._store, since=now - span, now=now, bucket=bucket)
        rows = await self._store.attribution_rows(since=now - 30 * 86400, window=30 * 86400)
        return self._render(
            "overview.html",
            request,
            status=200,
            report=status,
            quality=quality,
            series=series,
            series_json=msgspec.json.encode(series).decode().replace("</", "<\\/"),
            identifier_keys=list(IDENTIFIERS),
            data_keys=list(EVENT_DATA),
            attribution=attribute(rows),
            window=window,
            windows=list(WINDOWS),
            since=since_key,
            sinces=list(SINCE),
        )

    async def events(self, request: Request) -> Response:
        query = request.query_params.get("q", "").strip()[:200]
        found = []
        if query:
            event_id, needle = self._needle(query)
            for event in await self._store.history(event_id=event_id, needle=needle, limit=20):
                found.append(event)
        return self._render("events.html", request, query=query, found=found)

    def _needle(self, query: str) -> tuple[str, bytes | None]:
        """What to look for: the event id itself, and a payload fragment (an email's digest,
        a digest given as is, or the order id as the payload spells it)."""
        if "@" in query:
            digests, _ = self._normalizer.hash_values("em", [query])
            return query, digests[0].encode() if digests else None
        if _HEX64.match(query):
            return query, query.lower().encode()
        return query, b'"order_id":' + msgspec.json.encode(query)

    async def dead(self, request: Request) -> Response:
        letters = await self._store.dead_letters(limit=500)
        message = request.query_params.get("replayed")
        return self._render("dead.html", request, letters=letters, replayed=message)

    async def replay(self, request: Request) -> Response:
        form = await self._form(request)
        if form is None:
            return Response("CSRF token missing or wrong", status_code=403)
        if ("all", "1") in form:
            ids = [letter.id for letter in await self._store.dead_letters(limit=10_000_000)]
        else:
            ids = [int(v) for k, v in form if k == "id" and v.isdigit()]
        count = await self._store.replay(ids, now=self._clock()) if ids else 0
        return RedirectResponse(f"/ui/dead?replayed={count}", status_code=303)

    # -- JSON -----------------------------------------------------------------------------

    async def api_status(self, request: Request) -> Response:
        return _json(await status_report(self._store, now=self._clock()))

    async def api_timeline(self, request: Request) -> Response:
        window = request.query_params.get("window", "1h")
        if window not in WINDOWS:
            return _json({"error": f"window must be one of {', '.join(WINDOWS)}"}, 400)
        span, bucket = WINDOWS[window]
        now = self._clock()
        return _json(await timeline(self._store, since=now - span, now=now, bucket=bucket))

    async def api_quality(self, request: Request) -> Response:
        since = request.query_params.get("since", "24h")
        if since not in SINCE:
            return _json({"error": f"since must be one of {', '.join(SINCE)}"}, 400)
        now = self._clock()
        report = await quality_report(self._store, since=now - SINCE[since], now=now, eqs=self._eqs)
        return _json(report)

    async def static(self, request: Request) -> Response:
        path = request.path_params["path"]
        if path not in _STATIC:
            return Response("not found", status_code=404)
        body = self._static.joinpath(path).read_bytes()
        headers = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
        return Response(body, media_type=_STATIC[path], headers=headers)


async def _fields(request: Request) -> list[tuple[str, str]]:
    """An ``application/x-www-form-urlencoded`` body (at most 64 kB), as pairs."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM:
            return []
    return urllib.parse.parse_qsl(body.decode("utf-8", errors="replace"), max_num_fields=10_000)


def _json(body: object, status: int = 200) -> Response:
    headers = {"Cache-Control": "no-store"}
    return Response(
        msgspec.json.encode(body),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _timestamp(value: float | None) -> str:
    if value is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(value)) + " UTC"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def _pretty_json(value: bytes | None) -> str:
    if not value:
        return ""
    try:
        return msgspec.json.format(value, indent=2).decode()
    except msgspec.DecodeError:
        return value.decode(errors="replace")


def dashboard_routes(dashboard: Dashboard) -> list[BaseRoute]:
    """The dashboard's routes, to mount in the app."""
    guard = dashboard._guard
    return [
        Route("/ui/login", dashboard.login_page, methods=["GET"]),
        Route("/ui/login", dashboard.login, methods=["POST"]),
        Route("/ui/logout", dashboard.logout, methods=["POST"]),
        Route("/ui/static/{path:path}", dashboard.static, methods=["GET"]),
        Route("/ui", guard(dashboard.overview), methods=["GET"]),
        Route("/ui/events", guard(dashboard.events), methods=["GET"]),
        Route("/ui/dead", guard(dashboard.dead), methods=["GET"]),
        Route("/ui/dead/replay", guard(dashboard.replay), methods=["POST"]),
        Route("/ui/api/status", guard(dashboard.api_status), methods=["GET"]),
        Route("/ui/api/timeline", guard(dashboard.api_timeline), methods=["GET"]),
        Route("/ui/api/quality", guard(dashboard.api_quality), methods=["GET"]),
    ]
