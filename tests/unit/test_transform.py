"""The whole transform: input event in, validated Pinterest events or field errors out."""

from __future__ import annotations

import hashlib

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec import UNSET

from pinbridge.pinterest.schema import ConversionEvent
from pinbridge.transform import Transformer, TransformOptions

NOW = 1_795_345_200


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def order(**extra):
    message = {
        "type": "track",
        "event": "Order Completed",
        "messageId": "m-1",
        "timestamp": NOW - 60,
        "userId": "U-42",
        "context": {
            "ip": "203.0.113.9",
            "userAgent": "Mozilla/5.0",
            "page": {"url": "https://shop.example/thanks?epik=CLICK"},
            "traits": {"email": " Jane@Example.COM ", "phone": "(650) 555-1234"},
        },
        "properties": {"order_id": "o-1", "revenue": 19.99, "currency": "usd"},
    }
    message.update(extra)
    return message


@pytest.fixture(name="transformer")
def _transformer():
    return Transformer()


class TestTransformer:
    def test_order_completed(self, transformer):
        """A Segment order becomes one checkout with hashed PII and custom_data."""
        result = transformer(order(), now=NOW)
        assert result.ok and result.warnings == []
        assert msgspec.to_builtins(result.events) == [
            {
                "event_name": "checkout",
                "action_source": "web",
                "event_time": NOW - 60,
                "event_id": "m-1",
                "user_data": {
                    "em": [sha("jane@example.com")],
                    "ph": [sha("16505551234")],
                    "external_id": [sha("U-42")],
                    "client_ip_address": "203.0.113.9",
                    "client_user_agent": "Mozilla/5.0",
                    "click_id": "CLICK",
                },
                "custom_data": {"currency": "USD", "value": "19.99", "order_id": "o-1"},
                "event_source_url": "https://shop.example/thanks?epik=CLICK",
            }
        ]

    def test_pinterest_shaped_input(self, transformer):
        """A Pinterest-shaped event with raw PII is hashed and checked the same way."""
        result = transformer(
            {
                "event_name": "lead",
                "event_id": "L1",
                "event_time": NOW,
                "action_source": "offline",
                "user_data": {"em": ["A@B.co", sha("x@y.z").upper()], "ph": "+44 20 7946 0958"},
                "custom_data": {"value": 5, "currency": "gbp"},
            },
            now=NOW,
        )
        assert result.ok, result.errors
        event = result.events[0]
        assert event.user_data.em == [sha("a@b.co"), sha("x@y.z")]
        assert event.user_data.ph == [sha("442079460958")]
        assert (event.custom_data.value, event.custom_data.currency) == ("5", "GBP")

    @pytest.mark.parametrize(
        "maid",
        ["00000000-0000-0000-0000-000000000000", sha("00000000-0000-0000-0000-000000000000")],
    )
    def test_zero_advertising_id_is_never_sent(self, transformer, maid):
        """The all-zero IDFA (tracking denied), raw or hashed, is left out with a warning: it
        would tie together everyone who denied tracking."""
        result = transformer(
            {
                "event_name": "lead",
                "event_id": "Z1",
                "event_time": NOW,
                "action_source": "app_ios",
                "user_data": {"em": "a@b.co", "hashed_maids": maid},
            },
            now=NOW,
        )
        assert result.ok, result.errors
        assert result.events[0].user_data.hashed_maids is UNSET
        assert [w.field for w in result.warnings] == ["user_data.hashed_maids"]
        assert not any(k.startswith("maid:") for k in result.identity.keys)

    def test_event_source_url_loses_personal_parameters(self, transformer):
        """An email in the page URL (an HTML form sent by GET) never reaches Pinterest; the
        click id in the same URL is still read, and the other parameters stay."""
        call = order()
        call["context"]["page"]["url"] = (
            "https://shop.example/thanks?email=zelda%40example.org&utm_source=pin&epik=CLICK"
        )
        result = transformer(call, now=NOW)
        assert result.ok, result.errors
        event = result.events[0]
        assert event.event_source_url == "https://shop.example/thanks?utm_source=pin&epik=CLICK"
        assert event.user_data.click_id == "CLICK"
        assert "event_source_url" in [w.field for w in result.warnings]

    @pytest.mark.parametrize(
        ("query", "kept"),
        [
            ("phone=4155550199&first_name=Jane&epik=CLICK", "epik=CLICK"),
            ("last_name=Doe&zip=94025&dob=1990-02-01&epik=CLICK", "epik=CLICK"),
            ("utm_source=pin&Email=jane&epik=CLICK", "utm_source=pin&epik=CLICK"),
            ("utm_source=pin&epik=CLICK", "utm_source=pin&epik=CLICK"),
        ],
    )
    def test_event_source_url_loses_parameters_named_personal(self, transformer, query, kept):
        """Parameters named like personal data go even when their values look harmless."""
        call = order()
        call["context"]["page"]["url"] = f"https://shop.example/ty?{query}"
        result = transformer(call, now=NOW)
        assert result.ok, result.errors
        assert result.events[0].event_source_url == f"https://shop.example/ty?{kept}"
        warned = "event_source_url" in [w.field for w in result.warnings]
        assert warned is (query != kept)

    def test_derived_ids_tell_people_apart(self, transformer):
        """Without an event_id, two people's otherwise equal leads in the same second get
        different ids (else the second is dropped as a duplicate); the same input, the same."""

        def lead(email):
            return {
                "event_name": "lead",
                "event_time": NOW - 5,
                "action_source": "web",
                "user_data": {"em": email, "client_ip_address": "203.0.113.9"},
            }

        ids = [transformer(lead(e), now=NOW).events[0].event_id for e in ("a@b.co", "c@d.co")]
        again = transformer(lead("a@b.co"), now=NOW).events[0].event_id
        assert ids[0] != ids[1] and again == ids[0]

    @pytest.mark.parametrize("targets", [["lead", "checkout"], ["checkout", "lead"]])
    def test_fan_out_checkout_keeps_the_order_id_wherever_it_is_listed(self, targets):
        """Without a messageId the checkout's id is the order id (the tag's), even when it is
        not the first target."""
        transformer = Transformer(TransformOptions(mapping={"Order Completed": targets}))
        call = order()
        del call["messageId"]
        result = transformer(call, now=NOW)
        assert result.ok, result.errors
        ids = {e.event_name: e.event_id for e in result.events}
        order_id = call["properties"]["order_id"]
        assert ids == {"checkout": order_id, "lead": f"{order_id}:lead"}

    def test_fan_out_gives_each_event_its_own_id(self):
        """One input mapped to two events: the first keeps the input's id, the other derives one."""
        transformer = Transformer(
            TransformOptions(mapping={"Order Completed": ["checkout", "custom"]})
        )
        result = transformer(order(), now=NOW)
        assert [(e.event_name, e.event_id) for e in result.events] == [
            ("checkout", "m-1"),
            ("custom", "m-1:custom"),
        ]

    def test_fan_out_without_id_shares_the_order_id(self):
        """Without an input id, a fanned-out checkout keeps the order id; the other derives it."""
        transformer = Transformer(
            TransformOptions(mapping={"Order Completed": ["checkout", "lead"]})
        )
        message = order()
        del message["messageId"]
        assert [e.event_id for e in transformer(message, now=NOW).events] == ["o-1", "o-1:lead"]

    def test_checkout_without_id_uses_order_id(self, transformer):
        """A checkout without messageId or event_id takes its order id as event id."""
        message = order()
        del message["messageId"]
        assert transformer(message, now=NOW).events[0].event_id == "o-1"

    def test_identify_sends_nothing(self, transformer):
        """identify and alias are accepted but produce no Pinterest event."""
        result = transformer(
            {"type": "identify", "userId": "u", "traits": {"email": "a@b.co"}}, now=NOW
        )
        assert result.ok and result.events == []

    def test_dropped_unmapped(self):
        """With unmapped = drop an unknown name is accepted, not sent, and says why."""
        result = Transformer(TransformOptions(unmapped="drop"))(order(event="Mystery"), now=NOW)
        assert result.ok and result.events == []
        assert result.warnings[0].field == "event"

    def test_all_errors_at_once(self, transformer):
        """Every problem of a refused event is reported, each naming its field."""
        message = order(timestamp=NOW - 8 * 86400)
        message["properties"] = {"revenue": "lots", "currency": "dollars"}
        result = transformer(message, now=NOW)
        assert not result.ok
        assert {e.field for e in result.errors} == {
            "properties.revenue",
            "properties.currency",
            "event_time",
        }

    def test_no_identifier(self, transformer):
        """An event without em, MAID or IP + user agent is refused with the rule."""
        result = transformer(
            {"type": "track", "event": "Product Viewed", "timestamp": NOW}, now=NOW
        )
        assert [e.field for e in result.errors] == ["user_data"]

    def test_ldp(self, transformer):
        """LDP lands in custom_data.opt_out_type; missing state or country is a warning."""
        message = order()
        message["context"]["opt_out_type"] = "LDP"
        result = transformer(message, now=NOW)
        assert result.events[0].custom_data.opt_out_type == "LDP"
        assert [w.field for w in result.warnings] == ["user_data"]
        assert "opt_out_type" not in msgspec.to_builtins(result.events[0].user_data)

    def test_checkout_default_value(self):
        """The optional default value goes to checkouts without one, with a warning."""
        options = TransformOptions(checkout_default_value="100", checkout_default_currency="USD")
        message = order()
        message["properties"] = {"order_id": "o-2"}
        result = Transformer(options)(message, now=NOW)
        assert (result.events[0].custom_data.value, result.events[0].custom_data.currency) == (
            "100",
            "USD",
        )
        assert [w.field for w in result.warnings] == ["custom_data.value"]

    def test_checkout_default_value_off_by_default(self, transformer):
        """Without configuration a checkout without value is sent without value."""
        message = order()
        message["properties"] = {"order_id": "o-2"}
        assert transformer(message, now=NOW).events[0].custom_data.value is None

    def test_custom_properties_never_reach_pinterest(self, transformer):
        """Properties outside Pinterest's custom_data keys are not sent."""
        message = order()
        message["properties"]["note"] = "call me at +1 650 555 1234, jane@example.com"
        encoded = msgspec.json.encode(transformer(message, now=NOW).events)
        assert b"note" not in encoded and b"jane" not in encoded

    def test_app_event(self, transformer):
        """An app event gets its action source, MAID, app_info and device_info."""
        message = order(
            context={
                "os": {"name": "iOS", "version": "18.1"},
                "device": {
                    "advertisingId": "6D92078A-8246-4BA4-AE5B-76104861E7DC",
                    "manufacturer": "Apple",
                    "model": "iPhone16,1",
                },
                "app": {"name": "Shop", "version": "2.1", "namespace": "com.shop"},
                "network": {"wifi": True},
            }
        )
        event = transformer(message, now=NOW).events[0]
        assert event.action_source == "app_ios"
        assert event.user_data.hashed_maids == [sha("6d92078a-8246-4ba4-ae5b-76104861e7dc")]
        assert msgspec.to_builtins(event.app_info) == {
            "app_name": "Shop",
            "app_version": "2.1",
            "app_package_name": "com.shop",
        }
        assert msgspec.to_builtins(event.device_info) == {
            "brand": "Apple",
            "model": "iPhone16,1",
            "os_name": "iOS",
            "os_version": "18.1",
        }
        assert event.wifi is True

    @pytest.mark.parametrize(
        ("context", "device_info", "app_info", "warned"),
        [
            (
                {"locale": "x" * 43},
                {"brand": "Apple", "model": "M1", "os_name": "iOS", "timezone": "Europe/Paris"},
                {"app_name": "Shop", "app_version": "2.1"},
                ["device_info.locale"],
            ),
            (
                {"locale": "en-US", "timezone": "t" * 41},
                {"brand": "Apple", "model": "M1", "os_name": "iOS", "locale": "en-US"},
                {"app_name": "Shop", "app_version": "2.1"},
                ["device_info.timezone"],
            ),
            (
                {
                    "locale": "x" * 36,
                    "timezone": "t" * 41,
                    "app": {"name": "Shop", "version": "v" * 101},
                },
                {"brand": "Apple", "model": "M1", "os_name": "iOS"},
                {"app_name": "Shop"},
                ["app_info.app_version", "device_info.locale", "device_info.timezone"],
            ),
            (
                {"device": {"manufacturer": "B" * 101}, "os": {"name": "O" * 101}},
                {"timezone": "Europe/Paris"},
                {"app_name": "Shop", "app_version": "2.1"},
                ["device_info.brand", "device_info.os_name"],
            ),
            (
                {
                    "device": {"manufacturer": "B" * 101},
                    "os": {"name": "O" * 101},
                    "timezone": "t" * 41,
                },
                None,
                {"app_name": "Shop", "app_version": "2.1"},
                ["device_info.brand", "device_info.os_name", "device_info.timezone"],
            ),
        ],
    )
    def test_bad_borrowed_sub_field_is_left_out_alone(
        self, transformer, context, device_info, app_info, warned
    ):
        """A too-long sub-field of a Segment context (a 43-character locale) is left out with
        a warning naming it; the rest of device_info and app_info is sent."""
        base = {
            "timezone": "Europe/Paris",
            "device": {"manufacturer": "Apple", "model": "M1"},
            "os": {"name": "iOS"},
            "app": {"name": "Shop", "version": "2.1"},
        }
        message = order()
        message["context"].update(base | context)
        result = transformer(message, now=NOW)
        assert result.ok, result.errors
        event = msgspec.to_builtins(result.events[0])
        assert event.get("device_info") == device_info
        assert event.get("app_info") == app_info
        assert sorted(w.field for w in result.warnings) == warned

    def test_bad_device_info_of_native_input_is_an_error(self, transformer):
        """A Pinterest-shaped device_info that breaks the schema refuses the event."""
        result = transformer(
            {
                "event_name": "lead",
                "event_time": NOW,
                "user_data": {"em": "a@b.co"},
                "device_info": {"network_type": "5g"},
            },
            now=NOW,
        )
        assert [e.field for e in result.errors] == ["device_info.network_type"]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def segment_like(draw):
    """Segment-shaped calls whose values are arbitrary JSON and Unicode."""
    traits = draw(
        st.fixed_dictionaries(
            {},
            optional={
                k: _json | st.text()
                for k in (
                    "email",
                    "phone",
                    "firstName",
                    "lastName",
                    "gender",
                    "birthday",
                    "address",
                )
            },
        )
    )
    return {
        "type": draw(st.sampled_from(["track", "page", "screen", "identify", "alias", "bogus"])),
        "event": draw(st.text() | _json),
        "timestamp": draw(st.integers(NOW - 10 * 86400, NOW + 600) | _json),
        "userId": draw(_json),
        "messageId": draw(st.text() | st.none()),
        "context": {
            "ip": draw(st.text() | _json),
            "userAgent": draw(st.text()),
            "traits": traits,
            "page": {"url": draw(st.text())},
        },
        "properties": draw(
            st.fixed_dictionaries(
                {},
                optional={
                    k: _json for k in ("revenue", "currency", "products", "order_id", "query")
                },
            )
        ),
    }


