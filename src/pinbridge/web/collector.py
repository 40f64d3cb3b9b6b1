"""The collector: Segment-compatible tracking API and Pinterest-shaped events over HTTP.

Endpoints (contract, DESIGN.md):

* ``POST /v1/track``, ``/v1/page``, ``/v1/screen``, ``/v1/identify``, ``/v1/alias``: one
  call; ``type`` comes from the path when the body lacks it.
* ``POST /v1/batch``: ``{"batch": [...]}``, as Segment's and RudderStack's SDKs send.
* ``POST /v1/pinterest/events``: ``{"data": [...]}`` of Pinterest-shaped events, raw PII
  allowed.
* ``GET /healthz``, ``GET /metrics``, and ``GET /openapi.json`` (this API described).

The write key is the HTTP Basic user name (or ``writeKey`` in the body, as analytics.js
sends it); an unknown key gets 401. Bodies may be gzip-compressed and are limited in size
(413 past the limit, also after decompression).

Answers: 200 with one result per event (``accepted``, ``duplicate``, ``ignored``,
``rejected`` with field-level errors) whenever anything in the request could be read, so one
bad event never costs the others; a single call that is rejected gets 400 with its errors;
400 when nothing can be read. Results are sent only after the store's commit.
"""

from __future__ import annotations

import base64
import binascii
import math
import time
import zlib
from collections.abc import Awaitable, Callable, Collection, Mapping
from importlib import resources
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pinbridge.accept import Acceptor, ItemResult
from pinbridge.inputs.segment import correct_clock_skew
from pinbridge.metrics import CONTENT_TYPE_LATEST, Metrics
from pinbridge.ratelimit import TokenBucket

__all__ = ["Collector", "KeyLimits", "collector_routes", "count_requests"]

_SINGLE = ("track", "page", "screen", "identify", "alias", "group")
_ERROR_CODES = {401: "unauthorized", 413: "payload_too_large", 429: "rate_limited"}
_OPENAPI = resources.files("pinbridge.web").joinpath("openapi.json")


class KeyLimits(msgspec.Struct, frozen=True):
    """Limits for one write key (``None``: the server-wide default)."""

    requests_per_minute: int | None = None
    max_body_bytes: int | None = None
    max_events: int | None = None


_NO_LIMITS = KeyLimits()


