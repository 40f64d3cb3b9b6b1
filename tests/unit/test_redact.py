"""What the event history keeps of an input: no PII."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinbridge.redact import (
    _URL_PII_KEYS,
    MAX_DEPTH,
    REDACTED,
    TOO_DEEP,
    looks_personal,
    redact,
    scrub_url,
)

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


class TestEncodedValues:
    @pytest.mark.parametrize(
        "text",
        [
            "https://shop.example/thanks?email=zelda.raw%40example.org",
            "zelda.raw%40example.org",
            "zelda.raw%40EXAMPLE.org",
            "https://shop.example/thanks?email=zelda.raw%2540example.org",
            "https://shop.example/s?q=zelda+raw%40example.org&page=2",
            "https://shop.example/s?phone=%2B1+650+555+1234",
            "https://shop.example/s?phone=650+555+1234",
            "https://shop.example/unsubscribe/zelda%40example.org",
        ],
    )
    def test_percent_encoded_personal_data_is_found(self, text):
        """An email or phone number in URL-encoded form (an HTML form sent by GET) is found."""
        assert looks_personal(text)
        assert redact({"properties": {"customer_email_enc": text}}) == {
            "properties": {"customer_email_enc": REDACTED}
        }

    @pytest.mark.parametrize(
        "text",
        [
            "https://shop.example/p/mug?variant=40123456789012&utm_source=pin+board",
            "https://shop.example/s?q=blue+mug&discount=50%25",
            "100%",
            "C++",
            "a%2",
            "%E2%82%AC 12",
        ],
    )
    def test_encoded_text_without_personal_data_is_kept(self, text):
        """Encoded text without an email or phone in it is not redacted."""
        assert not looks_personal(text)

    def test_track_with_encoded_email(self):
        """The review's case: neither the page URL nor the encoded property survives."""
        message = {
            "type": "track",
            "event": "Order Completed",
            "context": {
                "page": {"url": "https://shop.example/thanks?email=zelda.raw%40example.org"}
            },
            "properties": {"customer_email_enc": "zelda.raw%40example.org", "order_id": "o1"},
        }
        kept = redact(message)
        assert "zelda" not in repr(kept)
        assert kept["properties"]["order_id"] == "o1"

    @settings(max_examples=300)
    @given(
        st.emails(),
        st.sampled_from([quote, quote_plus, lambda s: quote(quote(s))]),
        st.sampled_from(["{}", "https://shop.example/thanks?email={}&x=1", "mail: {}"]),
    )
    def test_encoding_never_hides_an_email(self, email, encode, template):
        """However it is URL-encoded (once or twice) and wherever it sits, an email is found."""
        assert looks_personal(template.format(encode(email)))


class TestPersonalKeys:
    @pytest.mark.parametrize(
        "key",
        [
            "fullName",
            "full_name",
            "dob",
            "date_of_birth",
            "birthdate",
            "mobile",
            "mobile_phone",
            "phone_number",
            "phoneNumber",
            "surname",
            "given_name",
            "family_name",
            "middleName",
            "zipcode",
            "zip_code",
            "postcode",
            "street",
            "line1",
            "line2",
            "address_line1",
            "address_line2",
            "username",
            "nickname",
            "email_address",
        ],
    )
    def test_key_is_redacted(self, key):
        """A trait holding a person's name, contact, birth date or address is redacted."""
        kept = redact({"context": {"traits": {key: "Zelda Raw 12", "plan": "gold"}}})
        assert kept["context"]["traits"] == {key: REDACTED, "plan": "gold"}

    @pytest.mark.parametrize("key", ["title", "age", "company", "plan", "website"])
    def test_key_is_kept(self, key):
        """Reserved traits that name no one (a title is more often a page's) are kept."""
        kept = redact({"context": {"traits": {key: "Head of sales"}}})
        assert kept["context"]["traits"] == {key: "Head of sales"}


