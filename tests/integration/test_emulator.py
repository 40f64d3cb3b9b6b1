"""The Pinterest emulator: REFERENCE.md §9 and the rest of its contract, in process and on HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from pinbridge.pinterest.emulator import (
    ConnectionDropped,
    EmulatorConfig,
    FaultSettings,
    create_emulator_app,
)
from tests.integration.conftest import (
    ACCOUNT,
    AUTH,
    NOW,
    OTHER_TOKEN,
    TOKENS,
    FakeClock,
    H,
    event,
)
from tests.spec import schema_validator

pytestmark = pytest.mark.anyio

EVENTS = f"/v5/ad_accounts/{ACCOUNT}/events"
DAY = 86400
Body = Callable[[int], Any]


def one(**changes: Any) -> Body:
    """A body builder: ``{"data": [E]}`` with ``changes``, for a given ``now``."""
    return lambda now: {"data": [event(now, **changes)]}


def user(**fields: Any) -> Body:
    return one(user_data=fields)


def many(count: int) -> Body:
    return lambda now: {"data": [event(now, event_id=f"e{i}") for i in range(count)]}


def without_event_id(now: int) -> Any:
    return {"data": [event(now, event_id=...)]}


# id, body(now), headers, query, status, fragment of the message (400) or event error (422)
SECTION_9 = [
    ("01-unchanged", one(), AUTH, "", 200, None),
    (
        "02-ip-and-ua",
        user(client_ip_address="1.2.3.4", client_user_agent="UA"),
        AUTH,
        "",
        200,
        None,
    ),
    (
        "03-ip-without-ua",
        user(client_ip_address="1.2.3.4"),
        AUTH,
        "",
        400,
        "is not valid under any of the given schemas",
    ),
    ("04-ph-only", user(ph=[H]), AUTH, "", 400, "is not valid under any of the given schemas"),
    ("05-em-string", user(em=H), AUTH, "", 400, "is not of type 'array'"),
    ("06-em-plain-text", user(em=["test@example.com"]), AUTH, "", 422, "hashed format"),
    ("07-no-event-id", without_event_id, AUTH, "", 400, "'event_id' is a required property"),
    (
        "08a-time-string",
        one(event_time="1700000000"),
        AUTH,
        "",
        400,
        "'1700000000' is not of type 'integer'",
    ),
    (
        "08b-time-float",
        one(event_time=1700000000.5),
        AUTH,
        "",
        400,
        "1700000000.5 is not of type 'integer'",
    ),
    (
        "09-eight-days-old",
        lambda now: {"data": [event(now, event_time=now - 8 * DAY)]},
        AUTH,
        "",
        422,
        "Invalid event_timestamp parameter. Given timestamp is in the past. Current timestamp: ",
    ),
    (
        "10-milliseconds",
        lambda now: {"data": [event(now, event_time=now * 1000)]},
        AUTH,
        "",
        422,
        "Given timestamp is in the future",
    ),
    (
        "11-value-number",
        one(custom_data={"value": 72.39}),
        AUTH,
        "",
        400,
        "Invalid request: 72.39 is not of type 'string'",
    ),
    (
        "12-unknown-custom-key",
        one(custom_data={"category_name": "x"}),
        AUTH,
        "",
        400,
        "Invalid request: Additional properties are not allowed ('category_name' was unexpected)",
    ),
    (
        "13-quantity-string",
        one(custom_data={"contents": [{"id": "1", "item_price": "1.5", "quantity": "1"}]}),
        AUTH,
        "",
        400,
        "'1' is not of type 'integer'",
    ),
    ("14-opt-out-string", one(opt_out="false"), AUTH, "", 400, "'false' is not of type 'boolean'"),
    ("15a-no-events", lambda now: {"data": []}, AUTH, "", 400, "[] should be non-empty"),
    ("15b-1001-events", many(1001), AUTH, "", 400, "is too long"),
    ("15c-empty-object", lambda now: {}, AUTH, "", 400, "'data' is a required property"),
    ("16-1000-events", many(1000), AUTH, "", 200, None),
    (
        "17-test-in-body",
        lambda now: {"data": [event(now)], "test": True},
        AUTH,
        "",
        400,
        "Additional properties are not allowed ('test' was unexpected)",
    ),
    (
        "18-unknown-event-key",
        one(advertiser_tracking_enabled=True),
        AUTH,
        "",
        400,
        "('advertiser_tracking_enabled' was unexpected)",
    ),
    ("19-ldp-in-user-data", user(em=[H], opt_out_type="LDP"), AUTH, "", 200, None),
    ("20-purchase", one(event_name="purchase"), AUTH, "", 422, "Invalid event_name parameter"),
    (
        "21-same-id-test",
        lambda now: {"data": [event(now), event(now)]},
        AUTH,
        "?test=true",
        200,
        None,
    ),
    ("22-no-authorization", one(), {}, "", 401, "Authentication failed."),
    (
        "23-token-without-account",
        one(),
        {"Authorization": f"Bearer {OTHER_TOKEN}"},
        "",
        403,
        "You are not permitted to access that resource.",
    ),
    (
        "24a-window-width",
        one(app_info={"window_width": 40000}),
        AUTH,
        "",
        400,
        "40000 is greater than the maximum of 30720",
    ),
    (
        "24b-network-type",
        one(device_info={"network_type": "5g"}),
        AUTH,
        "",
        400,
        "'5g' is not one of [",
    ),
]
CODES = {400: 4196, 401: 2, 403: 29, 422: 953}
CORE = {"01-unchanged", "03-ip-without-ua", "06-em-plain-text", "09-eight-days-old",
        "12-unknown-custom-key", "16-1000-events", "21-same-id-test", "22-no-authorization",
        "23-token-without-account"}  # fmt: skip


def check_answer(response: httpx2.Response, body: Any, status: int, fragment: str | None) -> None:
    """The answer has the status, Pinterest's shape and code, and mentions ``fragment``."""
    assert response.status_code == status, response.text
    answer = response.json()
    if status == 200:
        assert schema_validator("ConversionApiResponse").is_valid(answer)
        count = len(body["data"])
        assert answer["num_events_received"] == answer["num_events_processed"] == count
        assert all(e == {"status": "processed", "error_message": "", "warning_message": ""}
                   for e in answer["events"])  # fmt: skip
        return
    assert answer["code"] == CODES[status]
    if status == 422:
        assert schema_validator("DetailedError").is_valid(answer)
        assert schema_validator("ConversionApiResponse").is_valid(answer["details"])
        failed = answer["details"]["events"][0]
        assert failed["status"] == "failed"
        assert fragment in failed["error_message"]
        assert answer["details"]["num_events_processed"] == 0
    else:
        assert schema_validator("Error").is_valid(answer)
        assert fragment in answer["message"]
    if status == 400:
        assert answer["message"].startswith("Invalid request: ")
        assert "(at $" in answer["message"]


