"""PinterestClient against MockTransport: answers, failures and requests, as tables."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx2
import pytest

from pinbridge.pinterest import errors
from pinbridge.pinterest.client import Outcome, PinterestClient
from pinbridge.pinterest.outcomes import parse_retry_after

pytestmark = pytest.mark.anyio

TOKEN = "pina_SECRET-token-0123456789"
P = {"status": "processed", "error_message": "", "warning_message": ""}
INVALID_EVENTS = "The action could not be processed properly due to some or all data provided."
Handler = Callable[[httpx2.Request], httpx2.Response | Awaitable[httpx2.Response]]


def f(message: str) -> dict[str, str]:
    """A failed event status."""
    return {"status": "failed", "error_message": message, "warning_message": ""}


def ok(*events: dict[str, Any]) -> dict[str, Any]:
    """A 200 body with these event statuses."""
    processed = sum(e["status"] == "processed" for e in events)
    return {"num_events_received": len(events), "num_events_processed": processed,
            "events": list(events)}  # fmt: skip


def payloads(count: int, size: int = 0) -> list[bytes]:
    """``count`` distinct encoded events, padded to ``size`` bytes when given."""
    out = []
    for i in range(count):
        head = b'{"event_id":"e%d","pad":"' % i
        out.append(head + b"x" * max(0, size - len(head) - 2) + b'"}')
    return out


def all_processed(request: httpx2.Request) -> httpx2.Response:
    """Answer 200 with one processed status per event of the body (``[]`` to a GET)."""
    if request.method == "GET":
        return httpx2.Response(200, json=[])
    count = len(json.loads(request.content)["data"])
    return httpx2.Response(200, json=ok(*[P] * count))


class Recorder:
    """A MockTransport handler that records requests and delegates the answer."""

    def __init__(self, answer: Handler = all_processed) -> None:
        self.answer = answer
        self.requests: list[httpx2.Request] = []

    async def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        response = self.answer(request)
        return response if isinstance(response, httpx2.Response) else await response

    def event_ids(self) -> list[list[str]]:
        """The event ids of each request, in order."""
        return [[e["event_id"] for e in json.loads(r.content)["data"]] for r in self.requests]


def make(recorder: Recorder | Handler, **options: Any) -> PinterestClient:
    """A client whose transport is ``recorder``."""
    handler = recorder if isinstance(recorder, Recorder) else Recorder(recorder)
    return PinterestClient(token=TOKEN, transport=httpx2.MockTransport(handler), **options)


def reply(status: int, body: Any = None, **headers: str) -> Handler:
    """A handler giving one fixed answer; bytes are sent as they are, the rest as JSON."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return lambda request: httpx2.Response(status, content=content, headers=headers)


def raising(exc: Exception) -> Handler:
    """A handler that raises ``exc``, as a transport would."""

    def fail(request: httpx2.Request) -> httpx2.Response:
        raise exc

    return fail


Expected = tuple[str, str, str, float | None]


def want(
    kind: str, fragment: str = "", warning: str = "", retry_after: float | None = None
) -> Expected:
    """An expectation on one outcome."""
    return (kind, fragment, warning, retry_after)