class TestBareDigits:
    @pytest.mark.parametrize(
        ("text", "personal"),
        [
            ("call me 4155550199", True),
            ("4155550199 after 6pm", True),
            ("tel 415555019912345, thanks", True),
            ("ring (4155550199)", True),
            ("1234567890", False),
            (" 1234567890 ", False),
            ("123456789012345", False),
            ("ORD-1234567890", False),
            ("order1234567890", False),
            ("call me 415555019", False),
            ("call me 4155550199123456", False),
            ("https://shop.example/p/40123456789012", False),
        ],
    )
    def test_digit_run_rule(self, text, personal):
        """10 to 15 digits standing as a word in text with letters are a phone; alone, or glued
        to other characters, they are an id."""
        assert looks_personal(text) is personal

    @given(st.integers(min_value=10**9, max_value=10**15 - 1))
    def test_order_id_alone_is_kept(self, number):
        """An order id made of digits only, alone in its field, is never redacted."""
        assert redact({"properties": {"order_id": str(number)}}) == {
            "properties": {"order_id": str(number)}
        }


class TestScrubUrl:
    """URLs sent as event_source_url keep everything but the personal data they carry."""

    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            (
                "https://shop.example/p/sku-1?q=mug&epik=abc",
                "https://shop.example/p/sku-1?q=mug&epik=abc",
            ),
            (
                "https://shop.example/thanks?email=zelda.raw%40example.org&utm_source=x&epik=abc",
                "https://shop.example/thanks?utm_source=x&epik=abc",
            ),
            ("https://shop.example/?phone=650+555+1234&a=1", "https://shop.example/?a=1"),
            ("https://shop.example/?note=call+me+at+a%40b.co", "https://shop.example/"),
            (
                "https://shop.example/unsubscribe/zelda%40example.org?epik=a",
                "https://shop.example/?epik=a",
            ),
            ("https://shop.example/a#me@x.com", "https://shop.example/a"),
            ("https://bob@shop.example/x", "https://shop.example/x"),
            ("https://[2001:db8::1]:8080/x?email=a@b.co&k=v", "https://[2001:db8::1]:8080/x?k=v"),
        ],
    )
    def test_personal_parts_removed(self, url: str, expected: str) -> None:
        """Personal query parameters, paths, fragments and user names go; the rest stays."""
        assert scrub_url(url) == expected

    @settings(max_examples=200)
    @given(
        st.emails(),
        st.sampled_from(["?e={}", "/u/{}", "#{}", "?a=1&b={}&c=2"]),
        st.booleans(),
    )
    def test_no_email_survives(self, email: str, where: str, encoded: bool) -> None:
        """Wherever an email sits in the URL, encoded or not, it is not in the result."""
        special = set("#?&/=%+")
        value = quote(email, safe="") if encoded or special & set(email) else email
        scrubbed = scrub_url("https://shop.example" + where.format(value))
        assert email.lower() not in scrubbed.lower()
        assert not looks_personal(scrubbed)


_PERSON = "?phone=4155550199&first_name=Jane&last_name=Doe&zip=94025&dob=1990-02-01"