@pytest.mark.parametrize(
    ("body", "headers", "query", "status", "fragment"),
    [pytest.param(*row[1:], id=row[0]) for row in SECTION_9],
)
async def test_section_9_in_process(
    emulator: httpx2.AsyncClient,
    body: Body,
    headers: dict[str, str],
    query: str,
    status: int,
    fragment: str | None,
) -> None:
    """Each validation case of REFERENCE.md §9 gets Pinterest's status and body."""
    payload = body(NOW)
    response = await emulator.post(EVENTS + query, json=payload, headers=headers)
    check_answer(response, payload, status, fragment)


@pytest.mark.parametrize(
    ("body", "headers", "query", "status", "fragment"),
    [pytest.param(*row[1:], id=row[0]) for row in SECTION_9 if row[0] in CORE],
)
async def test_section_9_over_http(
    live_emulator: httpx2.AsyncClient,
    body: Body,
    headers: dict[str, str],
    query: str,
    status: int,
    fragment: str | None,
) -> None:
    """The core §9 cases give the same answers from a uvicorn server on loopback."""
    payload = body(int(time.time()))
    response = await live_emulator.post(EVENTS + query, json=payload, headers=headers)
    check_answer(response, payload, status, fragment)


async def post(emulator: httpx2.AsyncClient, *events: dict[str, Any], **kwargs: Any) -> Any:
    """POST ``events`` with the test token; the answer."""
    kwargs.setdefault("headers", AUTH)
    return await emulator.post(kwargs.pop("path", EVENTS), json={"data": list(events)}, **kwargs)


