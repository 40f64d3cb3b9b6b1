"""Parsing Segment-spec calls and Pinterest-shaped events into InputEvent."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinbridge.inputs import parse_input
from pinbridge.inputs.fields import click_id_from_url, language_from_locale, parse_ip, parse_time
from pinbridge.inputs.segment import correct_clock_skew

NOW = 1_795_345_200  # 2026-11-22T11:00:00Z


class TestParseTime:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("2026-11-22T11:00:00Z", NOW),
            ("2026-11-22T11:00:00.999Z", NOW),
            ("2026-11-22T12:00:00+01:00", NOW),
            ("2026-11-22T11:00:00", NOW),
            ("2026-11-22", NOW - 11 * 3600),
            (NOW, NOW),
            (NOW + 0.75, NOW),
            (NOW * 1000, NOW),
            (NOW * 1000 + 999, NOW),
            (str(NOW), NOW),
            (str(NOW * 1000), NOW),
        ],
    )
    def test_accepted_forms(self, value, expected):
        """ISO-8601 times and epoch seconds or milliseconds give whole seconds, rounded down."""
        assert parse_time(value) == expected

    @pytest.mark.parametrize(
        "value",
        [
            "yesterday",
            "",
            None,
            True,
            -5,
            float("nan"),
            {},
            [],
            10**400,
            -(10**400),
            "9" * 400,
            "1e999",
        ],
        ids=lambda value: repr(value)[:24],
    )
    def test_refused_forms(self, value):
        """Anything that is not a time raises ValueError with a message."""
        with pytest.raises(ValueError, match=r"\w"):
            parse_time(value)

    @settings(max_examples=300)
    @given(
        st.integers()
        | st.integers(min_value=10**300, max_value=10**320)
        | st.floats()
        | st.text()
        | st.from_regex(r"-?\d{1,400}(\.\d*)?(e-?\d{1,4})?", fullmatch=True)
    )
    def test_only_value_error(self, value):
        """Whatever the value, parse_time gives whole seconds or a ValueError, nothing else."""
        with contextlib.suppress(ValueError):
            assert isinstance(parse_time(value), int)

    @pytest.mark.parametrize("value", ["jane.doe@example.com", " Jane", "+1 650 555 0199"])
    def test_message_never_holds_the_value(self, value):
        """Says why, never what: a shifted CSV column may put an email in the time."""
        with pytest.raises(ValueError) as caught:
            parse_time(value)
        assert str(caught.value) == "is not an ISO-8601 time or an epoch number"


class TestFields:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("203.0.113.9", "203.0.113.9"),
            (" 203.0.113.9 ", "203.0.113.9"),
            ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
            ("::ffff:192.0.2.1", "::ffff:c000:201"),
        ],
    )
    def test_ip_addresses(self, value, expected):
        """IPv4 and IPv6 addresses are validated and written in compressed form."""
        assert parse_ip(value) == expected

    @pytest.mark.parametrize("value", ["999.1.1.1", "localhost", "1.2.3", "2001:db8::g"])
    def test_bad_ip_addresses(self, value):
        """Strings that are not IP addresses are refused."""
        with pytest.raises(ValueError, match="IPv4 or IPv6"):
            parse_ip(value)

    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            ("https://shop.example/?epik=abc", "abc"),
            ("https://shop.example/p?x=1&epik=dj0yJnU9&y=2", "dj0yJnU9"),
            ("https://shop.example/p?epik=old&epik=new", "new"),
            ("https://shop.example/p?epik=", None),
            ("https://shop.example/p", None),
            ("https://shop.example/p?notepik=1", None),
        ],
    )
    def test_click_id_from_url(self, url, expected):
        """The epik query parameter is read from a landing URL."""
        assert click_id_from_url(url) == expected

    @pytest.mark.parametrize(
        ("locale", "expected"),
        [("en-US", "en"), ("fr_FR", "fr"), ("de", "de"), ("english", None), (None, None)],
    )
    def test_language(self, locale, expected):
        """A locale gives its two-letter language code."""
        assert language_from_locale(locale) == expected


def _track(**context):
    return {"type": "track", "event": "Order Completed", "timestamp": NOW, "context": context}


class TestSegment:
    def test_traits_become_identifiers(self):
        """Traits and address fields are collected as raw identifiers; userId is external_id."""
        event = parse_input(
            {
                "type": "identify",
                "userId": "U-1",
                "traits": {
                    "email": "a@b.co",
                    "phone": "+16505551234",
                    "firstName": "Ann",
                    "lastName": "Lee",
                    "gender": "f",
                    "birthday": "1990-01-02",
                    "address": {
                        "city": "Paris",
                        "state": "IDF",
                        "postalCode": "75001",
                        "country": "FR",
                    },
                },
            },
            now=NOW,
        )
        assert event.identifiers == {
            "em": ["a@b.co"],
            "ph": ["+16505551234"],
            "fn": ["Ann"],
            "ln": ["Lee"],
            "ge": ["f"],
            "db": ["1990-01-02"],
            "ct": ["Paris"],
            "st": ["IDF"],
            "zp": ["75001"],
            "country": ["FR"],
            "external_id": ["U-1"],
        }

    @pytest.mark.parametrize(
        ("message", "expected"),
        [
            (
                {**_track(page={"url": "https://s/?epik=URL"}), "properties": {"epik": "PROP"}},
                "PROP",
            ),
            (_track(page={"url": "https://s/?epik=URL"}, cookies={"_epik": "COOKIE"}), "URL"),
            (_track(page={"url": "https://s/"}, cookies={"_epik": "COOKIE"}), "COOKIE"),
            (_track(page={"url": "https://s/"}), None),
        ],
    )
    def test_click_id_precedence(self, message, expected):
        """properties.epik wins over the landing URL, which wins over the older cookie."""
        assert parse_input(message, now=NOW).click_id == expected

    @pytest.mark.parametrize(
        ("context", "properties", "expected"),
        [
            ({}, {}, "web"),
            ({"os": {"name": "iOS"}}, {}, "app_ios"),
            ({"os": {"name": "iPadOS"}}, {}, "app_ios"),
            ({"os": {"name": "Android"}}, {}, "app_android"),
            ({"device": {"type": "android"}}, {}, "app_android"),
            ({"device": {"type": "ios"}}, {}, "app_ios"),
            ({"os": {"name": "Mac OS X"}}, {}, "web"),
            ({"action_source": "offline"}, {}, "offline"),
            ({"os": {"name": "iOS"}}, {"action_source": "web"}, "web"),
        ],
    )
    def test_action_source(self, context, properties, expected):
        """An explicit action_source wins; apps are recognised by OS or device type; else web."""
        message = {**_track(**context), "properties": properties}
        assert parse_input(message, now=NOW).action_source == expected

    def test_ip_user_agent_and_ad_id(self):
        """context.ip, context.userAgent and context.device.advertisingId are read."""
        event = parse_input(
            _track(ip="2001:db8::1", userAgent="UA/1", device={"advertisingId": "AB-CD"}), now=NOW
        )
        assert (event.client_ip_address, event.client_user_agent) == ("2001:db8::1", "UA/1")
        assert event.identifiers["hashed_maids"] == ["AB-CD"]

    def test_bad_ip_is_a_warning(self):
        """An invalid context.ip is left out with a warning; the event still goes."""
        event = parse_input(_track(ip="not-an-ip"), now=NOW)
        assert event.client_ip_address is None
        assert [w.field for w in event.warnings] == ["context.ip"]
        assert not event.errors

    def test_zeroed_idfa_is_not_an_identifier(self):
        """Apple's all-zero IDFA (tracking not allowed) is not sent as a MAID."""
        event = parse_input(
            _track(device={"advertisingId": "00000000-0000-0000-0000-000000000000"}), now=NOW
        )
        assert "hashed_maids" not in event.identifiers

    @pytest.mark.parametrize(
        ("context", "expected"),
        [
            ({}, None),
            ({"opt_out": True}, True),
            ({"opt_out": False}, False),
            ({"device": {"adTrackingEnabled": False}}, True),
            ({"device": {"adTrackingEnabled": True}}, None),
        ],
    )
    def test_opt_out_only_from_an_explicit_signal(self, context, expected):
        """opt_out comes from context.opt_out or adTrackingEnabled=false, never by default."""
        assert parse_input(_track(**context), now=NOW).opt_out is expected

    @pytest.mark.parametrize(
        ("context", "properties", "expected"),
        [
            ({"opt_out_type": "LDP"}, {}, True),
            ({}, {"opt_out_type": "ldp"}, True),
            ({"opt_out_type": "OTHER,LDP"}, {}, True),
            ({}, {}, False),
        ],
    )
    def test_limited_data_processing(self, context, properties, expected):
        """LDP is read from properties.opt_out_type or context.opt_out_type."""
        message = {**_track(**context), "properties": properties}
        assert parse_input(message, now=NOW).limited_data_processing is expected

    @pytest.mark.parametrize(
        ("message", "field"),
        [
            ({"type": "track", "timestamp": NOW}, "event"),
            ({"type": "track", "event": "X", "timestamp": "soon"}, "timestamp"),
            ({"type": "boom"}, "type"),
            ({"hello": 1}, "type"),
            ([1, 2], ""),
        ],
    )
    def test_errors_name_the_field(self, message, field):
        """Unreadable calls give an error naming the field."""
        assert [e.field for e in parse_input(message, now=NOW).errors] == [field]

    @pytest.mark.parametrize("key", ["timestamp", "originalTimestamp"])
    def test_integer_beyond_a_float_is_a_field_error(self, key):
        """An epoch of over 308 digits is an error on ``timestamp``, not an OverflowError."""
        event = parse_input({"type": "track", "event": "X", key: 10**400}, now=NOW)
        assert [e.field for e in event.errors] == ["timestamp"]

    @pytest.mark.parametrize(
        ("times", "expected"),
        [
            ({"timestamp": 10**400, "sentAt": NOW}, 10**400),
            ({"timestamp": NOW, "sentAt": 10**400}, NOW),
            ({"originalTimestamp": 10**400, "sentAt": NOW}, None),
            ({"timestamp": NOW - 10, "sentAt": NOW - 10}, NOW),
        ],
        ids=["huge-timestamp", "huge-sentAt", "huge-originalTimestamp", "readable"],
    )
    def test_clock_skew_correction_never_raises(self, times, expected):
        """Unreadable times leave the call as it is (the transform reports them)."""
        message = {"type": "track", "event": "X", **times}
        correct_clock_skew(message, None, NOW)
        assert message.get("timestamp") == expected

    def test_event_id_sources(self):
        """messageId is the event id; properties.event_id is the fallback."""
        assert parse_input({**_track(), "messageId": "m1"}, now=NOW).event_id == "m1"
        assert parse_input({**_track(), "properties": {"event_id": "p1"}}, now=NOW).event_id == "p1"

    def test_missing_timestamp_means_now(self):
        """A call without a timestamp happened when it was received."""
        assert parse_input({"type": "track", "event": "X"}, now=NOW).event_time == NOW


