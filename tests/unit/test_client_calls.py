"""PinterestClient against MockTransport: splitting a call, ending it early, EQS and secrets."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx2
import pytest

from pinbridge.pinterest import errors
from pinbridge.pinterest.client import Outcome, PinterestClient
from tests.unit.test_client_outcomes import (
    ERROR_401,
    TOKEN,
    Recorder,
    _httpx_errors,
    _instance,
    all_processed,
    make,
    payloads,
    raising,
    reply,
)

pytestmark = pytest.mark.anyio


class TestSplitting:
    """One call, several requests, one outcome per payload in order."""

    async def test_by_count(self) -> None:
        """2,500 payloads go out as 3 requests of 1,000, 1,000 and 500, in order."""
        recorder = Recorder()
        events = payloads(2500)
        async with make(recorder) as client:
            outcomes = await client.send("123", events)
        assert [len(ids) for ids in recorder.event_ids()] == [1000, 1000, 500]
        assert [i for ids in recorder.event_ids() for i in ids] == [f"e{i}" for i in range(2500)]
        assert [o.kind for o in outcomes] == ["processed"] * 2500

    async def test_by_bytes(self) -> None:
        """A byte budget forces smaller requests, each within it."""
        recorder = Recorder()
        async with make(recorder, max_body_bytes=11 + 3 * 100 + 2) as client:
            outcomes = await client.send("123", payloads(10, size=100))
        assert [len(ids) for ids in recorder.event_ids()] == [3, 3, 3, 1]
        assert all(len(r.content) <= 313 for r in recorder.requests)
        assert len(outcomes) == 10 and {o.kind for o in outcomes} == {"processed"}

    async def test_oversized_event(self) -> None:
        """An event over the budget alone fails without being sent; the others are sent."""
        recorder = Recorder()
        events = payloads(5, size=50)
        events[2] = payloads(1, size=5000)[0].replace(b"e0", b"e2")
        async with make(recorder, max_body_bytes=1000) as client:
            outcomes = await client.send("123", events)
        assert recorder.event_ids() == [["e0", "e1", "e3", "e4"]]
        assert [o.kind for o in outcomes] == ["processed"] * 2 + ["failed"] + ["processed"] * 2
        assert "5000 bytes, over the request budget of 1000 bytes" in outcomes[2].message

    @pytest.mark.parametrize("broken", [b"", b"[1]", b'"x"', b'{"a":1'])
    async def test_not_an_object(self, broken: bytes) -> None:
        """A payload that is not a JSON object fails alone and is not sent."""
        recorder = Recorder()
        events = payloads(3)
        events[1] = broken
        async with make(recorder) as client:
            outcomes = await client.send("123", events)
        assert recorder.event_ids() == [["e0", "e2"]]
        assert [o.kind for o in outcomes] == ["processed", "failed", "processed"]
        assert outcomes[1].message == "the payload is not a JSON object"

    @pytest.mark.parametrize(
        ("status", "body", "kind"),
        [(429, {"code": 8, "message": "rate"}, "retry"), (401, ERROR_401, "stopped"),
         (503, {"code": 4197, "message": "down"}, "retry"), (500, None, "retry"),
         (408, None, "retry"), (302, None, "stopped")],
    )  # fmt: skip
    async def test_ends_early(self, status: int, body: Any, kind: str) -> None:
        """After an answer about the whole destination, later requests are not sent."""
        recorder = Recorder(reply(status, body, **{"Retry-After": "9"}))
        async with make(recorder) as client:
            outcomes = await client.send("123", payloads(2500))
        assert len(recorder.requests) == 1
        assert {o.kind for o in outcomes} == {kind}
        assert outcomes[999].http_status == status
        assert outcomes[1000].http_status is None
        assert outcomes[1000].message.startswith("not sent: an earlier request of this call got: ")
        expected_wait = 9.0 if kind == "retry" else None
        assert {o.retry_after for o in outcomes} == {expected_wait}

    async def test_ends_early_on_transport_failure(self) -> None:
        """After a request that got no answer, later requests are not sent."""
        recorder = Recorder(raising(httpx2.ConnectError("refused")))
        async with make(recorder) as client:
            outcomes = await client.send("123", payloads(1500))
        assert len(recorder.requests) == 1
        assert {o.kind for o in outcomes} == {"retry"}

    @pytest.mark.parametrize("status", [400, 422, 200])
    async def test_goes_on_after_a_chunk_problem(self, status: int) -> None:
        """A refusal of one request's content does not stop the next request."""
        answers = [reply(status, {"code": 4196, "message": "Invalid request: x"}), all_processed]
        recorder = Recorder(lambda request: answers[len(recorder.requests) - 1](request))
        async with make(recorder) as client:
            outcomes = await client.send("123", payloads(1500))
        assert len(recorder.requests) == 2
        assert {o.kind for o in outcomes[1000:]} == {"processed"}
        assert {o.kind for o in outcomes[:1000]} == {"retry" if status == 200 else "failed"}

    async def test_requests_are_reported(self) -> None:
        """``send_requests`` names each request's payloads: not the set-aside event, not
        the events left unsent after an answer that ended the call."""
        answers = [reply(400, {"code": 1, "message": "bad"}), all_processed, reply(429, {})]
        recorder = Recorder(lambda request: answers[len(recorder.requests) - 1](request))
        events = payloads(13, size=100)
        events[4] = b"[]"
        async with make(recorder, max_body_bytes=11 + 3 * 100 + 2) as client:
            sent = await client.send_requests("123", events)
        assert sent.requests == [[0, 1, 2], [3, 5, 6], [7, 8, 9]]  # not [10, 11, 12]
        statuses = [o.http_status for o in sent.outcomes]
        assert statuses == [400] * 3 + [200, None, 200, 200] + [429] * 3 + [None] * 3
        assert [o.kind for o in sent.outcomes[10:]] == ["retry"] * 3

    async def test_pace_may_stop_the_call(self) -> None:
        """When ``pace`` gives an outcome, that request and the later ones are not sent and
        their events get it."""
        recorder = Recorder()
        stop = Outcome("retry", message="not sent: stopped")
        answers = iter([None, stop])

        async def pace() -> Outcome | None:
            return next(answers)

        async with make(recorder, max_body_bytes=11 + 3 * 100 + 2) as client:
            sent = await client.send_requests("123", payloads(9, size=100), pace=pace)
        assert sent.requests == [[0, 1, 2]] and len(recorder.requests) == 1
        assert sent.outcomes[3:] == [stop] * 6
        assert client.timeout == 30.0