class TestAuth:
    """Bearer tokens and ad accounts."""

    @pytest.mark.parametrize(
        "header",
        ["", "Bearer", "Bearer   ", "Basic dG9rOg==", "bearer unknown-token", "Token tok-secret"],
    )
    async def test_bad_tokens_get_401(self, emulator: httpx2.AsyncClient, header: str) -> None:
        """A missing, malformed or unknown token gets 401 code 2."""
        response = await post(emulator, event(), headers={"Authorization": header})
        assert response.status_code == 401
        assert response.json() == {"code": 2, "message": "Authentication failed."}

    async def test_any_token_without_a_map(self, make_emulator: Callable[..., Any]) -> None:
        """With no token map, any non-empty bearer token works for any account."""
        emulator = make_emulator(EmulatorConfig())
        headers = {"Authorization": "Bearer whatever"}
        response = await post(emulator, event(), headers=headers, path="/v5/ad_accounts/77/events")
        assert response.status_code == 200

    async def test_403_comes_before_the_path_check(self, emulator: httpx2.AsyncClient) -> None:
        """A token without the account gets 403 even when the path id is malformed."""
        response = await post(emulator, event(), path="/v5/ad_accounts/abc/events")
        assert response.status_code == 403
        assert response.json()["code"] == 29

    def test_config_repr_hides_tokens(self) -> None:
        """The configuration's repr never shows a token."""
        assert "tok-secret" not in repr(EmulatorConfig(tokens=TOKENS))


class TestPathAndQuery:
    """The ad account id in the path and the ``test`` query flag."""

    @pytest.mark.parametrize(
        ("account", "status"),
        [
            ("1", 200),
            ("1" * 18, 200),
            ("1" * 19, 400),
            ("abc", 400),
            ("12a", 400),
            ("١٢٣", 400),
            ("-1", 400),
        ],
    )
    async def test_account_id(
        self, make_emulator: Callable[..., Any], account: str, status: int
    ) -> None:
        """The path id must be 1 to 18 ASCII digits."""
        emulator = make_emulator(EmulatorConfig())
        response = await post(emulator, event(), path=f"/v5/ad_accounts/{account}/events")
        assert response.status_code == status
        if status == 400:
            assert response.json()["code"] == 4196
            assert "ad_account_id" in response.json()["message"]

    @pytest.mark.parametrize(
        ("flag", "status"),
        [("true", 200), ("false", 200), ("TRUE", 200), ("yes", 400), ("1", 400), ("", 400)],
    )
    async def test_test_flag(self, emulator: httpx2.AsyncClient, flag: str, status: int) -> None:
        """``test`` must be a boolean."""
        response = await post(emulator, event(), path=f"{EVENTS}?test={flag}")
        assert response.status_code == status

    @pytest.mark.parametrize("content", [b"", b"{", b"not json", b"[1,"])
    async def test_body_must_be_json(self, emulator: httpx2.AsyncClient, content: bytes) -> None:
        """A body that is not JSON gets 400 code 4196."""
        response = await emulator.post(EVENTS, content=content, headers=AUTH)
        assert response.status_code == 400
        assert response.json()["message"].startswith("Invalid request: the body is not valid JSON")