class TestNative:
    def test_raw_pii_scalars_and_lists(self):
        """user_data may hold raw values as scalars or lists; clear-text fields are kept."""
        event = parse_input(
            {
                "event_name": "checkout",
                "event_time": "2026-11-22T11:00:00Z",
                "user_data": {
                    "em": "raw@x.com",
                    "ph": ["+1 650 555 1234", "+44 20 7946 0958"],
                    "client_ip_address": "203.0.113.1",
                    "client_user_agent": "UA",
                    "click_id": "epik-1",
                },
            },
            now=NOW,
        )
        assert event.identifiers == {
            "em": ["raw@x.com"],
            "ph": ["+1 650 555 1234", "+44 20 7946 0958"],
        }
        assert (event.click_id, event.event_time, event.action_source) == ("epik-1", NOW, "web")

    def test_integer_beyond_a_float_is_a_field_error(self):
        """An event_time of over 308 digits is an error on ``event_time``."""
        event = parse_input({"event_name": "lead", "event_time": 10**400}, now=NOW)
        assert [e.field for e in event.errors] == ["event_time"]

    def test_unknown_event_level_key_is_an_error(self):
        """A key Pinterest does not know at event level is refused by name."""
        event = parse_input({"event_name": "lead", "colour": "red"}, now=NOW)
        assert [e.field for e in event.errors] == ["colour"]

    def test_ldp_in_user_data_moves(self):
        """opt_out_type put in user_data (a common plugin mistake) is honoured, with a warning."""
        event = parse_input(
            {"event_name": "lead", "user_data": {"em": "a@b.co", "opt_out_type": "LDP"}}, now=NOW
        )
        assert event.limited_data_processing
        assert [w.field for w in event.warnings] == ["user_data.opt_out_type"]