class TestPersonalParameterNames:
    """A query parameter named like personal data goes, whatever its value looks like."""

    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            (f"https://shop.example/ty{_PERSON}", "https://shop.example/ty"),
            (
                f"https://shop.example/ty{_PERSON}&utm_source=pin&epik=E1",
                "https://shop.example/ty?utm_source=pin&epik=E1",
            ),
            ("https://shop.example/?Email=x&a=1", "https://shop.example/?a=1"),
            ("https://shop.example/?first%5Fname=Jane&a=1", "https://shop.example/?a=1"),
            ("https://shop.example/?customer%5Bemail%5D=x&a=1", "https://shop.example/?a=1"),
            ("https://shop.example/?customer[last_name]=Doe&a=1", "https://shop.example/?a=1"),
            ("https://shop.example/?email[]=x&a=1", "https://shop.example/?a=1"),
            ("https://shop.example/?full_name=Jane", "https://shop.example/"),
            # generic or short names are a shop's own filters unless the value is personal
            (
                "https://shop.example/?customer[city]=SF&a=1",
                "https://shop.example/?customer[city]=SF&a=1",
            ),
            ("https://shop.example/s?name=red+dress", "https://shop.example/s?name=red+dress"),
            (
                "https://shop.example/c?state=sale&epik=E1",
                "https://shop.example/c?state=sale&epik=E1",
            ),
            (
                "https://shop.example/l?st=price_asc&ct=2",
                "https://shop.example/l?st=price_asc&ct=2",
            ),
            ("https://shop.example/p?gender=women", "https://shop.example/p?gender=women"),
            ("https://shop.example/?name=jane%40x.co&a=1", "https://shop.example/?a=1"),
            ("https://shop.example/a#/thanks?zip=94025", "https://shop.example/a"),
            ("https://shop.example/a?k=v#last_name=Doe", "https://shop.example/a?k=v"),
            ("https://shop.example/a#address", "https://shop.example/a#address"),
            ("https://shop.example/a?q=mug#reviews", "https://shop.example/a?q=mug#reviews"),
            ("https://shop.example/a?username_hint=1", "https://shop.example/a?username_hint=1"),
            ("https://shop.example/p/mug", "https://shop.example/p/mug"),
        ],
    )
    def test_scrub_url(self, url, expected):
        """Named parameters go even when their values do not look personal; the rest stays."""
        assert scrub_url(url) == expected

    def test_url_without_query_is_returned_as_is(self):
        """The cheap path: no query, fragment or user name, nothing personal: the same object."""
        url = "https://shop.example/p/" + "mug" * 10
        assert scrub_url(url) is url

    @settings(max_examples=200)
    @given(
        st.sampled_from(sorted(_URL_PII_KEYS)),
        st.text(alphabet="abcXYZ019-._ ", max_size=12),
        st.sampled_from(["https://s.example/p?{}&a=1", "https://s.example/?a=1&{}#top"]),
    )
    def test_no_named_parameter_survives(self, key, value, template):
        """Whatever its value, a parameter named like personal data is not in the result."""
        scrubbed = scrub_url(template.format(urlencode({key: value})))
        assert key not in [k.lower() for k, _ in parse_qsl(urlsplit(scrubbed).query)]
        assert "a=1" in scrubbed

    @pytest.mark.parametrize(
        ("where", "value", "expected"),
        [
            ("url", f"https://shop.example/ty{_PERSON}&epik=E1", "https://shop.example/ty?epik=E1"),
            ("referrer", f"https://shop.example/form{_PERSON}", "https://shop.example/form"),
            ("search", f"{_PERSON}&q=mug", "?q=mug"),
            ("search", _PERSON, ""),
            ("url", "https://shop.example/ty?epik=E1", "https://shop.example/ty?epik=E1"),
            ("title", "Why? name=Jane", "Why? name=Jane"),
        ],
    )
    def test_page_fields_in_the_kept_input(self, where, value, expected):
        """``page.url``, ``page.search`` and ``page.referrer`` (in the context or in a page
        call's properties) are kept without their personal parameters."""
        message = {
            "type": "page",
            "context": {"page": {where: value}},
            "properties": {where: value},
        }
        kept = redact(message)
        assert kept["context"]["page"][where] == expected
        assert kept["properties"][where] == expected


class TestDepth:
    @pytest.mark.parametrize("kind", ["list", "object"])
    def test_deep_nesting_never_raises(self, kind):
        """A value nested 5000 deep (msgspec decodes 700) is cut at MAX_DEPTH, not a crash."""
        value: object = 1
        for _ in range(5000):
            value = [value] if kind == "list" else {"a": value}
        kept = redact({"properties": {"x": value}})
        level, depth = kept["properties"]["x"], 3
        while level != TOO_DEEP:
            level, depth = (level[0] if kind == "list" else level["a"]), depth + 1
        assert depth == MAX_DEPTH + 1

    def test_shallow_values_are_untouched(self):
        """Nesting within MAX_DEPTH is walked as before."""
        value: object = "x"
        for _ in range(MAX_DEPTH - 1):
            value = [value]
        assert redact(value) == value