class TestEvents:
    """Per-event checks, warnings, and mixed batches."""

    async def test_three_failures_in_a_thousand(self, emulator: httpx2.AsyncClient) -> None:
        """A batch with 3 bad events of 1000 gets a 422 saying which, in request order."""
        events = [event(event_id=f"e{i}") for i in range(1000)]
        events[5]["event_name"] = "purchase"
        events[500]["user_data"] = {"em": ["plain@example.com"]}
        events[999]["event_time"] = NOW - 8 * DAY
        response = await post(emulator, *events)
        assert response.status_code == 422
        details = response.json()["details"]
        assert details["num_events_received"] == 1000
        assert details["num_events_processed"] == 997
        failed = [i for i, e in enumerate(details["events"]) if e["status"] == "failed"]
        assert failed == [5, 500, 999]
        recorded = (await emulator.get("/_emulator/events")).json()
        assert recorded["count"] == 997

    @pytest.mark.parametrize(
        ("changes", "fragment"),
        [
            ({"action_source": "email"}, "Invalid action_source parameter"),
            ({"user_data": {"em": []}}, "No usable identifier"),
            ({"user_data": {"hashed_maids": []}}, "No usable identifier"),
            ({"user_data": {"em": [H], "ph": [H.upper()]}}, "user_data.ph[0]"),
            ({"user_data": {"em": [H], "external_id": ["abc"]}}, "hashed format"),
            ({"event_time": NOW + 301}, "in the future"),
        ],
    )
    async def test_event_failures(
        self, emulator: httpx2.AsyncClient, changes: dict[str, Any], fragment: str
    ) -> None:
        """Semantic failures fail the event with a message saying why."""
        response = await post(emulator, event(**changes))
        assert response.status_code == 422
        assert fragment in response.json()["details"]["events"][0]["error_message"]

    @pytest.mark.parametrize(
        ("changes", "fragment"),
        [
            ({"language": "eng"}, "ISO-639-1"),
            ({"custom_data": {"currency": "usd"}}, "ISO-4217"),
            ({"custom_data": {"value": "12,50"}}, "custom_data.value"),
            ({"custom_data": {"contents": [{"item_price": "free"}]}}, "item_price"),
            ({"event_time": NOW - 2 * 3600}, "offline conversion"),
        ],
    )
    async def test_warnings(
        self, emulator: httpx2.AsyncClient, changes: dict[str, Any], fragment: str
    ) -> None:
        """Non-standard but accepted data is processed with a warning."""
        response = await post(emulator, event(**changes))
        assert response.status_code == 200
        result = response.json()["events"][0]
        assert result["status"] == "processed"
        assert fragment in result["warning_message"]

    async def test_accepted_edges(self, emulator: httpx2.AsyncClient) -> None:
        """Within the skew, exactly 7 days old, and late offline events pass without remark."""
        response = await post(
            emulator,
            event(event_time=NOW + 300),
            event(event_time=NOW - 7 * DAY, action_source="offline"),
            event(event_name="app_open", user_data={"hashed_maids": [H]}),
        )
        assert response.status_code == 200
        assert all(e["warning_message"] == "" for e in response.json()["events"])

    async def test_advertiser_defined_names(self, make_emulator: Callable[..., Any]) -> None:
        """Configured advertiser-defined event names are accepted."""
        emulator = make_emulator(
            EmulatorConfig(advertiser_defined_event_names=frozenset({"quote"}))
        )
        assert (await post(emulator, event(event_name="quote"))).status_code == 200


class TestLenient:
    """``strict=False``: unknown keys inside events are tolerated."""

    async def test_unknown_event_keys_warn(self, make_emulator: Callable[..., Any]) -> None:
        """Unknown event-level and nested keys are dropped with a warning."""
        emulator = make_emulator(EmulatorConfig(strict=False))
        contents = [{"id": "1", "item_brand_id": "b"}]
        response = await post(
            emulator,
            event(advertiser_tracking_enabled=True, custom_data={"contents": contents}),
        )
        assert response.status_code == 200
        warning = response.json()["events"][0]["warning_message"]
        assert "'advertiser_tracking_enabled'" in warning
        assert "'custom_data.contents[0].item_brand_id'" in warning

    async def test_top_level_stays_strict(self, make_emulator: Callable[..., Any]) -> None:
        """A ``test`` key in the body is still a 400."""
        emulator = make_emulator(EmulatorConfig(strict=False))
        response = await emulator.post(EVENTS, json={"data": [event()], "test": True}, headers=AUTH)
        assert response.status_code == 400

    async def test_type_errors_still_fail(self, make_emulator: Callable[..., Any]) -> None:
        """Lenient mode does not relax types."""
        emulator = make_emulator(EmulatorConfig(strict=False))
        response = await post(emulator, event(extra=1, custom_data={"value": 1.5}))
        assert response.status_code == 400
        assert "1.5 is not of type 'string'" in response.json()["message"]