ERROR_401 = {"code": 2, "message": "Authentication failed."}
ERROR_403 = {"code": 29, "message": "You are not permitted to access that resource."}
SCHEMA_400 = {"code": 4196, "message": "Invalid request: Additional properties are not allowed"}
RAMPED = {"code": 4197, "message": "The endpoint has been ramped down."}
PW = {**P, "warning_message": "language 'english' is ignored"}
# id, status, body, headers, expected outcomes of a two-event request
ANSWERS = [
    ("200-processed", 200, ok(P, P), {}, [want("processed"), want("processed")]),
    ("200-warning", 200, ok(PW, P), {},
     [want("processed", warning="language 'english' is ignored"), want("processed")]),
    ("200-with-failed", 200, ok(f("bad em"), P), {}, [want("failed", "bad em"), want("processed")]),
    ("200-null-messages", 200,
     ok(*[{"status": "processed", "error_message": None, "warning_message": None}] * 2), {},
     [want("processed"), want("processed")]),
    ("200-failed-without-message", 200, ok({"status": "failed"}, P), {},
     [want("failed", "without a message"), want("processed")]),
    ("200-unknown-status", 200, ok({"status": "queued"}, P), {},
     [want("retry", "unknown event status 'queued'"), want("processed")]),
    ("200-too-few-statuses", 200, ok(P), {}, [want("retry", "1 event statuses for 2 events")] * 2),
    ("200-not-json", 200, b"<html>oops</html>", {}, [want("retry", "could not be read")] * 2),
    ("200-wrong-shape", 200, {"ok": True}, {}, [want("retry", "could not be read")] * 2),
    ("204-empty", 204, b"", {}, [want("retry", "could not be read")] * 2),
    ("422-details", 422,
     {"code": 953, "message": INVALID_EVENTS, "details": ok(f("Invalid event_timestamp"), PW)},
     {}, [want("failed", "Invalid event_timestamp"),
          want("processed", warning=PW["warning_message"])]),
    ("422-no-details", 422, {"code": 953, "message": INVALID_EVENTS}, {},
     [want("failed", "does not say which events failed")] * 2),
    ("422-short-details", 422, {"code": 953, "message": INVALID_EVENTS, "details": ok(P)}, {},
     [want("failed", "code 953")] * 2),
    ("400-schema", 400, SCHEMA_400, {},
     [want("failed", "Additional properties are not allowed (HTTP 400, code 4196)")] * 2),
    ("400-not-json", 400, b"Bad Request", {}, [want("failed", "(HTTP 400)")] * 2),
    ("401", 401, ERROR_401, {"Retry-After": "5"},
     [want("stopped", "Authentication failed. (HTTP 401, code 2)")] * 2),
    ("403", 403, ERROR_403, {}, [want("stopped", "not permitted to access that resource")] * 2),
    ("301", 301, b"", {"Location": "https://api.pinterest.com/v5/"},
     [want("stopped", "unexpected redirect (HTTP 301); check the base URL")] * 2),
    ("404", 404, {"code": 3, "message": "Not found"}, {},
     [want("stopped", "Not found (HTTP 404, code 3): no events endpoint there; check the base URL")]
     * 2),
    ("404-html", 404, b"<html>Not Found</html>", {}, [want("stopped", "check the base URL")] * 2),
    ("405", 405, b"", {}, [want("stopped", "HTTP 405")] * 2),
    ("410", 410, b"", {}, [want("stopped", "HTTP 410")] * 2),
    ("413", 413, b"", {}, [want("failed", "HTTP 413")] * 2),
    ("409", 409, b"", {}, [want("failed", "HTTP 409")] * 2),
    ("408", 408, b"", {}, [want("retry", "HTTP 408")] * 2),
    ("429-seconds", 429, {"code": 8, "message": "rate limit"}, {"Retry-After": "7"},
     [want("retry", "code 8", retry_after=7.0)] * 2),
    ("429-no-header", 429, {"code": 8, "message": "rate limit"}, {}, [want("retry", "code 8")] * 2),
    ("500", 500, {"code": 1, "message": "Internal error"}, {},
     [want("retry", "Internal error (HTTP 500, code 1)")] * 2),
    ("502-html", 502, b"<html>Bad gateway</html>", {},
     [want("retry", "answer without Pinterest's error body (HTTP 502)")] * 2),
    ("503-4197", 503, RAMPED, {"Retry-After": "3"},
     [want("retry", "ramped down. (HTTP 503, code 4197)", retry_after=3.0)] * 2),
]  # fmt: skip


def check(outcomes: list[Outcome], expected: list[Any], status: int | None) -> None:
    """Each outcome has the expected kind, message fragment, warning and Retry-After."""
    assert len(outcomes) == len(expected)
    for outcome, (kind, fragment, warning, retry_after) in zip(outcomes, expected, strict=True):
        assert outcome.kind == kind, outcome
        assert fragment in outcome.message, outcome
        if kind != "processed":
            assert outcome.message
        assert outcome.warning == warning
        assert outcome.retry_after == retry_after
        assert outcome.http_status == status


