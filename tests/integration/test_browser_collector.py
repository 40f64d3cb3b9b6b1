"""pb.js and /v1/collect in process: completion from the request, cookies, CORS, the tag map."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import AsyncIterator

import httpx2
import pytest
from starlette.applications import Starlette

from pinbridge.accept import ItemResult
from pinbridge.config import DEV_WRITE_KEY, ServerSettings, Settings, StoreSettings
from pinbridge.mapping import DEFAULT_EVENT_MAP, name_key
from pinbridge.service import build_service
from pinbridge.transform import TransformOptions
from pinbridge.web.browser import (
    COOKIE_MAX_AGE,
    BrowserCollector,
    CorsPolicy,
    browser_routes,
    tag_event_map,
)
from pinbridge.web.collector import Collector
from pinbridge.web.proxies import TrustedProxies

pytestmark = pytest.mark.anyio
NOW = 1_795_345_200.0
KEY = "wk-shop"
SHOP = "https://shop.example"
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0"


class RecordingAcceptor:
    """Stands in for the accept path: keeps the messages, accepts every one."""

    def __init__(self) -> None:
        self.messages: list[dict] = []

    async def accept(self, messages, *, now, default_source="web"):
        self.messages.extend(messages)
        return [
            ItemResult(i, "accepted", event_ids=[m.get("messageId", "")])
            for i, m in enumerate(messages)
        ]


def page(url: str = "https://shop.example/p?epik=FROMURL", **changes) -> dict:
    message = {
        "type": "page",
        "messageId": "m-page",
        "timestamp": NOW,
        "context": {"page": {"url": url}},
    }
    message.update(changes)
    return message


class Harness:
    def __init__(self, *, client: tuple[str, int] = ("203.0.113.9", 4000), **options) -> None:
        self.acceptor = RecordingAcceptor()
        collector = Collector(
            self.acceptor,  # type: ignore[arg-type]
            write_keys=[KEY, "wk-other", "wk-open"],
            max_body_bytes=20_000,
            max_events=5,
            clock=lambda: NOW,
        )
        browser = BrowserCollector(
            collector,
            cors=CorsPolicy(
                options.get("origins", {KEY: [SHOP, "https://www.shop.example/"]}),
                options.get("open_keys", ()),
            ),
            trusted_proxies=TrustedProxies(options.get("trusted", ())),
            event_map=tag_event_map(TransformOptions()),
            new_id=lambda: "new-anon",
        )
        app = Starlette(routes=browser_routes(browser))
        self.http = httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app, client=client),
            base_url="http://collector.example",
        )

    async def collect(self, body, *, key=KEY, origin=SHOP, headers=None, cookies=None):
        sent = {"Content-Type": "text/plain;charset=UTF-8", "User-Agent": CHROME}
        if origin:
            sent["Origin"] = origin
        if cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        sent.update(headers or {})
        params = {"writeKey": key} if key else {}
        return await self.http.post(
            "/v1/collect", content=json.dumps(body).encode(), headers=sent, params=params
        )


@pytest.fixture(name="h")
async def _harness() -> AsyncIterator[Harness]:
    harness = Harness()
    yield harness
    await harness.http.aclose()


def set_cookies(response) -> dict[str, str]:
    """Set-Cookie headers by cookie name."""
    found = {}
    for header in response.headers.get_list("set-cookie"):
        found[header.split("=", 1)[0]] = header
    return found


class TestCompletion:
    async def test_fills_ip_user_agent_cookies_and_anonymous_id(self, h):
        """What only the server knows is filled in; the browser's own values are kept."""
        response = await h.collect(
            {"batch": [page(url="https://shop.example/cart"), page(messageId="m2")]},
            cookies={"_epik": "FROMCOOKIE", "_pb_aid": "anon-1"},
        )
        assert response.status_code == 200
        assert response.json()["success"] is True
        first = h.acceptor.messages[0]
        assert first["context"]["ip"] == "203.0.113.9"
        assert first["context"]["userAgent"] == CHROME
        assert first["context"]["cookies"] == {"_epik": "FROMCOOKIE"}
        assert first["anonymousId"] == "anon-1"

    async def test_page_cannot_choose_its_ip_but_keeps_its_user_agent(self, h):
        """context.ip always comes from the request; a userAgent sent by the page is kept."""
        message = page(context={"ip": "1.1.1.1", "userAgent": "Own UA", "page": {"url": "x"}})
        await h.collect(message)
        context = h.acceptor.messages[0]["context"]
        assert (context["ip"], context["userAgent"]) == ("203.0.113.9", "Own UA")

    async def test_own_anonymous_id_and_cookie_are_kept(self, h):
        """A message's anonymousId and context.cookies._epik win over the cookies."""
        message = page(anonymousId="mine")
        message["context"]["cookies"] = {"_epik": "OWN"}
        await h.collect(message, cookies={"_epik": "FROMCOOKIE", "_pb_aid": "anon-1"})
        assert h.acceptor.messages[0]["anonymousId"] == "mine"
        assert h.acceptor.messages[0]["context"]["cookies"] == {"_epik": "OWN"}

    async def test_client_ip_through_trusted_proxy(self):
        """Behind a trusted proxy the forwarded address is the client's, IPv6 included."""
        h = Harness(client=("10.0.0.2", 1), trusted=["10.0.0.0/8"])
        await h.collect(page(), headers={"X-Forwarded-For": "2001:db8::5, 10.0.0.3"})
        assert h.acceptor.messages[0]["context"]["ip"] == "2001:db8::5"
        await h.http.aclose()

    async def test_untrusted_peer_cannot_forward(self, h):
        """X-Forwarded-For from a peer that is not a trusted proxy is ignored."""
        await h.collect(page(), headers={"X-Forwarded-For": "198.51.100.1"})
        assert h.acceptor.messages[0]["context"]["ip"] == "203.0.113.9"

    async def test_write_key_in_body(self, h):
        """The write key may come in the body instead of the query."""
        response = await h.collect({"batch": [page()], "writeKey": KEY}, key=None)
        assert response.status_code == 200

    async def test_unknown_key_is_401(self, h):
        """An unknown write key is refused; an allowed origin can read why."""
        response = await h.collect(page(), key="nope", origin=None)
        assert response.status_code == 401
        assert h.acceptor.messages == []

    async def test_limits_apply(self, h):
        """The collector's limits hold: too many events is 413, a non-object is 400."""
        assert (await h.collect({"batch": [page()] * 6})).status_code == 413
        assert (await h.collect([1, 2])).status_code == 400