class TestProperties:
    @settings(max_examples=200, deadline=None)
    @given(message=segment_like())
    def test_never_raises_and_ok_events_pass_validation(self, message):
        """Arbitrary input never raises; every ok event re-decodes and satisfies the rules."""
        transformer = Transformer()
        result = transformer(message, now=NOW)
        if result.ok:
            for event in result.events:
                again = msgspec.json.decode(msgspec.json.encode(event), type=ConversionEvent)
                assert transformer._validator(again, now=NOW) == []
        else:
            assert result.errors and result.events == []

    @settings(max_examples=150, deadline=None)
    @given(messages=st.lists(segment_like(), min_size=1, max_size=4))
    def test_caches_change_nothing(self, messages):
        """With and without the caches, the same inputs give the same outputs."""
        cached, uncached = Transformer(), Transformer(cache_size=0)
        for message in messages * 2:  # the second round hits the caches
            assert cached(message, now=NOW) == uncached(message, now=NOW)


class TestLimitedDataProcessingRules:
    @pytest.mark.parametrize(
        ("address", "opted_out", "requires", "expected"),
        [
            ({"state": "California", "country": "US"}, True, True, True),
            ({"state": "CA", "country": "United States"}, False, True, False),
            ({"state": "CA", "country": "US"}, False, False, True),
            ({"state": "NY", "country": "US"}, True, True, False),
            ({"state": "SP", "country": "Brazil"}, True, True, True),
            ({}, True, True, False),
        ],
    )
    def test_regions(self, address, opted_out, requires, expected):
        """LDP applies by rule in the configured regions, to people who opted out of sale."""
        options = TransformOptions(ldp_regions=("US-CA", "BR"), ldp_requires_opt_out=requires)
        message = order()
        message["context"]["traits"]["address"] = address
        message["context"]["opt_out_of_sale"] = opted_out
        event = Transformer(options)(message, now=NOW).events[0]
        ldp = event.custom_data.opt_out_type == "LDP"
        assert ldp is expected
        if ldp:
            assert event.user_data.st is not UNSET and event.user_data.country is not UNSET