class TestRateLimit:
    """Per-account token bucket."""

    async def test_429_with_retry_after(
        self, make_emulator: Callable[..., Any], clock: FakeClock
    ) -> None:
        """Beyond the limit, 429 code 8 with the seconds until the next call is allowed."""
        emulator = make_emulator(EmulatorConfig(rate_limit_per_minute=2))
        assert (await post(emulator, event())).status_code == 200
        assert (await post(emulator, event())).status_code == 200
        limited = await post(emulator, event())
        assert limited.status_code == 429
        assert limited.json()["code"] == 8
        assert limited.headers["Retry-After"] == "30"
        other = await post(emulator, event(), path="/v5/ad_accounts/456/events")
        assert other.status_code == 200
        clock.advance(30)
        assert (await post(emulator, event(event_time=int(clock.now)))).status_code == 200

    async def test_test_mode_has_10_calls_per_second_per_token(
        self, make_emulator: Callable[..., Any], clock: FakeClock
    ) -> None:
        """``?test=true`` calls: 10 per second per token (Pinterest's "per app"), apart from
        the account's budget; real calls are not limited by it."""
        emulator = make_emulator(EmulatorConfig())
        test = f"{EVENTS}?test=true"
        for _ in range(10):
            assert (await post(emulator, event(), path=test)).status_code == 200
        limited = await post(emulator, event(), path=test)
        assert limited.status_code == 429
        assert limited.json()["code"] == 8
        assert limited.headers["Retry-After"] == "1"
        assert (await post(emulator, event())).status_code == 200
        other = {"Authorization": "Bearer other-token"}
        assert (await post(emulator, event(), path=test, headers=other)).status_code == 200
        clock.advance(0.15)  # one call's worth, and a half
        assert (await post(emulator, event(), path=test)).status_code == 200
        assert (await post(emulator, event(), path=test)).status_code == 429
        stats = (await emulator.get("/_emulator/stats")).json()
        assert stats["requests_by_status"]["429"] == 2

    async def test_test_mode_limit_can_be_lifted(self, make_emulator: Callable[..., Any]) -> None:
        """``test_requests_per_second=0`` (``--test-rate-limit 0``) disables it."""
        emulator = make_emulator(EmulatorConfig(test_requests_per_second=0))
        for _ in range(15):
            assert (await post(emulator, event(), path=f"{EVENTS}?test=true")).status_code == 200


class TestDedup:
    """Pinterest-side deduplication within 48 hours."""

    async def test_window(self, emulator: httpx2.AsyncClient, clock: FakeClock) -> None:
        """The same (event_id, event_name) counts once within 48 h, and again after."""
        first = await post(emulator, event(), event())
        assert [e["status"] for e in first.json()["events"]] == ["processed", "processed"]
        clock.advance(47 * 3600)
        await post(emulator, event(event_time=int(clock.now)))
        await post(emulator, event(event_time=int(clock.now), event_name="lead"))
        clock.advance(2 * 3600)
        await post(emulator, event(event_time=int(clock.now)))
        records = (await emulator.get("/_emulator/events")).json()["events"]
        assert [r["duplicate"] for r in records] == [False, True, True, False, False]
        assert (await emulator.get("/_emulator/stats")).json()["duplicates"] == 2

    async def test_offline_is_not_deduplicated(self, emulator: httpx2.AsyncClient) -> None:
        """Offline events are never counted as duplicates."""
        await post(emulator, event(action_source="offline"), event(action_source="offline"))
        assert (await emulator.get("/_emulator/stats")).json()["duplicates"] == 0

    async def test_test_mode_records_nothing(self, emulator: httpx2.AsyncClient) -> None:
        """``?test=true`` answers the same but records and dedups nothing."""
        response = await post(emulator, event(), event(), path=f"{EVENTS}?test=true")
        assert response.status_code == 200
        stats = (await emulator.get("/_emulator/stats")).json()
        assert stats["received"] == 0 and stats["recorded"] == 0
        assert stats["test_requests"] == 1 and stats["test_events_received"] == 2
        await post(emulator, event())
        assert (await emulator.get("/_emulator/stats")).json()["duplicates"] == 0