class TestAnswers:
    """Every kind of answer becomes one outcome per event, in order."""

    @pytest.mark.parametrize(
        ("status", "body", "headers", "expected"), [pytest.param(*r[1:], id=r[0]) for r in ANSWERS]
    )
    async def test_table(
        self, status: int, body: Any, headers: dict[str, str], expected: list[Any]
    ) -> None:
        """The answer is read as the table says."""
        async with make(Recorder(reply(status, body, **headers))) as client:
            check(await client.send("123", payloads(2)), expected, status)

    async def test_retry_after_date(self) -> None:
        """A Retry-After given as an HTTP-date becomes seconds from now."""
        date = email.utils.formatdate(timeval=time.time() + 120, usegmt=True)
        answer = reply(429, {"code": 8, "message": "m"}, **{"Retry-After": date})
        async with make(Recorder(answer)) as client:
            [outcome] = await client.send("123", payloads(1))
        assert outcome.kind == "retry"
        assert outcome.retry_after is not None and 110 < outcome.retry_after <= 120


class TestParseRetryAfter:
    """``parse_retry_after``."""

    NOW = email.utils.parsedate_to_datetime("Wed, 21 Oct 2015 07:28:00 GMT").timestamp() - 30

    @pytest.mark.parametrize(
        ("value", "seconds"),
        [(None, None), ("7", 7.0), (" 12 ", 12.0), ("1.5", 1.5), ("0", 0.0), ("-3", None),
         ("soon", None), ("", None), ("inf", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 30.0),
         ("Wed, 21 Oct 2015 07:00:00 GMT", 0.0), ("Wed, 21 Oct 2015 07:28:00", None)],
    )  # fmt: skip
    def test_values(self, value: str | None, seconds: float | None) -> None:
        """Delay-seconds and HTTP-dates are read; anything else gives no advice."""
        assert parse_retry_after(value, self.NOW) == seconds


def _httpx_errors() -> list[type[Exception]]:
    """Every exception class httpx2 exports."""
    found = {
        value
        for name in dir(httpx2)
        if isinstance(value := getattr(httpx2, name), type) and issubclass(value, Exception)
        and not issubclass(value, Warning)
    }  # fmt: skip
    return sorted(found, key=lambda cls: cls.__name__)


def _instance(cls: type[Exception], message: str = "boom") -> Exception:
    request = httpx2.Request("POST", "https://api.pinterest.com/v5/ad_accounts/123/events")
    if issubclass(cls, httpx2.HTTPStatusError):
        return cls(message, request=request, response=httpx2.Response(500, request=request))
    try:
        return cls(message)
    except TypeError:
        return cls()


EXPECTED_CLASS = [
    (httpx2.ConnectTimeout, errors.Timeout), (httpx2.ReadTimeout, errors.Timeout),
    (httpx2.WriteTimeout, errors.Timeout), (httpx2.PoolTimeout, errors.Timeout),
    (httpx2.ConnectError, errors.ConnectionFailure), (httpx2.ReadError, errors.ConnectionFailure),
    (httpx2.WriteError, errors.ConnectionFailure), (httpx2.CloseError, errors.ConnectionFailure),
    (httpx2.RemoteProtocolError, errors.ProtocolFailure),
    (httpx2.LocalProtocolError, errors.ProtocolFailure),
    (httpx2.DecodingError, errors.ProtocolFailure), (httpx2.ProxyError, errors.TransportFailure),
    (httpx2.UnsupportedProtocol, errors.TransportFailure),
    (httpx2.TooManyRedirects, errors.TransportFailure),
    (httpx2.StreamConsumed, errors.ProtocolFailure), (httpx2.InvalidURL, errors.ProtocolFailure),
]  # fmt: skip


