"""The Starlette app: Pinterest's endpoints, then the ``/_emulator`` control and inspection API.

``POST /v5/ad_accounts/{id}/events`` runs, in this order: injected faults (latency, dropped
connection, 500/503, a burst of 429), then Pinterest's checks: 401 ``{code: 2}``, 403
``{code: 29}``, the path id (400), the per-account rate limit (429 ``{code: 8}`` with
``Retry-After``), the ``test`` flag (400), the body (400 ``{code: 4196}``), each event (422
``{code: 953}`` when any fails), else 200.

``/_emulator/*`` needs no token: the emulator is a local test tool.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from typing import Any, Final

import anyio
import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from pinbridge.pinterest.emulator.config import EmulatorConfig, FaultSettings
from pinbridge.pinterest.emulator.drops import ConnectionDropped
from pinbridge.pinterest.emulator.quality import (
    INGESTION_SOURCES,
    LOOKBACK_DAYS,
    SOURCE_PLATFORMS,
    event_quality_scores,
)
from pinbridge.pinterest.emulator.state import EmulatorState
from pinbridge.pinterest.emulator.validation import BodyValidator, InvalidBody
from pinbridge.pinterest.schema import (
    ConversionApiResponse,
    DetailedError,
    Error,
    EventResult,
)

__all__ = ["create_emulator_app"]

_ACCOUNT_ID: Final = re.compile(r"[0-9]{1,18}")
_INVALID_EVENTS: Final = (
    "The action could not be processed properly due to some or all data provided being invalid."
)
_RATE_LIMITED: Final = (
    "This request exceeded a rate limit. This can happen if the client exceeds one\n"
    "of the published rate limits within a short time window."
)
_RAMPED_DOWN: Final = (
    "The endpoint has been ramped down and is currently not accepting any traffic."
)
_PROCESSED: Final = EventResult(status="processed")
_encode = msgspec.json.encode


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_encode(body), status, headers, media_type="application/json")


def _error(status: int, code: int, message: str, **headers: str) -> Response:
    return _json(Error(code=code, message=message), status, headers or None)


class _Gate:
    """Bearer-token and ad-account checks shared by Pinterest's endpoints."""

    def __init__(self, config: EmulatorConfig) -> None:
        self._tokens = config.tokens

    def refuse(self, request: Request, ad_account_id: str) -> Response | None:
        """401 or 403 in Pinterest's words, or ``None`` when the caller may go on."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return _error(401, 2, "Authentication failed.")
        if self._tokens is None:
            return None
        accounts = self._tokens.get(token)
        if accounts is None:
            return _error(401, 2, "Authentication failed.")
        if ad_account_id not in accounts:
            return _error(403, 29, "You are not permitted to access that resource.")
        return None


def _bad_account_id(ad_account_id: str) -> str | None:
    if _ACCOUNT_ID.fullmatch(ad_account_id):
        return None
    if len(ad_account_id) > 18 and ad_account_id.isascii() and ad_account_id.isdigit():
        return f"{ad_account_id!r} is too long (at ad_account_id)"
    return f"{ad_account_id!r} does not match '^\\\\d+$' (at ad_account_id)"


class _EventsEndpoint:
    """``POST /v5/ad_accounts/{ad_account_id}/events`` as a raw ASGI app (it may drop)."""

    def __init__(self, state: EmulatorState, rng: random.Random) -> None:
        self._state = state
        self._rng = rng
        self._gate = _Gate(state.config)
        self._validator = BodyValidator(state.config)
        self._bad_request = state.config.schema_error_code

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        body = await request.body()
        faults = self._state.faults
        if faults.latency_ms:
            await anyio.sleep(faults.latency_ms / 1000)
        if faults.drop_rate and self._rng.random() < faults.drop_rate:
            self._state.stats.dropped_connections += 1
            head = [(b"content-type", b"application/json"), (b"content-length", b"2")]
            await send({"type": "http.response.start", "status": 200, "headers": head})
            raise ConnectionDropped("connection dropped by fault injection")
        response = self._answer(request, body, faults)
        self._state.count_status(response.status_code)
        await response(scope, receive, send)

    def _answer(self, request: Request, body: bytes, faults: FaultSettings) -> Response:
        state = self._state
        if faults.error_rate and self._rng.random() < faults.error_rate:
            status = self._rng.choice(faults.error_statuses)
            if status == 503:
                return _error(503, 4197, _RAMPED_DOWN)
            return _error(status, 1, "Internal error (injected by the emulator).")
        if state.burst_remaining > 0:
            state.burst_remaining -= 1
            return _error(429, 8, _RATE_LIMITED, **{"Retry-After": str(faults.retry_after_seconds)})
        ad_account_id: str = request.path_params["ad_account_id"]
        refused = self._gate.refuse(request, ad_account_id)
        if refused is not None:
            return refused
        problem = _bad_account_id(ad_account_id)
        if problem is not None:
            return _error(400, self._bad_request, f"Invalid request: {problem}")
        wait = state.rate_limiter.acquire(ad_account_id)
        if wait is not None:
            return _error(429, 8, _RATE_LIMITED, **{"Retry-After": str(wait)})
        flag = request.query_params.get("test", "false")
        if flag.lower() not in ("true", "false"):
            message = f"Invalid request: {flag!r} is not of type 'boolean' (at test)"
            return _error(400, self._bad_request, message)
        test = flag.lower() == "true"
        if test:
            token = request.headers.get("authorization", "").partition(" ")[2].strip()
            wait = state.test_limiter.acquire(token)
            if wait is not None:
                return _error(429, 8, _RATE_LIMITED, **{"Retry-After": str(wait)})
        try:
            events, dropped = self._validator.decode(body)
        except InvalidBody as exc:
            return _error(400, self._bad_request, exc.message)
        checks = self._validator.check(events.data, state.clock(), dropped)
        state.record(ad_account_id, events.data, checks, test=test)
        results = [
            _PROCESSED
            if not c.reasons and not c.warning_message
            else EventResult(
                status="failed" if c.reasons else "processed",
                error_message=c.error_message,
                warning_message=c.warning_message,
            )
            for c in checks
        ]
        processed = sum(1 for c in checks if not c.reasons)
        answer = ConversionApiResponse(len(results), processed, results)
        if processed == len(results):
            return _json(answer)
        return _json(DetailedError(code=953, message=_INVALID_EVENTS, details=answer), 422)


class _Inspection:
    """``/_emulator/*`` and ``conversion_eqs``: read (and reset) what the emulator holds."""

    def __init__(self, state: EmulatorState) -> None:
        self._state = state
        self._gate = _Gate(state.config)

    async def faults(self, request: Request) -> Response:
        state = self._state
        if request.method == "POST":
            try:
                change = msgspec.json.decode(await request.body(), type=dict[str, Any])
                merged = {**msgspec.to_builtins(state.faults), **change}
                state.set_faults(msgspec.convert(merged, FaultSettings))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                return _error(400, 4196, f"Invalid request: {exc}")
        return _json(msgspec.structs.replace(state.faults, burst_429=state.burst_remaining))

    async def events(self, request: Request) -> Response:
        params = request.query_params
        try:
            since = int(params.get("since", "0"))
            limit = int(params["limit"]) if "limit" in params else None
        except ValueError:
            return _error(400, 4196, "Invalid request: since and limit must be integers")
        records = self._state.recorded(params.get("ad_account_id"), since, limit)
        last = records[-1].seq if records else since
        return _json({"events": records, "count": len(records), "last_seq": last})

    async def stats(self, request: Request) -> Response:
        return _json(self._state.snapshot())

    async def reset(self, request: Request) -> Response:
        self._state.reset()
        return _json({"reset": True})

    async def conversion_eqs(self, request: Request) -> Response:
        ad_account_id: str = request.path_params["ad_account_id"]
        refused = self._gate.refuse(request, ad_account_id)
        if refused is not None:
            return refused
        problem = _bad_account_id(ad_account_id)
        if problem is not None:
            return _error(400, 1, f"Invalid parameters: {problem}")
        params = request.query_params
        lookback = params.get("lookback_period")
        if lookback not in LOOKBACK_DAYS:
            return _error(400, 1, "Invalid parameters: lookback_period must be one of 1d, 14d")
        for name, allowed in (
            ("source_platform", SOURCE_PLATFORMS),
            ("ingestion_source", INGESTION_SOURCES),
        ):
            if name in params and params[name] not in allowed:
                return _error(400, 1, f"Invalid parameters: {name} must be one of {allowed}")
        since = self._state.clock() - LOOKBACK_DAYS[lookback] * 86400
        records = [r for r in self._state.recorded(ad_account_id) if r.received_at >= since]
        scores = event_quality_scores(
            records,
            lookback_period=lookback,
            source_platform=params.get("source_platform"),
            ingestion_source=params.get("ingestion_source"),
        )
        return _json(scores)


def create_emulator_app(
    config: EmulatorConfig,
    *,
    clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
) -> Starlette:
    """A Starlette app emulating Pinterest's Conversions API for ``config``.

    Args:
        config: tokens, strictness, limits and initial faults.
        clock: Unix time in seconds; inject one to test time windows.
        rng: decides injected faults; default ``random.Random(config.seed)``.
    """
    state = EmulatorState(config, clock)
    events = _EventsEndpoint(state, rng if rng is not None else random.Random(config.seed))
    inspection = _Inspection(state)
    routes = [
        Route("/v5/ad_accounts/{ad_account_id}/events", events, methods=["POST"]),
        Route(
            "/v5/ad_accounts/{ad_account_id}/conversion_eqs",
            inspection.conversion_eqs,
            methods=["GET"],
        ),
        Route("/_emulator/faults", inspection.faults, methods=["GET", "POST"]),
        Route("/_emulator/events", inspection.events, methods=["GET"]),
        Route("/_emulator/stats", inspection.stats, methods=["GET"]),
        Route("/_emulator/reset", inspection.reset, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.emulator = state
    return app