class TestFaults:
    """Injected faults, by configuration and through the control endpoint."""

    @pytest.mark.parametrize(
        ("statuses", "status", "code"), [((503,), 503, 4197), ((500,), 500, 1)]
    )
    async def test_errors(
        self, make_emulator: Callable[..., Any], statuses: tuple[int, ...], status: int, code: int
    ) -> None:
        """An error rate of 1 answers every request with the configured error."""
        faults = FaultSettings(error_rate=1.0, error_statuses=statuses)
        emulator = make_emulator(EmulatorConfig(faults=faults))
        response = await post(emulator, event())
        assert response.status_code == status
        assert response.json()["code"] == code

    async def test_seeded_errors_repeat(self, make_emulator: Callable[..., Any]) -> None:
        """The same seed gives the same sequence of injected errors."""
        config = EmulatorConfig(faults=FaultSettings(error_rate=0.5), seed=7)
        runs = []
        for _ in range(2):
            emulator = make_emulator(config)
            runs.append([(await post(emulator, event())).status_code for _ in range(20)])
        assert runs[0] == runs[1]
        assert set(runs[0]) == {200, 500, 503}

    async def test_burst_of_429(self, emulator: httpx2.AsyncClient) -> None:
        """A burst set at run time answers the next N requests 429 with Retry-After."""
        control = await emulator.post("/_emulator/faults", json={"burst_429": 2})
        assert control.json()["burst_429"] == 2
        statuses = [(await post(emulator, event())) for _ in range(3)]
        assert [r.status_code for r in statuses] == [429, 429, 200]
        assert statuses[0].headers["Retry-After"] == "1"
        assert (await emulator.get("/_emulator/faults")).json()["burst_429"] == 0

    async def test_latency(self, emulator: httpx2.AsyncClient) -> None:
        """Added latency delays the answer."""
        await emulator.post("/_emulator/faults", json={"latency_ms": 60})
        start = time.perf_counter()
        assert (await post(emulator, event())).status_code == 200
        assert time.perf_counter() - start >= 0.06

    async def test_drop_in_process(self, emulator: httpx2.AsyncClient) -> None:
        """Through EmulatorTransport a drop is httpx2's RemoteProtocolError; nothing recorded."""
        await emulator.post("/_emulator/faults", json={"drop_rate": 1.0})
        with pytest.raises(httpx2.RemoteProtocolError):
            await post(emulator, event())
        stats = (await emulator.get("/_emulator/stats")).json()
        assert stats["dropped_connections"] == 1 and stats["received"] == 0

    async def test_drop_with_plain_asgi_transport(self) -> None:
        """Through plain ASGITransport the drop surfaces as ConnectionDropped."""
        app = create_emulator_app(EmulatorConfig(faults=FaultSettings(drop_rate=1.0)))
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://e") as emulator:
            with pytest.raises(ConnectionDropped):
                await post(emulator, event(), headers={"Authorization": "Bearer x"})

    async def test_drop_over_http(self, live_emulator: httpx2.AsyncClient) -> None:
        """Over a real socket a drop is httpx2's RemoteProtocolError, and the server lives on."""
        await live_emulator.post("/_emulator/faults", json={"drop_rate": 1.0})
        with pytest.raises(httpx2.RemoteProtocolError):
            await post(live_emulator, event(int(time.time())))
        await live_emulator.post("/_emulator/faults", json={"drop_rate": 0.0})
        assert (await post(live_emulator, event(int(time.time())))).status_code == 200

    async def test_429_over_http(self, live_emulator: httpx2.AsyncClient) -> None:
        """Over a real socket a burst 429 carries Retry-After."""
        await live_emulator.post(
            "/_emulator/faults", json={"burst_429": 1, "retry_after_seconds": 7}
        )
        response = await post(live_emulator, event(int(time.time())))
        assert response.status_code == 429
        assert response.headers["retry-after"] == "7"

    @pytest.mark.parametrize(
        "change",
        [
            {"error_rate": 2},
            {"drop_rate": -0.1},
            {"latency_ms": "fast"},
            {"unknown": 1},
            {"error_statuses": [404]},
            {"error_statuses": []},
            {"error_rate": 1, "error_statuses": []},
        ],
    )
    async def test_control_refuses_bad_settings(
        self, emulator: httpx2.AsyncClient, change: dict[str, Any]
    ) -> None:
        """Invalid fault settings get a 400 and change nothing."""
        response = await emulator.post("/_emulator/faults", json=change)
        assert response.status_code == 400
        assert (await emulator.get("/_emulator/faults")).json() == {
            "error_rate": 0.0,
            "error_statuses": [500, 503],
            "latency_ms": 0,
            "drop_rate": 0.0,
            "burst_429": 0,
            "retry_after_seconds": 1,
        }