class _BadRequest(Exception):
    def __init__(self, message: str, status: int = 400, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class Collector:
    """Request handlers bound to an acceptor and the accepted write keys.

    Args:
        acceptor: the accept path.
        write_keys: keys accepted as HTTP Basic user names.
        max_body_bytes: the largest body taken, after decompression.
        max_events: the most events in one request.
        on_accept: called after events were accepted (wakes the sender).
        clock: seconds since the epoch.
        requests_per_minute: requests allowed per write key and minute (0: no limit);
            beyond it the answer is 429 with ``Retry-After``, which Segment's SDKs honour.
        metrics: where requests are counted; ``/metrics`` shows it.
        key_limits: per write key, limits that replace the server-wide ones.
    """

    def __init__(
        self,
        acceptor: Acceptor,
        *,
        write_keys: Collection[str],
        max_body_bytes: int,
        max_events: int,
        on_accept: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
        requests_per_minute: int = 0,
        metrics: Metrics | None = None,
        key_limits: Mapping[str, KeyLimits] | None = None,
    ) -> None:
        self._per_minute = requests_per_minute
        self._key_limits = dict(key_limits or {})
        self._buckets: dict[str, TokenBucket] = {}
        self.metrics = metrics or Metrics()
        self._acceptor = acceptor
        self._keys = frozenset(write_keys)
        self._max_events = max_events
        self._default_body = max_body_bytes
        # Bodies are read up to the largest limit of any key, then checked against the
        # limit of the key that sent them (a key may come inside the body).
        self._max_body = max(
            [max_body_bytes]
            + [k.max_body_bytes for k in self._key_limits.values() if k.max_body_bytes]
        )
        self._on_accept = on_accept
        self._clock = clock
        self._decode = msgspec.json.Decoder().decode
        self._encode = msgspec.json.Encoder().encode
        self._openapi = _OPENAPI.read_bytes()

    def _json(self, body: object, status: int = 200) -> Response:
        return Response(self._encode(body), status_code=status, media_type="application/json")

    async def healthz(self, request: Request) -> Response:
        return self._json({"status": "ok"})

    async def metrics_text(self, request: Request) -> Response:
        await self.metrics.refresh()
        return Response(self.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def openapi(self, request: Request) -> Response:
        """``GET /openapi.json``: the collector's own OpenAPI description."""
        return Response(self._openapi, media_type="application/json")

    async def single(self, request: Request) -> Response:
        kind = request.url.path.rsplit("/", 1)[-1]
        try:
            body = await self._body(request)
            if not isinstance(body, dict):
                raise _BadRequest("the body must be a JSON object")
            self._authorize(request, body)
        except _BadRequest as exc:
            return self._error(exc)
        body.setdefault("type", kind)
        if body.get("type") != kind:
            return self._error(_BadRequest(f"type {body.get('type')!r} sent to /v1/{kind}"))
        results = await self._accept([body], None)
        status = 400 if results[0].status == "rejected" else 200
        return self._json(_answer(results), status)

    async def batch(self, request: Request) -> Response:
        try:
            body = await self._body(request)
            if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
                raise _BadRequest('the body must be {"batch": [...]}')
            key = self._authorize(request, body)
            messages = body["batch"]
            self._check_count(len(messages), key)
        except _BadRequest as exc:
            return self._error(exc)
        for name in ("context", "integrations"):
            shared = body.get(name)
            if isinstance(shared, dict) and shared:
                _share(name, shared, messages)
        return self._json(_answer(await self._accept(messages, body.get("sentAt"))))

    async def pinterest_events(self, request: Request) -> Response:
        try:
            body = await self._body(request)
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise _BadRequest('the body must be {"data": [...]}')
            key = self._authorize(request, body)
            self._check_count(len(body["data"]), key)
        except _BadRequest as exc:
            return self._error(exc)
        messages = body["data"]
        # Pinterest-shaped events are recognised by event_name; make a missing one an error
        # of that event rather than a question of format.
        for message in messages:
            if isinstance(message, dict):
                message.setdefault("event_name", None)
        results = await self._acceptor.accept(messages, now=self._clock())
        if any(r.status == "accepted" for r in results):
            self._on_accept()
        return self._json(_answer(results))

    async def _accept(self, messages: list[Any], sent_at: object) -> list[ItemResult]:
        now = self._clock()
        for message in messages:
            if isinstance(message, dict):
                correct_clock_skew(message, sent_at, now)
        results = await self._acceptor.accept(messages, now=now)
        if any(r.status == "accepted" for r in results):
            self._on_accept()
        return results

    def _check_count(self, count: int, key: str | None = None) -> None:
        limits = self._key_limits.get(key) if key is not None else None
        most = (limits.max_events if limits else None) or self._max_events
        if count > most:
            raise _BadRequest(f"at most {most} events per request", 413)

    def _authorize(self, request: Request, body: dict[str, Any]) -> str:
        """The write key of a request, once it passed its key's limits."""
        key = _basic_user(request.headers.get("authorization", ""))
        if key is None and isinstance(body.get("writeKey"), str):
            key = body["writeKey"]
        if key is None or key not in self._keys:
            if key is None and _basic_password_only(request.headers.get("authorization", "")):
                raise _BadRequest(
                    "missing write key: send it as the HTTP Basic user name with an empty "
                    "password (curl -u KEY:), not as the password",
                    401,
                )
            raise _BadRequest("unknown or missing write key", 401)
        limits = self._key_limits.get(key, _NO_LIMITS)
        most = limits.max_body_bytes or self._default_body
        size = getattr(request.state, "body_size", 0)
        if size > most:
            raise _BadRequest(f"body larger than {most} bytes", 413)
        per_minute = limits.requests_per_minute or self._per_minute
        if per_minute:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(per_minute, burst=per_minute)
            wait = bucket.wait_time(self._clock())
            if wait > 0:
                raise _BadRequest(
                    f"more than {per_minute} requests per minute for this write key",
                    429,
                    retry_after=wait,
                )
        return key

    async def _body(self, request: Request) -> Any:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > self._max_body:
            raise _BadRequest(f"body larger than {self._max_body} bytes", 413)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self._max_body:
                raise _BadRequest(f"body larger than {self._max_body} bytes", 413)
            chunks.append(chunk)
        raw = b"".join(chunks)
        if request.headers.get("content-encoding", "").lower() == "gzip":
            raw = self._gunzip(raw)
        request.state.body_size = len(raw)
        if not raw.strip():
            raise _BadRequest("the body is empty")
        try:
            return self._decode(raw)
        except msgspec.DecodeError as exc:
            raise _BadRequest(f"the body is not valid JSON: {exc}") from None
        except RecursionError:  # msgspec's answer to ~1,000 nested arrays or objects
            raise _BadRequest("the body is nested too deeply") from None

    def _gunzip(self, raw: bytes) -> bytes:
        inflater = zlib.decompressobj(wbits=31)
        try:
            out = inflater.decompress(raw, self._max_body + 1)
        except zlib.error:
            raise _BadRequest("the body is not valid gzip") from None
        if len(out) > self._max_body or inflater.unconsumed_tail:
            raise _BadRequest(f"body larger than {self._max_body} bytes once decompressed", 413)
        return out

    def _error(self, exc: _BadRequest) -> Response:
        # Segment's and RudderStack's SDKs read ``code`` and ``message``; RudderStack's
        # retries a 4xx without ``code`` as if the network had failed.
        code = _ERROR_CODES.get(exc.status, "bad_request")
        response = self._json({"success": False, "code": code, "message": str(exc)}, exc.status)
        if exc.retry_after:
            response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        return response


def _basic_credentials(header: str) -> tuple[str, str] | None:
    """The user name and password of an HTTP Basic ``Authorization`` header, if it is one."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, _, password = decoded.partition(":")
    return user, password


def _basic_user(header: str) -> str | None:
    credentials = _basic_credentials(header)
    return (credentials[0] or None) if credentials else None


def _basic_password_only(header: str) -> bool:
    """Whether Basic credentials carry an empty user name but a password (a key misplaced)."""
    credentials = _basic_credentials(header)
    return credentials is not None and not credentials[0] and bool(credentials[1])


def _share(name: str, shared: dict[str, Any], messages: list[Any]) -> None:
    """Give each message of a batch the batch's own ``context`` or ``integrations``.

    Segment's HTTP API merges them into every call of the batch; the call's own keys win,
    and objects present on both sides are merged the same way (two levels down, enough for
    ``context.consent.categoryPreferences``; deeper, the call's object wins as a whole).
    """
    for message in messages:
        if isinstance(message, dict):
            own = message.get(name)
            message[name] = _merged(shared, own, 3) if isinstance(own, dict) else dict(shared)


def _merged(shared: dict[str, Any], own: dict[str, Any], depth: int) -> dict[str, Any]:
    merged = {**shared, **own}
    if depth > 1:
        for key, value in own.items():
            base = shared.get(key)
            if isinstance(value, dict) and isinstance(base, dict):
                merged[key] = _merged(base, value, depth - 1)
    return merged


def _answer(results: list[ItemResult]) -> dict[str, Any]:
    return {
        "success": all(r.status != "rejected" for r in results),
        "results": results,
    }


def collector_routes(collector: Collector) -> list[Route]:
    """The collector's routes, to mount in the app."""
    counted = [
        ("/v1/batch", collector.batch),
        ("/v1/import", collector.batch),
        ("/v1/pinterest/events", collector.pinterest_events),
    ]
    counted += [(f"/v1/{kind}", collector.single) for kind in _SINGLE]
    return [
        Route("/healthz", collector.healthz, methods=["GET"]),
        Route("/metrics", collector.metrics_text, methods=["GET"]),
        Route("/openapi.json", collector.openapi, methods=["GET"]),
    ] + [
        Route(path, count_requests(path, endpoint, collector.metrics), methods=["POST"])
        for path, endpoint in counted
    ]


Endpoint = Callable[[Request], Awaitable[Response]]


def count_requests(path: str, endpoint: Endpoint, metrics: Metrics) -> Endpoint:
    """``endpoint``, counting its answers in ``pinbridge_collector_requests_total`` by path
    and HTTP status (an unexpected error counts as 500 on its way out)."""
    counter = metrics.requests

    async def counted(request: Request) -> Response:
        try:
            response = await endpoint(request)
        except Exception:
            counter.labels(path, "500").inc()
            raise
        counter.labels(path, str(response.status_code)).inc()
        return response

    return counted