class TestCookies:
    async def test_landing_sets_epik_and_anonymous_id(self, h):
        """The URL's epik and a new anonymous id become first-party cookies for a year."""
        response = await h.collect(page())
        cookies = set_cookies(response)
        epik = cookies["_epik"]
        assert epik.startswith("_epik=FROMURL;")
        assert f"Max-Age={COOKIE_MAX_AGE}" in epik
        assert "Path=/" in epik and "SameSite=lax" in epik
        assert "HttpOnly" not in epik and "Secure" not in epik
        anon = cookies["_pb_aid"]
        assert anon.startswith("_pb_aid=new-anon;") and "HttpOnly" in anon
        assert h.acceptor.messages[0]["anonymousId"] == "new-anon"

    async def test_url_wins_over_older_cookie(self, h):
        """A newer epik in the URL replaces the cookie's."""
        response = await h.collect(page(), cookies={"_epik": "OLD", "_pb_aid": "anon-1"})
        assert set_cookies(response)["_epik"].startswith("_epik=FROMURL;")
        assert set_cookies(response)["_pb_aid"].startswith("_pb_aid=anon-1;")

    async def test_messages_anonymous_id_kept_when_cookie_safe(self, h):
        """Without a cookie, the page's own anonymousId becomes the cookie, if cookie-safe."""
        kept = await h.collect(page(anonymousId="ajs-123"))
        assert set_cookies(kept)["_pb_aid"].startswith("_pb_aid=ajs-123;")
        h.http.cookies.clear()
        odd = await h.collect(page(anonymousId="has spaces; and=more"))
        assert set_cookies(odd)["_pb_aid"].startswith("_pb_aid=new-anon;")
        assert h.acceptor.messages[-1]["anonymousId"] == "has spaces; and=more"

    async def test_no_epik_in_url_leaves_the_cookie(self, h):
        """Without epik in the URL the _epik cookie is not touched."""
        response = await h.collect(page(url="https://shop.example/"), cookies={"_epik": "OLD"})
        assert "_epik" not in set_cookies(response)

    async def test_secure_over_https_via_trusted_proxy(self):
        """Cookies are Secure when the client used https, as a trusted proxy reports it."""
        h = Harness(client=("10.0.0.2", 1), trusted=["10.0.0.0/8"])
        response = await h.collect(page(), headers={"X-Forwarded-Proto": "https"})
        assert all("Secure" in c for c in set_cookies(response).values())
        await h.http.aclose()

    async def test_untrusted_proto_is_ignored(self, h):
        """X-Forwarded-Proto from an untrusted peer does not make cookies Secure."""
        response = await h.collect(page(), headers={"X-Forwarded-Proto": "https"})
        assert not any("Secure" in c for c in set_cookies(response).values())

    @pytest.mark.parametrize(
        "epik", ["dj0y%E2%82%AC", "caf%C3%A9", "a%3Bb", "a%20b", "q%22", "b%5C", "x" * 513]
    )
    async def test_click_id_that_is_no_cookie_value_is_used_not_kept(self, h, epik):
        """A click id outside RFC 6265's cookie characters (non-ASCII, ``;``, space, quote,
        backslash) or too long is used for the event, sets no cookie, and the answer is 200."""
        response = await h.collect(page(url=f"https://shop.example/p?epik={epik}"))
        assert response.status_code == 200
        assert response.json()["success"] is True
        cookies = set_cookies(response)
        assert "_epik" not in cookies
        assert cookies["_pb_aid"].startswith("_pb_aid=new-anon;")
        assert h.acceptor.messages[0]["context"]["page"]["url"].endswith(epik)

    async def test_kept_click_id_reads_back(self, h):
        """A click id with cookie characters that need quoting (``=``, ``/``) comes back from
        the cookie as it was sent."""
        first = await h.collect(page(url="https://shop.example/p?epik=dj0y%2FJnU9%3D"))
        assert "_epik" in set_cookies(first)
        await h.collect(page(url="https://shop.example/cart", messageId="m2"))
        assert h.acceptor.messages[-1]["context"]["cookies"] == {"_epik": "dj0y/JnU9="}

    async def test_consent_denied_sets_no_cookie_and_expires_epik(self, h):
        """Without ads consent no cookie is set and an existing _epik is expired."""
        message = page()
        message["context"]["consent"] = {"ads": False}
        response = await h.collect(message, cookies={"_epik": "OLD"})
        cookies = set_cookies(response)
        assert list(cookies) == ["_epik"]
        assert "Max-Age=0" in cookies["_epik"]


