"""Pinterest's rules on produced events."""

from __future__ import annotations

import hashlib

import pytest

from pinbridge.pinterest.schema import Content, ConversionEvent, CustomData, UserData
from pinbridge.validate import IDENTIFIER_RULE, EventValidator

NOW = 1_795_345_200
H = hashlib.sha256(b"a@b.co").hexdigest()


def _event(**changes):
    fields = {
        "event_name": "checkout",
        "action_source": "web",
        "event_time": NOW,
        "event_id": "e1",
        "user_data": UserData(em=[H]),
    }
    fields.update(changes)
    return ConversionEvent(**fields)


class TestEventValidator:
    def test_valid(self):
        """A complete event has no problems."""
        assert EventValidator()(_event(), now=NOW) == []

    @pytest.mark.parametrize(
        ("changes", "field", "message"),
        [
            ({"event_name": "purchase"}, "event_name", "not a Pinterest event name"),
            ({"action_source": "email"}, "action_source", "must be one of"),
            ({"event_id": ""}, "event_id", "empty"),
            ({"event_time": NOW - 8 * 86400}, "event_time", "7 days"),
            ({"event_time": NOW * 1000}, "event_time", "future"),
            ({"event_time": NOW + 301}, "event_time", "future"),
            ({"user_data": UserData()}, "user_data", IDENTIFIER_RULE),
            ({"user_data": UserData(client_ip_address="1.2.3.4")}, "user_data", IDENTIFIER_RULE),
            ({"user_data": UserData(ph=[H])}, "user_data", IDENTIFIER_RULE),
            ({"user_data": UserData(em=["a@b.co"])}, "user_data.em", "SHA-256"),
            ({"user_data": UserData(em=[H.upper()])}, "user_data.em", "SHA-256"),
            ({"user_data": UserData(em=[H], ph=[])}, "user_data.ph", "empty"),
            ({"custom_data": CustomData(value="12,5")}, "custom_data.value", "decimal"),
            ({"custom_data": CustomData(currency="usd")}, "custom_data.currency", "ISO-4217"),
            (
                {"custom_data": CustomData(contents=[Content(item_price="x")])},
                "custom_data.contents[0].item_price",
                "decimal",
            ),
        ],
    )
    def test_rules(self, changes, field, message):
        """Each rule refuses the event with a problem naming the field."""
        problems = EventValidator()(_event(**changes), now=NOW)
        assert [p.field for p in problems] == [field]
        assert message in problems[0].message

    @pytest.mark.parametrize(
        "user",
        [
            UserData(em=[H]),
            UserData(hashed_maids=[H]),
            UserData(client_ip_address="1.2.3.4", client_user_agent="UA"),
        ],
    )
    def test_identifier_rule_alternatives(self, user):
        """em, hashed_maids, or IP and user agent together each satisfy the rule."""
        assert EventValidator()(_event(user_data=user), now=NOW) == []

    def test_time_window_edges(self):
        """Exactly 7 days old and exactly the skew ahead are still accepted."""
        validator = EventValidator()
        assert validator.check_time(NOW - 7 * 86400, now=NOW) == []
        assert validator.check_time(NOW + 300, now=NOW) == []

    def test_configured_names(self):
        """Advertiser-defined names are accepted when configured."""
        validator = EventValidator(extra_names=frozenset({"quote"}))
        assert validator(_event(event_name="quote"), now=NOW) == []
