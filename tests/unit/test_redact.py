"""What the event history keeps of an input: no PII."""

from __future__ import annotations

import hashlib

from pinbridge.redact import REDACTED, redact

H = hashlib.sha256(b"a@b.co").hexdigest()


class TestRedact:
    def test_segment_traits(self):
        """Traits that identify a person are redacted; event data is kept."""
        message = {
            "type": "track",
            "event": "Order Completed",
            "userId": "u-1",
            "context": {
                "ip": "203.0.113.9",
                "traits": {
                    "email": "jane@x.com",
                    "phone": "+1 650 555 1234",
                    "firstName": "Jane",
                    "name": "Jane Doe",
                    "birthday": "1990-01-01",
                    "gender": "f",
                    "address": {"city": "SF", "postalCode": "94103"},
                    "plan": "gold",
                },
                "page": {"name": "Thanks", "url": "https://shop/thanks"},
            },
            "properties": {"name": "Summer sale", "products": [{"name": "Mug", "price": 3}]},
        }
        kept = redact(message)
        traits = kept["context"]["traits"]
        assert {
            k: traits[k]
            for k in ("email", "phone", "firstName", "name", "birthday", "gender", "address")
        } == dict.fromkeys(
            ("email", "phone", "firstName", "name", "birthday", "gender", "address"), REDACTED
        )
        assert traits["plan"] == "gold"
        assert kept["context"]["page"]["name"] == "Thanks"
        assert kept["properties"] == message["properties"]
        assert kept["userId"] == "u-1" and kept["context"]["ip"] == "203.0.113.9"
        assert message["context"]["traits"]["email"] == "jane@x.com"  # the input is untouched

    def test_pinterest_user_data(self):
        """Raw user_data values are redacted, digests kept."""
        kept = redact(
            {"event_name": "lead", "user_data": {"em": ["jane@x.com"], "ph": [H], "fn": "Jane"}}
        )
        assert kept["user_data"] == {"em": REDACTED, "ph": [H], "fn": REDACTED}

    def test_device_ids_and_page_names(self):
        """Advertising ids are redacted; a page call's own name is kept."""
        kept = redact(
            {"type": "page", "name": "Home", "context": {"device": {"advertisingId": "AB-1"}}}
        )
        assert kept == {
            "type": "page",
            "name": "Home",
            "context": {"device": {"advertisingId": REDACTED}},
        }

    def test_pii_hidden_in_free_text(self):
        """Emails and phone numbers anywhere else are redacted too."""
        kept = redact(
            {"properties": {"note": "mail jane@x.com", "tel": "+44 20 7946 0958", "qty": "12"}}
        )
        assert kept["properties"] == {"note": REDACTED, "tel": REDACTED, "qty": "12"}