class TestTransportFailures:
    """httpx2's exceptions are translated at the boundary and never escape ``send``."""

    @pytest.mark.parametrize("cls", _httpx_errors(), ids=lambda cls: cls.__name__)
    async def test_every_httpx_exception(self, cls: type[Exception]) -> None:
        """Whatever httpx2 raises, every event gets ``retry`` naming the failure class."""
        async with make(Recorder(raising(_instance(cls)))) as client:
            outcomes = await client.send("123", payloads(3))
        assert [o.kind for o in outcomes] == ["retry"] * 3
        assert all(cls.__name__ in o.message and o.http_status is None for o in outcomes)

    @pytest.mark.parametrize(("source", "target"), EXPECTED_CLASS, ids=lambda c: c.__name__)
    def test_translation(self, source: type[Exception], target: type[Exception]) -> None:
        """Each httpx2 class maps onto the most specific class of our tree, chained."""
        original = _instance(source)
        with pytest.raises(errors.TransportFailure) as info, errors.translate_httpx_errors(TOKEN):
            raise original
        assert type(info.value) is target
        assert info.value.__cause__ is original

    def test_secret_in_httpx_message(self) -> None:
        """An httpx2 message quoting the token is redacted and not chained."""
        with pytest.raises(errors.ProtocolFailure) as info, errors.translate_httpx_errors(TOKEN):
            raise httpx2.LocalProtocolError(f"Illegal header value b'Bearer {TOKEN}'")
        assert TOKEN not in str(info.value) and "Bearer ***" in str(info.value)
        assert info.value.__cause__ is None and info.value.__suppress_context__

    async def test_deadline(self) -> None:
        """A request that takes longer than the timeout in all is a retry, even in process."""

        async def slow(request: httpx2.Request) -> httpx2.Response:
            await anyio.sleep(5)
            return all_processed(request)

        async with make(Recorder(slow), timeout=0.05) as client:
            outcomes = await client.send("123", payloads(2))
        assert [o.kind for o in outcomes] == ["retry"] * 2
        assert "timed out" in outcomes[0].message


class TestRequests:
    """What goes over the wire."""

    async def test_shape(self) -> None:
        """POST to the account's events path, bearer token, JSON, the joined body, no query."""
        recorder = Recorder()
        events = payloads(3)
        async with make(recorder) as client:
            await client.send("549755885175", events)
        [request] = recorder.requests
        assert request.method == "POST"
        assert str(request.url) == "https://api.pinterest.com/v5/ad_accounts/549755885175/events"
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.headers["content-type"] == "application/json"
        assert request.headers["user-agent"].startswith("pinbridge")
        assert request.content == b'{"data":[' + b",".join(events) + b"]}"

    @pytest.mark.parametrize(
        ("constructor", "call", "query"),
        [(False, None, ""), (True, None, "test=true"), (True, False, ""),
         (False, True, "test=true")],
    )  # fmt: skip
    async def test_test_mode(self, constructor: bool, call: bool | None, query: str) -> None:
        """``?test=true`` follows the call's flag, else the client's."""
        recorder = Recorder()
        async with make(recorder, test=constructor) as client:
            await client.send("123", payloads(1), test=call)
        assert recorder.requests[0].url.query.decode() == query

    async def test_base_url(self) -> None:
        """The base URL is configurable; a trailing slash does not matter."""
        recorder = Recorder()
        async with make(recorder, base_url="http://127.0.0.1:8090/v5/") as client:
            await client.send("1", payloads(1))
        assert str(recorder.requests[0].url) == "http://127.0.0.1:8090/v5/ad_accounts/1/events"

    @pytest.mark.parametrize("account", ["", "abc", "1" * 19, "12 3", "١٢٣", "1/../2", "12\n"])
    async def test_bad_ad_account_id(self, account: str) -> None:
        """An ad account id that is not 1 to 18 ASCII digits is refused before any request."""
        recorder = Recorder()
        async with make(recorder) as client:
            with pytest.raises(ValueError, match="ad_account_id"):
                await client.send(account, payloads(1))
            with pytest.raises(ValueError, match="ad_account_id"):
                await client.conversion_eqs(account)
        assert recorder.requests == []

    @pytest.mark.parametrize(
        "options",
        [{"token": ""}, {"token": "has space"}, {"token": "tök"}, {"base_url": "ftp://x/v5"},
         {"base_url": "/v5"}, {"timeout": 0}, {"max_body_bytes": 5}, {"max_connections": 0}],
    )  # fmt: skip
    def test_bad_options(self, options: dict[str, Any]) -> None:
        """Unusable options are programming errors."""
        with pytest.raises(ValueError):
            PinterestClient(**{"token": TOKEN, **options})

    async def test_nothing_to_send(self) -> None:
        """No payloads, no request."""
        recorder = Recorder()
        async with make(recorder) as client:
            assert await client.send("123", []) == []
        assert recorder.requests == []

    async def test_closed(self) -> None:
        """A closed client refuses to send."""
        client = make(Recorder())
        await client.aclose()
        with pytest.raises(errors.ClientClosed):
            await client.send("123", payloads(1))
        with pytest.raises(errors.ClientClosed):
            await client.conversion_eqs("123")
