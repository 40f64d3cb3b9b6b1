"""The browser side of the collector: ``GET /pb.js`` and its endpoint ``POST /v1/collect``.

``/v1/collect`` takes what pb.js sends (one Segment-style message or ``{"batch": [...]}``, as
JSON, usually with ``Content-Type: text/plain`` so that browsers send it without a CORS
preflight) and runs it through the collector's accept path, after filling in what only the
server knows:

* ``context.ip``: always the request's client address (the peer, or what a trusted proxy
  says; see :mod:`pinbridge.web.proxies`). A page cannot choose its own address.
* ``context.userAgent``: from the ``User-Agent`` header, when the message has none.
* ``context.cookies._epik`` and ``anonymousId``: from the first-party cookies ``_epik`` and
  ``_pb_aid``, when the message has none.

The answer sets those cookies from the server, so that browsers which cap the lifetime of
cookies written by scripts keep them (one year, ``Path=/``, ``SameSite=Lax``, ``Secure`` over
https): ``_epik`` when the page URL carries an ``epik`` (the URL wins over an older cookie),
``_pb_aid`` always (generated when missing; its year starts again at each request). ``_pb_aid``
is ``HttpOnly``: only the server reads it. ``_epik`` is not, because the Pinterest Tag reads
and writes a first-party cookie of the same name. A request whose events deny ads consent
sets no cookie and expires ``_epik``. A click id that cannot be a cookie value as it is (RFC
6265: printable ASCII without space, ``"``, ``,``, ``;`` or a backslash; at most 512
characters) is used for the events but not kept in a cookie; no cookie can turn accepted
events into an error answer.

The write key comes from ``?writeKey=`` or the body's ``writeKey`` (a beacon cannot send
HTTP Basic auth); HTTP Basic auth, when sent, wins, as on the collector's other endpoints.
CORS: each write key has an allow-list of site origins; a browser request from any other
origin gets 403 and is not accepted. The origin is judged on the key that authorizes the
request. A key without a list accepts only its own origin, except the development key (any
origin, for local testing with ``make run``). Origins are compared without case, a trailing
``/`` or a default port (``:443`` for https, ``:80`` for http).
"""

from __future__ import annotations

import gzip
import hashlib
import re
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from importlib import resources
from typing import Any, Final

import msgspec
import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pinbridge.filters import ads_consent_denied
from pinbridge.inputs.event import InputEvent
from pinbridge.inputs.fields import click_id_from_url, get_path
from pinbridge.mapping import DEFAULT_EVENT_MAP, EventMapper, name_key, primary_event
from pinbridge.metrics import Metrics
from pinbridge.pinterest.schema import EVENT_NAMES
from pinbridge.transform import TransformOptions
from pinbridge.web.collector import (
    Collector,
    _answer,
    _BadRequest,
    _basic_user,
    count_requests,
)
from pinbridge.web.proxies import TrustedProxies

__all__ = [
    "ANONYMOUS_ID_COOKIE",
    "COOKIE_MAX_AGE",
    "EPIK_COOKIE",
    "BrowserCollector",
    "CorsPolicy",
    "browser_routes",
    "tag_event_map",
]

log = structlog.get_logger("pinbridge.web.browser")

EPIK_COOKIE: Final = "_epik"
ANONYMOUS_ID_COOKIE: Final = "_pb_aid"
#: Lifetime of both cookies, in seconds: one year.
COOKIE_MAX_AGE: Final = 365 * 24 * 3600
_SCRIPT = resources.files("pinbridge.web").joinpath("static", "pb.js")
_MAP_SLOT = b"{/*EVENT_MAP*/}"
_ANY = "*"
#: What an anonymous id taken from a message must look like to become the cookie's value.
_COOKIE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
#: Click ids kept in a cookie: RFC 6265's cookie-octets (printable ASCII but space, ``"``,
#: ``,``, ``;`` and ``\``), at most 512 of them. Others are used for the event, not kept.
_COOKIE_EPIK = re.compile(r"[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]{1,512}")
#: Default ports, dropped from origins before comparing them.
_DEFAULT_PORTS: Final = (("https://", ":443"), ("http://", ":80"))
_PREFLIGHT_MAX_AGE = "86400"


def tag_event_map(options: TransformOptions) -> dict[str, Any]:
    """The table pb.js uses to name events for the Pinterest Tag, from the server's mapping.

    ``{"m": {<name key>: <tag event name>}, "u": <tag name of unmapped events, or "">}``.
    The tag name of a Pinterest event is its API name without underscores (``add_to_cart`` →
    ``addtocart``); advertiser-defined names stay as they are. When one input fans out to
    several Pinterest events, the tag gets the one that keeps the browser's event id
    (:func:`pinbridge.mapping.primary_event`).
    """
    mapper = EventMapper(
        options.mapping, unmapped=options.unmapped, extra_names=options.advertiser_event_names
    )
    names = set(DEFAULT_EVENT_MAP) | set(options.mapping) | EVENT_NAMES
    names |= options.advertiser_event_names
    table: dict[str, str] = {}
    for name in sorted(names):
        found = mapper.names_for(InputEvent(kind="track", name=name))
        if found:
            table[name_key(name)] = _tag_name(primary_event(found))
    return {"m": table, "u": "custom" if options.unmapped == "custom" else ""}