class TestInspection:
    """``/_emulator/events``, ``/_emulator/stats`` and ``/_emulator/reset``."""

    async def test_events_filter_and_page(self, emulator: httpx2.AsyncClient) -> None:
        """Events come in arrival order, by account, after ``since``, at most ``limit``."""
        await post(emulator, event(event_id="a"), event(event_id="b"))
        await post(emulator, event(event_id="c"), path="/v5/ad_accounts/456/events")
        await post(emulator, event(event_id="d"))

        async def ids(query: str) -> list[str]:
            answer = (await emulator.get(f"/_emulator/events{query}")).json()
            return [r["event"]["event_id"] for r in answer["events"]]

        assert await ids("") == ["a", "b", "c", "d"]
        assert await ids(f"?ad_account_id={ACCOUNT}") == ["a", "b", "d"]
        assert await ids("?since=2") == ["c", "d"]
        assert await ids(f"?ad_account_id={ACCOUNT}&since=1&limit=1") == ["b"]
        assert (await emulator.get("/_emulator/events?since=x")).status_code == 400

    async def test_stats_and_reset(self, emulator: httpx2.AsyncClient) -> None:
        """Stats count events and requests; reset clears them."""
        await post(emulator, event(), event(event_name="purchase"), event(user_data={"em": ["x"]}))
        await post(emulator, event(event_id=...))
        stats = (await emulator.get("/_emulator/stats")).json()
        assert stats["received"] == 3 and stats["processed"] == 1 and stats["failed"] == 2
        assert stats["failed_by_reason"] == {"event_name": 1, "hashed_format": 1}
        assert stats["requests_by_status"] == {"422": 1, "400": 1}
        await emulator.post("/_emulator/reset")
        stats = (await emulator.get("/_emulator/stats")).json()
        assert stats["received"] == 0 and stats["requests_by_status"] == {}
        assert (await emulator.get("/_emulator/events")).json()["count"] == 0

    async def test_recording_is_bounded(self, make_emulator: Callable[..., Any]) -> None:
        """Only the newest ``max_recorded_events`` are kept."""
        emulator = make_emulator(EmulatorConfig(max_recorded_events=3))
        await post(emulator, *[event(event_id=str(i)) for i in range(5)])
        answer = (await emulator.get("/_emulator/events")).json()
        assert [r["event"]["event_id"] for r in answer["events"]] == ["2", "3", "4"]


class TestConversionEqs:
    """``GET /v5/ad_accounts/{id}/conversion_eqs``."""

    EQS = f"/v5/ad_accounts/{ACCOUNT}/conversion_eqs"

    async def test_shape_and_coverage(self, emulator: httpx2.AsyncClient) -> None:
        """Scores follow the official EventQualityScore schema and reflect what was sent."""
        full = {"em": [H], "client_ip_address": "1.2.3.4", "client_user_agent": "UA"}
        await post(
            emulator,
            event(event_id="1", user_data=full, custom_data={"order_id": "o", "value": "1"}),
            event(event_id="2", user_data={"em": [H]}),
            event(event_id="3", event_name="lead", action_source="app_ios", user_data=full),
        )
        response = await emulator.get(f"{self.EQS}?lookback_period=14d", headers=AUTH)
        assert response.status_code == 200
        scores = response.json()
        validator = schema_validator("EventQualityScore")
        assert all(validator.is_valid(score) for score in scores)
        by_platform = {s["source_platform"]: s for s in scores}
        assert set(by_platform) == {"WEB", "MOBILE_IOS"}
        web = by_platform["WEB"]
        assert web["overall_status"] == "NEEDS_IMPROVEMENT"
        assert web["quality_components"]["ip_address"]["CHECKOUT"]["coverage"] == 50.0
        assert web["quality_components"]["order_id"]["CHECKOUT"]["coverage"] == 50.0
        assert web["quality_components"]["hashed_email"]["CHECKOUT"]["coverage"] == 100.0
        assert by_platform["MOBILE_IOS"]["overall_status"] == "FAIR"

    async def test_filters(self, emulator: httpx2.AsyncClient, clock: FakeClock) -> None:
        """Lookback, source platform and ingestion source narrow the answer."""
        await post(emulator, event(action_source="app_android"))
        clock.advance(2 * DAY)
        query = f"{self.EQS}?lookback_period="
        assert (await emulator.get(query + "1d", headers=AUTH)).json() == []
        mobile = (await emulator.get(query + "14d&source_platform=MOBILE", headers=AUTH)).json()
        assert [s["source_platform"] for s in mobile] == ["MOBILE"]
        tag = await emulator.get(query + "14d&ingestion_source=TAG", headers=AUTH)
        assert tag.json() == []

    @pytest.mark.parametrize(
        ("query", "headers", "status"),
        [
            ("?lookback_period=14d", {}, 401),
            ("", AUTH, 400),
            ("?lookback_period=7d", AUTH, 400),
            ("?lookback_period=1d&source_platform=TV", AUTH, 400),
        ],
    )
    async def test_refusals(
        self, emulator: httpx2.AsyncClient, query: str, headers: dict[str, str], status: int
    ) -> None:
        """Missing token or invalid parameters are refused."""
        response = await emulator.get(self.EQS + query, headers=headers)
        assert response.status_code == status
