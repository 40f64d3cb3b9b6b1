"""Offline rows: money as CRM exports write it, read by one documented rule."""

from __future__ import annotations

import pytest

from pinbridge.offline import parse_offline_money, row_to_message

FIELDS = {"value": "Total", "currency": "Currency"}


class TestOfflineMoney:
    @pytest.mark.parametrize(
        ("value", "currency", "expected"),
        [
            ("$1,234.50", "USD", ("1234.50", "USD")),
            ("1,234.50 USD", None, ("1234.50", "USD")),
            ("USD 1,234.50", None, ("1234.50", "USD")),
            ("1,234.50 usd", None, ("1234.50", "USD")),
            ("$1,234.50 USD", None, ("1234.50", "USD")),
            ("US$1,234.50", None, ("1234.50", "USD")),
            ("1.234,50 €", None, ("1234.50", "EUR")),
            ("€1.234,50", "EUR", ("1234.50", "EUR")),
            ("1 234,50 €", None, ("1234.50", "EUR")),
            ("1\u00a0234,50\u00a0€", None, ("1234.50", "EUR")),  # no-break spaces
            ("CHF 1'234.50", None, ("1234.50", "CHF")),
            ("£12", None, ("12", "GBP")),
            ("12,5 zł", None, ("12.5", "PLN")),
            ("1,234,567", "USD", ("1234567", "USD")),
            ("1.234.567,89", "EUR", ("1234567.89", "EUR")),
            ("0,125", "KWD", ("0.125", "KWD")),  # "0," cannot start a thousands group
            ("1,2345", "USD", ("1.2345", "USD")),
            ("-$12.50", "USD", ("-12.50", "USD")),
            ("$-12.50", "CAD", ("-12.50", "CAD")),  # "$" agrees with any dollar
            ("¥1,200", "JPY", ("1200", "JPY")),  # no minor unit: thousands
            ("1.200 ₩", None, ("1200", "KRW")),
            ("1,200", "JPY", ("1200", "JPY")),
            ("100 kr", "SEK", ("100", "SEK")),
        ],
    )  # fmt: skip
    def test_read(self, value, currency, expected):
        """Signs, ISO codes and unambiguous separators give a plain decimal and the currency."""
        assert parse_offline_money(value, currency) == expected

    @pytest.mark.parametrize(
        ("value", "currency"),
        [
            ("12.50", "USD"),
            ("1.234", "USD"),  # a plain decimal, as the collector reads it
            ("-3", None),
            (12.5, "USD"),  # a JSON number
            ("lots", "USD"),  # no sign or separator: the transform refuses it, as before
            ("1e3", None),
        ],
    )  # fmt: skip
    def test_plain_values_unchanged(self, value, currency):
        """A value without sign, code, ',' or grouping is left to the transform, as before."""
        assert parse_offline_money(value, currency) == (value, currency)

    @pytest.mark.parametrize(
        ("value", "currency", "why"),
        [
            ("1,234", "USD", "three digits may separate thousands or decimals"),
            ("$1.234", "USD", "three digits may separate thousands or decimals"),
            ("1.234 €", None, "three digits may separate thousands or decimals"),
            ("$1,23,4.50", "USD", "is not an amount"),
            ("12,34,56", None, "is not an amount"),
            ("1 234'567", None, "is not an amount"),
            ("1,234.567.8", None, "is not an amount"),
            ("$", "USD", "is not an amount"),
            ("$12.50x", "USD", "is not an amount"),
            ("$12.5x", "USD", "is not an amount"),
            ("€12", "USD", "its currency € (EUR) differs from the currency column (USD)"),
            ("12 GBP", "EUR", "its currency GBP (GBP) differs from the currency column (EUR)"),
            ("$12", "EUR", "its currency $ (USD, CAD, AUD, …) differs from the currency column"),
            ("€12 USD", None, "its currency marks € and USD disagree"),
            ("$12", None, "$ stands for several currencies"),
            ("¥12", None, "¥ stands for several currencies (JPY, CNY)"),
        ],
    )  # fmt: skip
    def test_refused_naming_the_field(self, value, currency, why):
        """Ambiguous or malformed amounts and conflicting currencies are errors on ``value``."""
        with pytest.raises(ValueError) as caught:
            parse_offline_money(value, currency)
        assert str(caught.value).startswith("value: ")
        assert why in str(caught.value)

    @pytest.mark.parametrize("value", ["$7,654.38", "7,654", "€6.789,01 USD", "8,76,5 €"])
    def test_messages_never_quote_the_value(self, value):
        """A reason names the field and the rule, never the digits written."""
        with pytest.raises(ValueError) as caught:
            parse_offline_money(value, "GBP")
        assert not any(part in str(caught.value) for part in ("7,654", "6.789", "8,76", "38"))


class TestRowToMessage:
    @pytest.mark.parametrize(
        ("row", "properties"),
        [
            ({"Total": "$1,234.50", "Currency": "USD"}, {"revenue": "1234.50", "currency": "USD"}),
            ({"Total": "1.234,50 €", "Currency": ""}, {"revenue": "1234.50", "currency": "EUR"}),
        ],
    )  # fmt: skip
    def test_money_becomes_revenue_and_currency(self, row, properties):
        """The offline value reaches ``revenue`` as a plain decimal, with its currency."""
        message = row_to_message(row, FIELDS, default_event="Order Completed")
        assert {k: message["properties"].get(k) for k in properties} == properties