def _tag_name(event_name: str) -> str:
    return event_name.replace("_", "") if event_name in EVENT_NAMES else event_name


def _origin(value: str) -> str:
    """An origin as compared: lower case, without a trailing ``/`` or a default port."""
    origin = value.strip().rstrip("/").lower()
    for scheme, port in _DEFAULT_PORTS:
        if origin.startswith(scheme) and origin.endswith(port):
            return origin.removesuffix(port)
    return origin


class CorsPolicy:
    """Which site origins may send events with which write key.

    Args:
        origins: write key → allowed origins (``https://shop.example``; ``*`` for any).
        open_keys: keys that accept any origin when they have no list (the development key).
    """

    __slots__ = ("_any", "_open", "_origins")

    def __init__(self, origins: Mapping[str, Sequence[str]], open_keys: Collection[str]) -> None:
        self._origins = {k: frozenset(_origin(o) for o in v) for k, v in origins.items()}
        self._open = frozenset(open_keys)
        self._any = frozenset(o for listed in self._origins.values() for o in listed)

    def allows(self, origin: str, key: str | None, own_origin: str) -> bool:
        """Whether a browser on ``origin`` may send with ``key``.

        ``key`` is ``None`` only for a preflight without ``?writeKey=`` (a browser sends no
        credentials then): any listed origin passes, and the request itself is judged again.
        """
        origin = _origin(origin)
        if origin == _origin(own_origin):
            return True
        if key is None:
            return origin in self._any or _ANY in self._any or bool(self._open)
        listed = self._origins.get(key)
        if listed is None:
            return key in self._open
        return origin in listed or _ANY in listed


