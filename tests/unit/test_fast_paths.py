"""The fast paths of the transform and the accept path give what the plain rules give."""

from __future__ import annotations

import copy
import hashlib
import re
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec import UNSET

from pinbridge.customdata import (
    _cached_item,
    _personal_item_fields,
    custom_data_from_segment,
    scrub_personal,
)
from pinbridge.pinterest.schema import HASHED_FIELDS, ConversionEvent, UserData
from pinbridge.redact import (
    _DIGEST,
    _NAMED_THINGS,
    _PII_KEYS,
    _URL_PII_KEYS,
    REDACTED,
    redact,
    scrub_url,
)
from pinbridge.transform import Transformer
from pinbridge.validate import EventValidator

_EMAIL = re.compile(r"(?<![^@\s])[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+\d[\d\s().-]{5,}\d|\(?\d{2,4}\)?[\s.-]\d{3,4}[\s.-]\d{3,4}")
_BARE_PHONE = re.compile(r"(?<![^\s(])\d{10,15}(?![^\s.,;:!?)])")
_DIGESTS = re.compile(r"[0-9a-f]{64}(?:,[0-9a-f]{64})*")
H = hashlib.sha256(b"a").hexdigest()


def _plain_personal(text: str) -> bool:
    """looks_personal as specified: no cache, no pre-checks; the text and its first three
    URL-decodings are all searched."""
    forms = [text]
    for _ in range(3):
        forms.append(unquote_plus(forms[-1]))
    return any(_plain_match(form) for form in forms)


def _plain_match(text: str) -> bool:
    if _EMAIL.search(text):
        return True
    if not text.isalpha() and _PHONE.search(text):
        return True
    return _BARE_PHONE.search(text) is not None and any(c.isalpha() for c in text)


def _plain_redact(value: Any, parent: str = "") -> Any:
    """redact as first written: one recursive function per value."""
    if isinstance(value, dict):
        return {k: _plain_item(k, v, parent) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_redact(v, parent) for v in value]
    if isinstance(value, str) and _plain_personal(value):
        return REDACTED
    if isinstance(value, str) and not any(c.isspace() for c in value):
        return _plain_url(value)
    return value


def _plain_url(text: str) -> str:
    """A URL or query string with a parameter named like personal data, parsed and rebuilt
    without it; any other string as it is."""
    base, _, fragment = text.partition("#")
    query = base.partition("?")[2] if "?" in base else None
    route = fragment.rpartition("?")[2]
    names = [k for k, _ in parse_qsl(query or "", keep_blank_values=True)]
    names += [k for k, _ in parse_qsl(route)]
    if not any(_plain_key(k) in _URL_PII_KEYS for k in names):
        return text
    if text.startswith("?"):
        return _plain_query(base[1:])
    return scrub_url(text)


def _plain_key(key: str) -> str:
    key = key.strip().lower()
    if "[" in key and key.endswith("]"):
        return key.rstrip("]").rpartition("[")[2] or key.partition("[")[0]
    return key


def _plain_query(query: str) -> str:
    kept = [
        (k, v)
        for k, v in parse_qsl(query, keep_blank_values=True)
        if _plain_key(k) not in _URL_PII_KEYS and not _plain_personal(k) and not _plain_personal(v)
    ]
    return f"?{urlencode(kept)}" if kept else ""


def _plain_item(key: str, value: Any, parent: str) -> Any:
    lowered = key.lower()
    personal = lowered in _PII_KEYS and not (lowered == "name" and parent in _NAMED_THINGS)
    if personal and value not in (None, "", [], {}):
        if isinstance(value, str) and _DIGEST.fullmatch(value.strip()):
            return value
        if isinstance(value, list) and all(
            isinstance(v, str) and _DIGEST.fullmatch(v) for v in value
        ):
            return value
        return REDACTED
    return _plain_redact(value, lowered)