class TestConversionEqs:
    """``conversion_eqs``."""

    async def test_json(self) -> None:
        """GET with the given query; the JSON answer is returned decoded."""
        scores = [{"source_platform": "WEB", "overall_status": "GOOD"}]
        recorder = Recorder(reply(200, scores))
        async with make(recorder) as client:
            assert await client.conversion_eqs("123", lookback_period="14d") == scores
        [request] = recorder.requests
        assert request.method == "GET"
        assert str(request.url) == (
            "https://api.pinterest.com/v5/ad_accounts/123/conversion_eqs?lookback_period=14d"
        )

    async def test_api_error(self) -> None:
        """An error status raises ApiError with Pinterest's code."""
        async with make(Recorder(reply(401, ERROR_401))) as client:
            with pytest.raises(errors.ApiError) as info:
                await client.conversion_eqs("123", lookback_period="1d")
        assert (info.value.http_status, info.value.code) == (401, 2)
        assert str(info.value) == "Authentication failed. (HTTP 401, code 2)"

    async def test_not_json(self) -> None:
        """A 200 that is not JSON raises InvalidAnswer."""
        async with make(Recorder(reply(200, b"<html>"))) as client:
            with pytest.raises(errors.InvalidAnswer):
                await client.conversion_eqs("123")

    @pytest.mark.parametrize("cls", _httpx_errors(), ids=lambda cls: cls.__name__)
    async def test_transport(self, cls: type[Exception]) -> None:
        """httpx2's exceptions arrive as our TransportFailure."""
        async with make(Recorder(raising(_instance(cls)))) as client:
            with pytest.raises(errors.TransportFailure, match=cls.__name__):
                await client.conversion_eqs("123")


class TestSecrets:
    """The token appears in no repr, message, exception or log record."""

    def test_repr(self) -> None:
        """The repr shows the base URL and test mode, and the token as ``***``."""
        client = PinterestClient(token=TOKEN, test=True, base_url="http://127.0.0.1:8090/v5")
        assert repr(client) == (
            "PinterestClient(base_url='http://127.0.0.1:8090/v5', test=True, token='***')"
        )

    @pytest.mark.parametrize("token", [f"{TOKEN} ", f"\n{TOKEN}", f"{TOKEN}é"])
    def test_refused_token(self, token: str) -> None:
        """Refusing an unusable token does not quote it."""
        with pytest.raises(ValueError) as info:
            PinterestClient(token=token)
        assert TOKEN not in str(info.value) and TOKEN not in repr(info.value)

    async def test_everywhere(self, caplog: pytest.LogCaptureFixture) -> None:
        """Across answers, failures and exceptions, nothing shows the token."""
        caplog.set_level(logging.DEBUG)
        leaky = httpx2.LocalProtocolError(f"Illegal header value b'Bearer {TOKEN}'")
        handlers = [
            all_processed, reply(401, ERROR_401), reply(500, b"x"), reply(200, b"nope"),
            *[raising(_instance(cls)) for cls in _httpx_errors()], raising(leaky),
        ]  # fmt: skip
        texts: list[str] = []
        for handler in handlers:
            async with make(Recorder(handler)) as client:
                texts += [repr(o) for o in await client.send("123", payloads(2))]
                try:
                    await client.conversion_eqs("123")
                except errors.PinterestError as exc:
                    texts += [str(exc), repr(exc)]
                    cause = exc.__cause__
                    texts += [str(cause), repr(cause)] if cause is not None else []
                texts.append(repr(client))
        assert any("Bearer ***" in text for text in texts)
        assert not [text for text in texts if TOKEN in text]
        assert caplog.records
        assert not [r for r in caplog.records if TOKEN in r.getMessage()]
        assert TOKEN not in json.dumps([str(r.args) for r in caplog.records])