class TestCors:
    async def test_allowed_origin(self, h):
        """A listed origin gets its own origin back, with credentials and Vary."""
        response = await h.collect(page(), origin="https://www.shop.example")
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "https://www.shop.example"
        assert response.headers["access-control-allow-credentials"] == "true"
        assert response.headers["vary"] == "Origin"

    async def test_other_origin_is_403_and_not_accepted(self, h):
        """An origin not on the key's list is refused and nothing is accepted."""
        response = await h.collect(page(), origin="https://evil.example")
        assert response.status_code == 403
        assert "access-control-allow-origin" not in response.headers
        assert set_cookies(response) == {}
        assert h.acceptor.messages == []

    async def test_key_without_list_takes_only_its_own_origin(self, h):
        """A key with no list accepts the collector's own origin only."""
        other = await h.collect(page(), key="wk-other", origin=SHOP)
        own = await h.collect(page(), key="wk-other", origin="http://collector.example")
        assert (other.status_code, own.status_code) == (403, 200)

    async def test_origin_judged_on_the_basic_auth_key(self, h):
        """CORS uses the key that authorizes: HTTP Basic auth with a key that has no list is
        refused from another key's origin, with or without that key in ?writeKey=."""
        basic = {"Authorization": "Basic " + base64.b64encode(b"wk-other:").decode()}
        alone = await h.collect(page(), key=None, headers=basic)
        beside = await h.collect(page(), key=KEY, headers=basic)
        assert (alone.status_code, beside.status_code) == (403, 403)
        assert h.acceptor.messages == []
        own = await h.collect(page(), key=None, origin="http://collector.example", headers=basic)
        assert own.status_code == 200

    async def test_basic_auth_key_with_the_origin_listed(self, h):
        """Basic auth with the key whose list holds the origin is accepted."""
        basic = {"Authorization": "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()}
        response = await h.collect(page(), key=None, headers=basic)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == SHOP

    @pytest.mark.parametrize(
        ("listed", "sent"),
        [
            ("https://shop.example:443", "https://shop.example"),
            ("https://shop.example", "https://shop.example:443"),
            ("http://shop.example:80", "http://shop.example"),
            ("HTTP://Shop.Example/", "http://shop.example:80"),
        ],
    )
    async def test_default_ports_are_the_same_origin(self, listed, sent):
        """``:443`` for https and ``:80`` for http are dropped before comparing."""
        h = Harness(origins={KEY: [listed]})
        assert (await h.collect(page(), origin=sent)).status_code == 200
        await h.http.aclose()

    async def test_other_ports_stay_apart(self):
        """A port other than the default is another origin (https on :80 too)."""
        h = Harness(origins={KEY: ["https://shop.example"]})
        for sent in ("https://shop.example:8443", "https://shop.example:80", "http://shop.example"):
            assert (await h.collect(page(), origin=sent)).status_code == 403, sent
        await h.http.aclose()

    async def test_own_origin_with_default_port(self, h):
        """The own origin matches with the default port in the Host header or the Origin."""
        response = await h.collect(
            page(),
            key="wk-other",
            origin="http://collector.example:80",
        )
        assert response.status_code == 200

    async def test_open_key_takes_any_origin(self):
        """The development key, without a list, accepts any origin."""
        h = Harness(origins={}, open_keys=["wk-open"])
        response = await h.collect(page(), key="wk-open", origin="http://localhost:3000")
        assert response.status_code == 200
        await h.http.aclose()

    async def test_wildcard(self):
        """``*`` in a key's list allows every origin (still echoed, never ``*``)."""
        h = Harness(origins={KEY: ["*"]})
        response = await h.collect(page(), origin="https://any.example")
        assert response.headers["access-control-allow-origin"] == "https://any.example"
        await h.http.aclose()

    async def test_no_origin_is_not_a_browser(self, h):
        """A request without Origin (a server, curl) is not subject to CORS."""
        response = await h.collect(page(), origin=None)
        assert response.status_code == 200
        assert "access-control-allow-origin" not in response.headers

    async def test_preflight(self, h):
        """OPTIONS answers 204 with the CORS headers for a listed origin, 403 otherwise."""
        asked = {"Origin": SHOP, "Access-Control-Request-Method": "POST"}
        ok = await h.http.options("/v1/collect", params={"writeKey": KEY}, headers=asked)
        assert ok.status_code == 204
        assert ok.headers["access-control-allow-origin"] == SHOP
        assert ok.headers["access-control-allow-credentials"] == "true"
        assert "POST" in ok.headers["access-control-allow-methods"]
        assert ok.headers["vary"] == "Origin"
        evil = {**asked, "Origin": "https://evil.example"}
        refused = await h.http.options("/v1/collect", params={"writeKey": KEY}, headers=evil)
        assert refused.status_code == 403
        unkeyed = await h.http.options("/v1/collect", headers=asked)
        assert unkeyed.status_code == 204


class TestScript:
    async def test_served_cacheable_with_map(self, h):
        """/pb.js is JavaScript, cacheable, with the event map filled in."""
        response = await h.http.get("/pb.js", headers={"Accept-Encoding": "identity"})
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/javascript; charset=utf-8"
        assert "max-age" in response.headers["cache-control"]
        assert "/*EVENT_MAP*/" not in response.text
        assert '"ordercompleted":"checkout"' in response.text
        again = await h.http.get("/pb.js", headers={"If-None-Match": response.headers["etag"]})
        assert again.status_code == 304

    async def test_gzip(self, h):
        """A browser that takes gzip gets it."""
        response = await h.http.get("/pb.js", headers={"Accept-Encoding": "gzip, br"})
        assert response.headers["content-encoding"] == "gzip"
        plain = await h.http.get("/pb.js", headers={"Accept-Encoding": "identity"})
        assert response.content == plain.content  # httpx2 decompressed it
        assert len(gzip.compress(plain.content)) < len(plain.content)


class TestTagEventMap:
    def test_default_map_matches_the_server(self):
        """Every default input name maps to the tag name of the server's first event."""
        table = tag_event_map(TransformOptions())
        for name, targets in DEFAULT_EVENT_MAP.items():
            assert table["m"][name_key(name)] == targets[0].replace("_", "")
        assert table["m"]["addtocart"] == "addtocart"
        assert table["u"] == "custom"

    def test_configured_mapping_and_drop(self):
        """Configured names and ``unmapped = drop`` reach the script too."""
        options = TransformOptions(
            mapping={"Quote Requested": ["lead", "custom"]},
            unmapped="drop",
            advertiser_event_names=frozenset({"Trial Booked"}),
        )
        table = tag_event_map(options)
        assert table["m"]["quoterequested"] == "lead"
        assert table["m"]["trialbooked"] == "Trial Booked"
        assert table["u"] == ""

    def test_fan_out_tag_gets_the_checkout(self):
        """The tag gets the event that keeps the browser's id: the checkout, when listed."""
        options = TransformOptions(mapping={"Order Completed": ["lead", "checkout"]})
        assert tag_event_map(options)["m"]["ordercompleted"] == "checkout"


class TestService:
    async def test_wired_into_the_service(self, tmp_path):
        """``pinbridge run`` serves /pb.js and /v1/collect; the dev key takes any origin."""
        settings = Settings(
            server=ServerSettings(),
            store=StoreSettings(url="memory:"),
            embedded_emulator=True,
        )
        service = build_service(settings, with_sender=False)
        async with httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=service.app), base_url="http://pb.local"
        ) as http:
            assert (await http.get("/pb.js")).status_code == 200
            response = await http.post(
                "/v1/collect",
                params={"writeKey": DEV_WRITE_KEY},
                content=json.dumps(
                    {"type": "track", "event": "Product Added", "messageId": "b1"}
                ).encode(),
                headers={"Origin": "http://localhost:5173", "User-Agent": CHROME},
            )
        await service.store.aclose()
        assert response.status_code == 200
        assert response.json()["results"][0]["status"] == "accepted"