class BrowserCollector:
    """``GET /pb.js`` and ``POST``/``OPTIONS /v1/collect``, on top of a :class:`Collector`.

    Args:
        collector: reads bodies, checks keys and limits, and runs the accept path.
        cors: the origins allowed per write key.
        trusted_proxies: networks whose forwarding headers are believed.
        event_map: :func:`tag_event_map`'s table, embedded in pb.js.
        new_id: makes anonymous ids.
    """

    def __init__(
        self,
        collector: Collector,
        *,
        cors: CorsPolicy,
        trusted_proxies: TrustedProxies,
        event_map: Mapping[str, Any],
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._collector = collector
        self._cors = cors
        self._proxies = trusted_proxies
        self._new_id = new_id
        script = _SCRIPT.read_bytes().replace(_MAP_SLOT, msgspec.json.encode(event_map))
        self.script = script
        self._script_gz = gzip.compress(script, compresslevel=9, mtime=0)
        self._etag = '"' + hashlib.sha256(script).hexdigest()[:16] + '"'

    async def script_js(self, request: Request) -> Response:
        """``GET /pb.js``: cacheable for an hour, gzip when the browser takes it."""
        headers = {
            "Cache-Control": "public, max-age=3600",
            "ETag": self._etag,
            "Vary": "Accept-Encoding",
        }
        if self._etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        body = self.script
        if "gzip" in request.headers.get("accept-encoding", "").lower():
            body, headers["Content-Encoding"] = self._script_gz, "gzip"
        return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)

    @property
    def metrics(self) -> Metrics:
        """The collector's metrics, where this route's requests are counted too."""
        return self._collector.metrics

    async def preflight(self, request: Request) -> Response:
        """``OPTIONS /v1/collect``: 204 for an allowed origin, 403 otherwise."""
        origin = request.headers.get("origin")
        key = request.query_params.get("writeKey")
        if origin is None or not self._cors.allows(origin, key, self._own_origin(request)):
            return Response(status_code=403, headers={"Vary": "Origin"})
        response = Response(status_code=204)
        self._allow(response, origin)
        response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type, Content-Encoding"
        response.headers["Access-Control-Max-Age"] = _PREFLIGHT_MAX_AGE
        return response

    async def collect(self, request: Request) -> Response:
        """``POST /v1/collect``: pb.js's events, completed from the request, then accepted."""
        collector = self._collector
        origin = request.headers.get("origin")
        # The key the collector will authorize (Basic auth first), so that CORS is judged on it.
        key = _basic_user(request.headers.get("authorization", ""))
        key = key or request.query_params.get("writeKey")
        try:
            body = await collector._body(request)
            messages, sent_at = _messages(body)
            if key is None and isinstance(body.get("writeKey"), str):
                key = body["writeKey"]
            if origin is not None and not self._cors.allows(origin, key, self._own_origin(request)):
                response = collector._json(
                    {
                        "success": False,
                        "code": "forbidden",
                        "message": "origin not allowed for this write key",
                    },
                    403,
                )
                response.headers["Vary"] = "Origin"
                return response
            key = collector._authorize(request, {"writeKey": key})
            collector._check_count(len(messages), key)
        except _BadRequest as exc:
            response = collector._error(exc)
            if origin is not None and self._cors.allows(origin, key, self._own_origin(request)):
                self._allow(response, origin)
            return response
        peer = request.client.host if request.client else ""
        ip = self._proxies.client_ip(peer, request.headers.items())
        cookies = request.cookies
        anonymous_id = cookies.get(ANONYMOUS_ID_COOKIE) or _first_anonymous_id(messages)
        if not anonymous_id or not _COOKIE_ID.fullmatch(anonymous_id):
            anonymous_id = self._new_id()
        for message in messages:
            if isinstance(message, dict):
                _complete(
                    message,
                    ip=ip,
                    user_agent=request.headers.get("user-agent"),
                    epik=cookies.get(EPIK_COOKIE),
                    anonymous_id=anonymous_id,
                )
        results = await collector._accept(messages, sent_at)
        response = collector._json(_answer(results))
        if origin is not None:
            self._allow(response, origin)
        try:
            self._set_cookies(response, request, messages, anonymous_id)
        except Exception:  # the events are accepted: an error now would make pb.js resend them
            log.exception("could not set the browser cookies")
        return response

    def _own_origin(self, request: Request) -> str:
        return f"{self._scheme(request)}://{request.headers.get('host', '')}"

    def _scheme(self, request: Request) -> str:
        peer = request.client.host if request.client else ""
        return self._proxies.scheme(peer, request.headers.items(), request.url.scheme)

    @staticmethod
    def _allow(response: Response, origin: str) -> None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Vary"] = "Origin"

    def _set_cookies(
        self, response: Response, request: Request, messages: list[Any], anonymous_id: str
    ) -> None:
        secure = self._scheme(request) == "https"
        if any(ads_consent_denied(m) for m in messages):
            if EPIK_COOKIE in request.cookies:
                response.delete_cookie(EPIK_COOKIE, path="/", secure=secure, samesite="lax")
            return
        epik = _url_epik(messages)
        if epik and _COOKIE_EPIK.fullmatch(epik):
            response.set_cookie(
                EPIK_COOKIE, epik, max_age=COOKIE_MAX_AGE, secure=secure, samesite="lax"
            )
        response.set_cookie(
            ANONYMOUS_ID_COOKIE,
            anonymous_id,
            max_age=COOKIE_MAX_AGE,
            secure=secure,
            httponly=True,
            samesite="lax",
        )


def _messages(body: Any) -> tuple[list[Any], object]:
    """The messages of a body and the batch's ``sentAt``."""
    if isinstance(body, dict) and isinstance(body.get("batch"), list):
        return body["batch"], body.get("sentAt")
    if isinstance(body, dict):
        return [body], None
    raise _BadRequest('the body must be a message or {"batch": [...]}')


def _first_anonymous_id(messages: list[Any]) -> str | None:
    for message in messages:
        value = message.get("anonymousId") if isinstance(message, dict) else None
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _complete(
    message: dict[str, Any],
    *,
    ip: str,
    user_agent: str | None,
    epik: str | None,
    anonymous_id: str,
) -> None:
    """Fill in what the server knows and the browser did not say."""
    if message.get("context") is None:
        message["context"] = {}
    context = message["context"]
    if not isinstance(context, dict):
        return
    context["ip"] = ip
    if user_agent and not context.get("userAgent"):
        context["userAgent"] = user_agent
    if epik:
        cookies = context.setdefault("cookies", {})
        if isinstance(cookies, dict) and not cookies.get(EPIK_COOKIE):
            cookies[EPIK_COOKIE] = epik
    if not message.get("anonymousId"):
        message["anonymousId"] = anonymous_id


def _url_epik(messages: list[Any]) -> str | None:
    """The click id of the last message whose page URL carries one."""
    for message in reversed(messages):
        url = get_path(message, "context", "page", "url")
        epik = click_id_from_url(url) if isinstance(url, str) else None
        if epik:
            return epik
    return None


def browser_routes(browser: BrowserCollector) -> list[Route]:
    """The browser routes, to mount beside the collector's."""
    return [
        Route("/pb.js", browser.script_js, methods=["GET"]),
        Route(
            "/v1/collect",
            count_requests("/v1/collect", browser.collect, browser.metrics),
            methods=["POST"],
        ),
        Route("/v1/collect", browser.preflight, methods=["OPTIONS"]),
    ]
