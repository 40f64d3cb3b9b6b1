"""Bots and consent: traffic that never reaches Pinterest."""

from __future__ import annotations

import pytest

from pinbridge.filters import ads_consent_denied, bot_name, pinterest_excluded
from pinbridge.inputs.segment import correct_clock_skew

BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)


class TestBots:
    @pytest.mark.parametrize(
        ("agent", "name"),
        [
            (
                "Mozilla/5.0 (compatible; Pinterestbot/1.0; +http://www.pinterest.com/bot.html)",
                "Pinterestbot",
            ),
            (
                "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                "Googlebot",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                "HeadlessChrome/120.0.0.0 Safari/537.36",
                "Headless",
            ),
            ("curl/8.5.0", "curl"),
            ("python-requests/2.31", "python-requests"),
        ],
    )
    def test_crawlers(self, agent, name):
        """Crawlers, headless browsers and HTTP tools are recognised by name."""
        assert bot_name(agent).lower().startswith(name.lower()[:6])

    @pytest.mark.parametrize(
        "agent",
        [
            BROWSER,
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
            "",
        ],
    )
    def test_people(self, agent):
        """Browsers of people are not bots."""
        assert bot_name(agent) is None


class TestConsent:
    @pytest.mark.parametrize(
        ("context", "denied"),
        [
            ({"consent": {"ads": False}}, True),
            ({"consent": {"ads": True}}, False),
            ({"consent": {"categoryPreferences": {"Advertising": False}}}, True),
            ({"consent": {"categoryPreferences": {"Marketing": False, "Analytics": True}}}, True),
            ({"consent": {"categoryPreferences": {"Analytics": False}}}, False),
            ({}, False),
            ({"consent": "no"}, False),
        ],
    )
    def test_ads_consent(self, context, denied):
        """Only an explicit refusal of advertising counts as denied."""
        assert ads_consent_denied({"type": "track", "context": context}) is denied


class TestClockSkew:
    @pytest.mark.parametrize(
        ("message", "batch_sent_at", "expected"),
        [
            ({"timestamp": 1000.0, "sentAt": 1100.0}, None, 1400.0),
            ({"timestamp": 1000.0}, 1100.0, 1400.0),
            ({"timestamp": 1000.0, "sentAt": 1500.0}, 1100.0, 1000.0),
            ({"timestamp": 1000.0}, None, 1000.0),
            ({"timestamp": "1970-01-01T00:16:40Z"}, "1970-01-01T00:18:20Z", 1400.0),
            ({"timestamp": 1000.0, "sentAt": "garbage"}, None, 1000.0),
            # RudderStack's SDKs: originalTimestamp and sentAt, no timestamp.
            ({"originalTimestamp": 1000.0, "sentAt": 1100.0}, None, 1400.0),
            ({"originalTimestamp": "1970-01-01T00:16:40Z"}, 1100.0, 1400.0),
            ({"timestamp": 900.0, "originalTimestamp": 1000.0, "sentAt": 1100.0}, None, 1300.0),
        ],
    )
    def test_timestamp_corrected_by_the_send_delay(self, message, batch_sent_at, expected):
        """timestamp moves by receivedAt - sentAt, as Segment's servers do."""
        correct_clock_skew(message, batch_sent_at, 1500.0)
        assert message["timestamp"] == expected


class TestIntegrations:
    @pytest.mark.parametrize(
        ("integrations", "excluded"),
        [
            (None, False),
            ({}, False),
            ({"Pinterest": False}, True),
            ({"pinterest conversions api": False}, True),
            ({"Pinterest": True}, False),
            ({"All": False}, True),
            ({"All": False, "Pinterest": True}, False),
            ({"All": False, "Pinterest": {"some": "option"}}, False),
            ({"All": True, "Pinterest": False}, True),
            ({"All": False, "Mixpanel": True}, True),
            ({"Mixpanel": False}, False),
            ({"All": "false"}, False),
            ("Pinterest", False),
        ],
    )
    def test_segment_integrations(self, integrations, excluded):
        """A call's ``integrations`` keeps it from Pinterest as Segment reads it."""
        message = {"type": "track", "event": "x"}
        if integrations is not None:
            message["integrations"] = integrations
        assert pinterest_excluded(message) is excluded
