"""The delivery client: sends encoded events to Pinterest (or the emulator) and says what became
of each one.

One ``PinterestClient`` per destination holds one pooled ``httpx2.AsyncClient`` with HTTP
keep-alive, its conversion token and its ``test`` mode. ``send`` splits the events into
requests Pinterest accepts (``batching``), posts them in order and turns every answer, and
every failure to get one, into one ``Outcome`` per event (``outcomes``); ``send_requests``
also says which events went in which request. Nothing above this
module sees an httpx2 exception, and the token never appears in a log record, a message, a
``str`` or a ``repr``.

Usage::

    async with PinterestClient(token=token, test=True) as client:
        outcomes = await client.send("549755885175", [msgspec.json.encode(event)])
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import Any, Final

import anyio
import httpx2
import msgspec

from pinbridge.pinterest.batching import ENVELOPE_BYTES, join_body, plan_chunks
from pinbridge.pinterest.errors import (
    ClientClosed,
    InvalidAnswer,
    Timeout,
    TransportFailure,
    translate_httpx_errors,
)
from pinbridge.pinterest.outcomes import (
    Outcome,
    api_error,
    classify_answer,
    outcomes_for_failure,
    parse_retry_after,
)
from pinbridge.pinterest.schema import API_BASE

__all__ = [
    "API_BASE",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_TIMEOUT",
    "KEEPALIVE_EXPIRY",
    "Outcome",
    "PinterestClient",
    "SentRequests",
]

#: Seconds one request may take in all, from connecting to the last byte of the answer.
DEFAULT_TIMEOUT: Final = 30.0
#: Pinterest publishes no body limit; Tealium's connector caps its batches at 2 MB, so we do
#: too. 1,000 typical events (300 to 1,000 bytes each) fit well below it.
DEFAULT_MAX_BODY_BYTES: Final = 2_000_000
#: Connections kept per destination; requests beyond wait for one (within the timeout).
DEFAULT_MAX_CONNECTIONS: Final = 10
#: Seconds an idle connection is kept open for reuse (httpx2's default).
KEEPALIVE_EXPIRY: Final = 5.0

_ACCOUNT_ID: Final = re.compile(r"[0-9]{1,18}")
_TOKEN: Final = re.compile(r"[\x21-\x7e]+")
# Statuses after which the rest of a call is not sent: they concern the destination or the
# endpoint as a whole (and sending more would only add load), not one request's content.
_ENDS_CALL: Final = frozenset({401, 403, 404, 405, 408, 410, 429})

logger = logging.getLogger(__name__)


class SentRequests(msgspec.Struct, frozen=True):
    """What one call did: an outcome per payload, and the requests that carried them.

    Args:
        outcomes: one per payload, in the caller's order.
        requests: the requests that got an answer (or failed to), in sending order, each as
            the indices of the payloads it carried. Events set aside (oversized, not a JSON
            object) and events left unsent after an answer that ended the call are in none.
    """

    outcomes: list[Outcome]
    requests: list[list[int]]


def _user_agent() -> str:
    try:
        return f"pinbridge/{version('pinbridge')}"
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "pinbridge"


class PinterestClient:
    """A connection pool to Pinterest's Conversions API for one destination.

    Args:
        token: the conversion token (or an OAuth token with ``ads:write``), sent as
            ``Authorization: Bearer``; printable ASCII without spaces.
        base_url: Pinterest's API base, or an emulator's (``http://127.0.0.1:8090/v5``).
        test: send every request with ``?test=true`` (Pinterest validates and records
            nothing); ``send`` can override it per call.
        timeout: seconds one request may take in all. httpx2's timeouts are per phase (a
            slow trickle of bytes resets the read timeout), so a deadline bounds the whole.
        max_body_bytes: the largest request body; events are split to stay under it.
        transport: an httpx2 transport instead of the network (``ASGITransport`` on the
            emulator app, ``MockTransport`` in tests).
        max_connections: the size of the connection pool, all kept alive between requests.

    Proxy settings are not read from the environment (``trust_env=False``): configuration
    is read at pinbridge's edge, not here.
    """

    def __init__(
        self,
        *,
        token: str,
        base_url: str = API_BASE,
        test: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        transport: httpx2.AsyncBaseTransport | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        if not _TOKEN.fullmatch(token):
            raise ValueError("token must be non-empty printable ASCII without spaces")
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        if max_body_bytes <= ENVELOPE_BYTES:
            raise ValueError(f"max_body_bytes must be over {ENVELOPE_BYTES}")
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._base_url = _check_base_url(base_url)
        self._token = token
        self._test = test
        self._timeout = timeout
        self._max_body_bytes = max_body_bytes
        self._closed = False
        self._http = httpx2.AsyncClient(
            base_url=self._base_url,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": _user_agent(),
            },
            timeout=httpx2.Timeout(timeout),
            limits=httpx2.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_connections,
                keepalive_expiry=KEEPALIVE_EXPIRY,
            ),
            transport=transport,
            follow_redirects=False,
            trust_env=False,
        )

    @property
    def base_url(self) -> str:
        """The API base requests go to."""
        return self._base_url

    @property
    def timeout(self) -> float:
        """Seconds one request may take in all."""
        return self._timeout

    @property
    def test(self) -> bool:
        """Whether requests are sent with ``?test=true`` unless a call says otherwise."""
        return self._test

    def __repr__(self) -> str:
        return f"PinterestClient(base_url={self._base_url!r}, test={self._test}, token='***')"

    async def send(
        self,
        ad_account_id: str,
        payloads: Sequence[bytes],
        *,
        test: bool | None = None,
        pace: Callable[[], Awaitable[Outcome | None]] | None = None,
    ) -> list[Outcome]:
        """Send events to an ad account; one outcome per payload, in the same order.

        The events are split into requests of at most 1,000 events and ``max_body_bytes``
        bytes, each body built by joining the payloads (``{"data":[p1,p2,...]}``) without
        re-encoding them. Requests go out one after the other, in order. An event that alone
        exceeds the byte budget, or that is not a JSON object, is ``failed`` without being
        sent. Once a request is answered 3xx, 401, 403, 404, 405, 408, 410, 429 or 5xx, or gets
        no answer, the remaining requests are not sent and their events get the same kind of
        outcome.

        Args:
            ad_account_id: 1 to 18 digits (``ValueError`` otherwise).
            payloads: each event already JSON-encoded, as by
                ``msgspec.json.encode(ConversionEvent)``; none gives ``[]``.
            test: ``?test=true`` for this call; ``None`` keeps the client's mode.
            pace: awaited before each request (the sender takes a token of the ad account's
                rate limit there, and waits when there is none). When it returns an
                ``Outcome``, that request and the later ones are not sent: their events get
                that outcome (the sender stops a round that would outlast its lease).

        Raises:
            ClientClosed: after ``aclose()``.
        """
        sent = await self.send_requests(ad_account_id, payloads, test=test, pace=pace)
        return sent.outcomes

    async def send_requests(
        self,
        ad_account_id: str,
        payloads: Sequence[bytes],
        *,
        test: bool | None = None,
        pace: Callable[[], Awaitable[Outcome | None]] | None = None,
    ) -> SentRequests:
        """:meth:`send`, also saying which payloads each request carried.

        A caller that treats a request refused as a whole (400, 413) by splitting it needs
        to know what the request held: a call of several requests can get a 400 for one and
        a 200 for another.
        """
        path = _path(ad_account_id, "events")
        self._check_open()
        outcomes: list[Outcome | None] = [None] * len(payloads)
        sizes: list[int] = []
        for index, payload in enumerate(payloads):
            sizes.append(len(payload))
            if not _is_json_object(payload):
                outcomes[index] = Outcome("failed", message="the payload is not a JSON object")
                sizes[index] = self._max_body_bytes  # set aside as oversized, never sent
        plan = plan_chunks(sizes, max_body_bytes=self._max_body_bytes)
        for index in plan.oversized:
            if outcomes[index] is None:
                outcomes[index] = Outcome(
                    "failed",
                    message=f"the event takes {sizes[index]} bytes, over the request budget "
                    f"of {self._max_body_bytes} bytes; it was not sent",
                )
        params = {"test": "true"} if (self._test if test is None else test) else None
        requests: list[list[int]] = []
        for number, chunk in enumerate(plan.chunks):
            stop = await pace() if pace is not None else None
            if stop is not None:
                for later in plan.chunks[number:]:
                    for index in later:
                        outcomes[index] = stop
                break
            results, ends = await self._post_events(path, [payloads[i] for i in chunk], params)
            requests.append(chunk)
            for index, outcome in zip(chunk, results, strict=True):
                outcomes[index] = outcome
            if ends:
                unsent = _unsent(results[0])
                for later in plan.chunks[number + 1 :]:
                    for index in later:
                        outcomes[index] = unsent
                break
        done = [outcome for outcome in outcomes if outcome is not None]
        return SentRequests(outcomes=done, requests=requests)

    async def conversion_eqs(self, ad_account_id: str, **params: str) -> Any:
        """Pinterest's Event Quality Score for an ad account, as decoded JSON.

        ``GET /ad_accounts/{id}/conversion_eqs`` with ``params`` as the query (for example
        ``lookback_period="14d"``), against Pinterest or the emulator alike.

        Raises:
            ApiError: Pinterest answered with an error status.
            TransportFailure: no answer came back (``Timeout``, ``ConnectionFailure``,
                ``ProtocolFailure``).
            InvalidAnswer: the answer is not JSON.
            ClientClosed: after ``aclose()``.
        """
        path = _path(ad_account_id, "conversion_eqs")
        self._check_open()
        response = await self._request("GET", path, params=params)
        if not response.is_success:
            retry_after = parse_retry_after(response.headers.get("retry-after"), time.time())
            raise api_error(response.status_code, response.content, retry_after)
        try:
            return msgspec.json.decode(response.content)
        except msgspec.DecodeError as exc:
            status = response.status_code
            raise InvalidAnswer(f"Pinterest's HTTP {status} answer is not JSON: {exc}") from exc

    async def aclose(self) -> None:
        """Close the pooled connections; the client cannot be used afterwards."""
        self._closed = True
        await self._http.aclose()

    async def __aenter__(self) -> PinterestClient:
        self._check_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosed()

    async def _post_events(
        self, path: str, chunk: list[bytes], params: dict[str, str] | None
    ) -> tuple[list[Outcome], bool]:
        """Outcomes of one request, and whether the rest of the call must not be sent."""
        body = join_body(chunk)
        started = time.perf_counter()
        try:
            response = await self._request("POST", path, content=body, params=params)
        except TransportFailure as failure:
            logger.debug("POST %s: %d events, %d bytes: %s", path, len(chunk), len(body), failure)
            return outcomes_for_failure(failure, len(chunk)), True
        status = response.status_code
        logger.debug(
            "POST %s: %d events, %d bytes: HTTP %d in %.3f s",
            path, len(chunk), len(body), status, time.perf_counter() - started,
        )  # fmt: skip
        retry_after = parse_retry_after(response.headers.get("retry-after"), time.time())
        outcomes = classify_answer(status, response.content, len(chunk), retry_after=retry_after)
        return outcomes, status in _ENDS_CALL or 300 <= status < 400 or status >= 500

    async def _request(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx2.Response:
        """One exchange, bounded by the deadline, with httpx2's errors translated."""
        try:
            with anyio.fail_after(self._timeout), translate_httpx_errors(self._token):
                return await self._http.request(method, path, content=content, params=params)
        except TimeoutError:
            raise Timeout(
                f"The request to Pinterest timed out (no complete answer in {self._timeout} s)"
            ) from None


def _check_base_url(base_url: str) -> str:
    try:
        url = httpx2.URL(base_url)
    except httpx2.InvalidURL as exc:
        raise ValueError(f"invalid base_url {base_url!r}: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"base_url must be an absolute http(s) URL, not {base_url!r}")
    return base_url.rstrip("/")


def _path(ad_account_id: str, endpoint: str) -> str:
    if not isinstance(ad_account_id, str) or not _ACCOUNT_ID.fullmatch(ad_account_id):
        raise ValueError(f"ad_account_id must be 1 to 18 digits, not {ad_account_id!r}")
    return f"/ad_accounts/{ad_account_id}/{endpoint}"


def _is_json_object(payload: bytes) -> bool:
    """A cheap guard: one broken payload must not make Pinterest refuse its batch-mates."""
    return payload.lstrip()[:1] == b"{" and payload.rstrip()[-1:] == b"}"


def _unsent(first: Outcome) -> Outcome:
    """The outcome of an event left unsent because an earlier request of the call ended it."""
    return Outcome(
        first.kind,
        message=f"not sent: an earlier request of this call got: {first.message}",
        http_status=None,
        retry_after=first.retry_after,
    )
