"""custom_data from Segment e-commerce properties and from Pinterest-shaped inputs."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinbridge.customdata import (
    custom_data_from_native,
    custom_data_from_segment,
    parse_currency,
    parse_money,
    scrub_personal,
)


def _built(properties, **kwargs):
    data, errors = custom_data_from_segment(properties, **kwargs)
    assert errors == []
    return msgspec.to_builtins(data)


class TestMoney:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (72.39, "72.39"),
            (10, "10"),
            ("52.390", "52.390"),
            (" 5 ", "5"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e-7, "0.0000001"),
            ("1E+2", "100"),
            (-5, "-5"),
        ],
    )
    def test_decimal_strings(self, value, expected):
        """Numbers and numeric strings become plain decimal strings, never exponents."""
        assert parse_money(value) == expected

    @pytest.mark.parametrize("value", ["abc", "", "1,299.00", True, None, [], float("inf"), "NaN"])
    def test_refused(self, value):
        """Non-numbers, booleans and non-finite values are refused."""
        with pytest.raises(ValueError, match="number"):
            parse_money(value)

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            ("1e50000000", "absolute value"),
            ("1e999999999", "absolute value"),
            ("-1e999999999", "absolute value"),
            ("9" * 16, "absolute value"),
            ("1000000000000000.5", "absolute value"),
            (10**15, "absolute value"),
            (-(10**40), "absolute value"),
            (1e15, "absolute value"),
            (1e308, "absolute value"),
            ("1e-999999999", "decimal places"),
            ("0e-999999999", "decimal places"),
            (5e-324, "decimal places"),
            ("0." + "0" * 32 + "1", "decimal places"),  # plain digits: the fast path too
            ("72.39" + "0" * 31, "decimal places"),
            ("1" * 65, "64 characters"),
            (" " * 60 + "1e999999999", "64 characters"),
        ],
    )
    def test_out_of_range_refused(self, value, message):
        """Huge or minute magnitudes and over-long strings are refused before being written
        out (``"1e999999999"`` would be a gigabyte of zeros)."""
        with pytest.raises(ValueError, match=message):
            parse_money(value)

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("9" * 15, "9" * 15),
            (10**15 - 1, "999999999999999"),
            (-(10**15) + 1, "-999999999999999"),
            ("999999999999999.99", "999999999999999.99"),
            ("1e-32", "0." + "0" * 31 + "1"),
            ("0." + "0" * 31 + "1", "0." + "0" * 31 + "1"),
            ("0e999999999", "0"),
        ],
    )
    def test_edges_kept(self, value, expected):
        """Just below 10^15, and up to 32 decimal places, are sent."""
        assert parse_money(value) == expected

    @settings(max_examples=300)
    @given(
        st.one_of(
            st.integers(),
            st.floats(allow_nan=False, allow_infinity=False),
            st.decimals(allow_nan=False, allow_infinity=False).map(str),
            st.from_regex(r"-?\d{1,20}(\.\d{1,40})?([eE][-+]?\d{1,10})?", fullmatch=True),
        )
    )
    def test_result_is_short_and_exact(self, value):
        """Whatever the input, the result is a plain decimal of bounded length equal to it,
        or a ValueError."""
        try:
            text = parse_money(value)
        except ValueError:
            return
        assert len(text) <= 1 + 15 + 1 + 32 + 64
        assert "e" not in text.lower()
        expected = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
        assert Decimal(text) == expected and abs(Decimal(text)) < Decimal(10) ** 15

    @pytest.mark.parametrize(
        ("value", "expected"), [("usd", "USD"), (" EUR ", "EUR"), ("jpy", "JPY")]
    )
    def test_currency(self, value, expected):
        """ISO-4217 codes are upper-cased."""
        assert parse_currency(value) == expected

    @pytest.mark.parametrize("value", ["US", "dollars", "XYZ", ""])
    def test_bad_currency(self, value):
        """Codes not in ISO-4217 are refused."""
        with pytest.raises(ValueError, match="ISO-4217"):
            parse_currency(value)


class TestSegment:
    def test_order_completed(self):
        """An order's value, currency, id and products map to Pinterest's keys."""
        assert _built(
            {
                "order_id": "o-1",
                "revenue": 25.5,
                "total": 30,
                "currency": "eur",
                "coupon": "SAVE",
                "email": "hidden@example.com",
                "products": [
                    {
                        "product_id": "p1",
                        "sku": "s1",
                        "price": 10,
                        "quantity": 2,
                        "name": "Mug",
                        "category": "Kitchen",
                        "brand": "Acme",
                    },
                    {"sku": "s2", "price": "5.5"},
                ],
            }
        ) == {
            "currency": "EUR",
            "value": "25.5",
            "order_id": "o-1",
            "content_ids": ["p1", "s2"],
            "contents": [
                {
                    "id": "p1",
                    "item_price": "10",
                    "quantity": 2,
                    "item_name": "Mug",
                    "item_category": "Kitchen",
                    "item_brand": "Acme",
                },
                {"id": "s2", "item_price": "5.5"},
            ],
            "num_items": 3,
        }

    @pytest.mark.parametrize(
        ("properties", "expected"),
        [
            ({"revenue": 1, "total": 2, "value": 3}, "1"),
            ({"total": 2, "value": 3}, "2"),
            ({"value": 3}, "3"),
        ],
    )
    def test_value_precedence(self, properties, expected):
        """value comes from revenue, else total, else value."""
        assert _built(properties)["value"] == expected

    def test_single_product_event(self):
        """Product Viewed carries the product in the properties themselves."""
        assert _built({"product_id": "p9", "price": 3, "name": "Cup", "brand": "B"}) == {
            "content_ids": ["p9"],
            "content_name": "Cup",
            "content_brand": "B",
            "contents": [{"id": "p9", "item_price": "3", "item_name": "Cup", "item_brand": "B"}],
            "num_items": 1,
        }

    def test_search_and_category(self):
        """query is the search string; a page category is the content category."""
        assert _built({"query": "red shoes"}, page_category="Shoes") == {
            "search_string": "red shoes",
            "content_category": "Shoes",
        }

    def test_nothing_known_gives_none(self):
        """Properties without e-commerce keys give no custom_data at all."""
        assert custom_data_from_segment({"email": "a@b.co", "note": "x"}) == (None, [])

    @pytest.mark.parametrize(
        ("properties", "field"),
        [
            ({"revenue": "lots"}, "properties.revenue"),
            ({"currency": "dollars"}, "properties.currency"),
            (
                {"products": [{"product_id": "p", "quantity": 1.5}]},
                "properties.products[0].quantity",
            ),
            ({"products": [{"product_id": "p", "price": "x"}]}, "properties.products[0].price"),
            ({"revenue": "1e50000000"}, "properties.revenue"),
            ({"total": "1e999999999"}, "properties.total"),
            ({"value": 10**20}, "properties.value"),
            (
                {"products": [{"product_id": "p", "price": "1e999999999"}]},
                "properties.products[0].price",
            ),
            ({"products": ["p"]}, "properties.products[0]"),
            ({"products": "p1,p2"}, "properties.products"),
        ],
    )
    def test_errors_name_the_field(self, properties, field):
        """A bad e-commerce property is an error on that field."""
        assert [e.field for e in custom_data_from_segment(properties)[1]] == [field]


class TestQuantities:
    """quantity and num_items are int64, as Pinterest types them."""

    @pytest.mark.parametrize(
        ("quantity", "expected"),
        [
            (2, 2),
            ("3", 3),
            (4.0, 4),
            (-1, -1),
            (" -00012 ", -12),
            (2**63 - 1, 2**63 - 1),
            (-(2**63), -(2**63)),
            ("9223372036854775807", 2**63 - 1),
            ("0" * 40 + "5", 5),
        ],
    )
    def test_int64_kept(self, quantity, expected):
        """Whole numbers within int64 are sent, negative ones included, as before."""
        data = _built({"products": [{"product_id": "p", "quantity": quantity}]})
        assert data["contents"][0]["quantity"] == expected == data["num_items"]

    @pytest.mark.parametrize(
        ("quantity", "message"),
        [
            (1e20, "64-bit"),
            (10**20, "64-bit"),
            (2**63, "64-bit"),
            (-(2**63) - 1, "64-bit"),
            ("99999999999999999999999", "64-bit"),
            ("9223372036854775808", "64-bit"),
            ("9" * 5000, "64-bit"),
            ("²", "whole number"),
            ("1.5", "whole number"),
        ],
    )
    def test_beyond_int64_refused(self, quantity, message):
        """A quantity beyond int64 (or not a whole number) is an error naming it."""
        _, errors = custom_data_from_segment(
            {"products": [{"product_id": "p", "quantity": quantity}]}
        )
        assert [e.field for e in errors] == ["properties.products[0].quantity"]
        assert message in errors[0].message

    def test_sum_beyond_int64_refused(self):
        """Quantities that each fit but add up beyond int64 are an error on the products."""
        products = [{"product_id": "p", "quantity": 2**62}, {"product_id": "q", "quantity": 2**62}]
        data, errors = custom_data_from_segment({"products": products})
        assert [e.field for e in errors] == ["properties.products"]
        assert data is not None and data.num_items is msgspec.UNSET

    @pytest.mark.parametrize(
        ("custom", "field"),
        [
            ({"contents": [{"id": "1", "quantity": 2**63}]}, "custom_data.contents[0].quantity"),
            (
                {"contents": [{"id": "1", "quantity": -(2**63) - 1}]},
                "custom_data.contents[0].quantity",
            ),
            ({"num_items": 10**20}, "custom_data.num_items"),
        ],
    )
    def test_native_beyond_int64_refused(self, custom, field):
        """A Pinterest-shaped quantity or num_items beyond int64 is an error naming it."""
        assert [e.field for e in custom_data_from_native(custom)[1]] == [field]

    @settings(max_examples=300)
    @given(st.lists(st.integers() | st.integers().map(str), min_size=1, max_size=4))
    def test_sent_quantities_are_int64(self, quantities):
        """Whatever the quantities, what is sent fits int64, and a refused one is named."""
        products = [{"product_id": f"p{i}", "quantity": q} for i, q in enumerate(quantities)]
        data, errors = custom_data_from_segment({"products": products})
        for index, given_quantity in enumerate(quantities):
            fits = -(2**63) <= int(given_quantity) < 2**63
            named = f"properties.products[{index}].quantity" in [e.field for e in errors]
            assert fits is not named
        assert data is not None
        for item in data.contents:
            assert item.quantity is msgspec.UNSET or -(2**63) <= item.quantity < 2**63
        assert data.num_items is msgspec.UNSET or -(2**63) <= data.num_items < 2**63


class TestNative:
    def test_numbers_become_strings(self):
        """value, predicted_ltv and item_price given as numbers are sent as strings."""
        data, errors = custom_data_from_native(
            {
                "value": 9.5,
                "predicted_ltv": 100,
                "currency": "usd",
                "contents": [{"id": "1", "item_price": 2, "quantity": 1}],
            }
        )
        assert errors == []
        assert msgspec.to_builtins(data) == {
            "value": "9.5",
            "predicted_ltv": "100",
            "currency": "USD",
            "contents": [{"id": "1", "item_price": "2", "quantity": 1}],
        }

    @pytest.mark.parametrize(
        ("custom", "field"),
        [
            ({"category_name": "x"}, "custom_data.category_name"),
            ({"num_items": "2"}, "custom_data.num_items"),
            ({"contents": [{"id": "1", "quantity": "1"}]}, "custom_data.contents[0].quantity"),
            ({"value": "abc"}, "custom_data.value"),
            ({"value": "1e999999999"}, "custom_data.value"),
            ({"predicted_ltv": "1e50000000"}, "custom_data.predicted_ltv"),
            (
                {"contents": [{"id": "1", "item_price": "1e999999999"}]},
                "custom_data.contents[0].item_price",
            ),
        ],
    )
    def test_errors_name_the_field(self, custom, field):
        """Keys and types Pinterest refuses are errors naming the field."""
        assert [e.field for e in custom_data_from_native(custom)[1]] == [field]


class TestScrubPersonal:
    def test_personal_text_is_removed(self):
        """Emails and phone numbers in custom_data text are removed, with a warning each."""
        data, _ = custom_data_from_segment(
            {
                "name": "Gift for jane@example.com",
                "query": "+1 (650) 555-1234",
                "order_id": "o-77",
                "products": [{"product_id": "p1", "name": "call 650-555-1234", "brand": "Acme"}],
            }
        )
        warnings = scrub_personal(data)
        assert [w.field for w in warnings] == [
            "custom_data.content_name",
            "custom_data.search_string",
            "custom_data.contents[0].item_name",
        ]
        encoded = msgspec.json.encode(data)
        assert b"jane" not in encoded and b"555" not in encoded
        assert data.order_id == "o-77" and data.contents[0].item_brand == "Acme"