_texts = st.one_of(
    st.sampled_from(
        [
            "a@b.co",
            "a%40b.co",
            "a%2540b.co",
            "+1 650 555 1234",
            "%2B1+650+555+1234",
            "(650) 555-1234",
            "call 4155550199",
            "4155550199",
            "Mug",
            "sku-12",
            H,
            " ",
            "",
            "https://s.example/p?email=x&a=1",
            "https://s.example/p?Zip=94025#top",
            "https://s.example/p?a=1#/ty?first_name=Jane",
            "https://s.example/p#address",
            "?first%5Fname=Jane&q=mug",
            "?customer[city]=SF",
            "?q=mug",
            "why?name=Jane",
        ]
    ),
    st.text(alphabet="ab@.+-() 0123456789%B", max_size=24),
)
_keys = st.one_of(st.sampled_from(sorted(_PII_KEYS | _NAMED_THINGS | {"Email", "Name"})), _texts)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=5),
    max_leaves=25,
)


class TestRedactFastPath:
    @settings(max_examples=400)
    @given(_json)
    def test_same_as_plain_walk(self, value):
        """The one-loop walk with cached verdicts redacts exactly what the plain walk does."""
        assert redact(value) == _plain_redact(value)
        assert redact(value) == _plain_redact(value)  # and again, from the cache


def _plain_user_problems(user: UserData) -> list[str]:
    """The per-field digest rule, field by field."""
    problems = []
    for field in HASHED_FIELDS:
        values = getattr(user, field)
        if values is UNSET:
            continue
        if not values or not _DIGESTS.fullmatch(",".join(values)):
            problems.append(f"user_data.{field}")
    return problems


_digests = st.lists(
    st.one_of(st.just(H), st.sampled_from(["", H.upper(), H[:63], f"{H},{H}", f"{H},", "x"])),
    max_size=3,
)


class TestDigestFastPath:
    @settings(max_examples=400)
    @given(st.dictionaries(st.sampled_from(HASHED_FIELDS), _digests, max_size=6))
    def test_same_as_field_by_field(self, fields):
        """One search over all fields finds the same problems as one search per field."""
        user = UserData(client_ip_address="1.2.3.4", client_user_agent="ua", **fields)
        event = ConversionEvent("lead", "web", 100, "id", user)
        found = [p.field for p in EventValidator()(event, now=100) if p.field != "user_data"]
        assert found == _plain_user_problems(user)


_product_values = st.sampled_from(
    [None, True, False, 1, 1.0, 0, "1", 19.99, "19.99", "", " Mug ", "a@b.co", "(650) 555-1234"]
)
_products = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            key: _product_values
            for key in ("product_id", "sku", "price", "quantity", "name", "category", "brand")
        },
    ),
    min_size=1,
    max_size=3,
)


def _fresh_custom_data(products: list[dict[str, Any]]) -> tuple[Any, Any, Any]:
    """custom_data and its scrub warnings, computed with the product caches emptied."""
    _cached_item.cache_clear()
    _personal_item_fields.cache_clear()
    data, errors = custom_data_from_segment({"products": products})
    scrubbed = copy.deepcopy(data)
    return data, errors, scrub_personal(scrubbed) if scrubbed is not None else []


class TestProductCaches:
    @settings(max_examples=300)
    @given(st.lists(_products, min_size=2, max_size=6))
    def test_warm_caches_give_what_empty_ones_give(self, requests):
        """``True``, ``1`` and ``1.0`` are equal as keys; the cached items must still differ."""
        expected = [_fresh_custom_data(products) for products in requests]
        for products, (data, errors, warnings) in zip(requests * 2, expected * 2, strict=True):
            got, got_errors = custom_data_from_segment({"products": products})
            assert got == data and got_errors == errors
            assert (scrub_personal(got) if got is not None else []) == warnings


class TestPersonCache:
    @pytest.mark.parametrize("first, second", [(True, 1), (1, 1.0), (False, 0), (1.0, True)])
    def test_equal_but_different_raw_values_are_not_confused(self, first, second):
        """A trait sent as ``true`` and then as ``1`` gives each its own outcome."""
        cached, uncached = Transformer(), Transformer(cache_size=0)
        for value in (first, second, first):
            message = {
                "type": "track",
                "event": "Lead",
                "timestamp": 1_700_000_000,
                "context": {
                    "ip": "203.0.113.9",
                    "userAgent": "Mozilla/5.0",
                    "traits": {"phone": value, "address": {"postalCode": value}},
                },
            }
            assert cached(message, now=1_700_000_000) == uncached(message, now=1_700_000_000)
