"""Offline conversions: rows of a CRM or point-of-sale export turned into input events.

A row becomes a Segment ``track`` call with ``action_source`` ``offline``, so it goes through
the same transform, identity stitching (an email or phone matches earlier clicks), dedup and
delivery as any other event. Columns are found by name (case, spaces, ``_`` and ``-``
ignored), or mapped explicitly with ``--map field=Column``.

Fields a row may carry:

======================  ============================================================
field                   meaning
======================  ============================================================
``event``               input event name (default: ``Order Completed`` → checkout)
``event_id``            the conversion's id (else the order id, else a content digest,
                        so that importing the same rows again sends nothing twice)
``time``                when it happened: ISO-8601 or epoch seconds / milliseconds
``email``, ``phone``, ``first_name``, ``last_name``, ``gender``, ``birthday``,
``city``, ``state``, ``zip``, ``country``     personal data (hashed before storing)
``user_id``             the advertiser's customer id (``external_id``)
``click_id``            a Pinterest click id (``epik``) the CRM kept
``value``, ``currency``, ``order_id``, ``product_ids`` (comma separated), ``quantity``
======================  ============================================================

``value`` may be written as a CRM or spreadsheet exports money (:func:`parse_offline_money`):
``$1,234.50``, ``1,234.50 USD``, ``1.234,50 €``, ``CHF 1'234.50``. This is for imports only;
the collector's ``revenue`` stays a plain number (:func:`pinbridge.customdata.parse_money`).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final, TextIO

import msgspec

from pinbridge.customdata import parse_currency
from pinbridge.mapping import name_key

__all__ = [
    "CURRENCY_SIGNS",
    "FIELDS",
    "ColumnMap",
    "Row",
    "missing_time",
    "parse_offline_money",
    "read_rows",
    "row_to_message",
]

FIELDS: Final = (
    "event",
    "event_id",
    "time",
    "email",
    "phone",
    "first_name",
    "last_name",
    "gender",
    "birthday",
    "city",
    "state",
    "zip",
    "country",
    "user_id",
    "click_id",
    "value",
    "currency",
    "order_id",
    "product_ids",
    "quantity",
)
#: Other column names recognised without a --map.
_ALIASES: Final[Mapping[str, str]] = {
    "eventname": "event",
    "timestamp": "time",
    "date": "time",
    "createdat": "time",
    "emailaddress": "email",
    "phonenumber": "phone",
    "mobile": "phone",
    "firstname": "first_name",
    "lastname": "last_name",
    "dateofbirth": "birthday",
    "dob": "birthday",
    "postalcode": "zip",
    "zipcode": "zip",
    "postcode": "zip",
    "customerid": "user_id",
    "externalid": "user_id",
    "epik": "click_id",
    "revenue": "value",
    "total": "value",
    "amount": "value",
    "orderid": "order_id",
    "productid": "product_ids",
    "sku": "product_ids",
}
_DOLLARS: Final = (
    "USD", "CAD", "AUD", "NZD", "HKD", "SGD", "MXN", "TWD", "ARS", "CLP", "COP", "UYU", "DOP",
    "CUP", "BSD", "BBD", "BZD", "BMD", "BND", "KYD", "FJD", "GYD", "JMD", "LRD", "NAD", "SBD",
    "SRD", "TTD", "XCD",
)  # fmt: skip
#: Currency signs an offline ``value`` may carry before or after the amount, and the ISO
#: codes each can stand for. A sign with several codes needs the row's currency column.
CURRENCY_SIGNS: Final[Mapping[str, tuple[str, ...]]] = {
    "US$": ("USD",),
    "CA$": ("CAD",),
    "C$": ("CAD",),
    "AU$": ("AUD",),
    "A$": ("AUD",),
    "NZ$": ("NZD",),
    "HK$": ("HKD",),
    "S$": ("SGD",),
    "MX$": ("MXN",),
    "R$": ("BRL",),
    "$": _DOLLARS,
    "€": ("EUR",),
    "£": ("GBP",),
    "JP¥": ("JPY",),
    "CN¥": ("CNY",),
    "¥": ("JPY", "CNY"),
    "₹": ("INR",),
    "₩": ("KRW",),
    "₽": ("RUB",),
    "₺": ("TRY",),
    "₪": ("ILS",),
    "₫": ("VND",),
    "₱": ("PHP",),
    "฿": ("THB",),
    "₴": ("UAH",),
    "₦": ("NGN",),
    "zł": ("PLN",),
    "Kč": ("CZK",),
    "kr": ("SEK", "NOK", "DKK", "ISK"),
}
_SIGNS_LONGEST_FIRST: Final = sorted(CURRENCY_SIGNS, key=len, reverse=True)
_CODE_BEFORE = re.compile(r"([A-Za-z]{3})(?![A-Za-z])")
_CODE_AFTER = re.compile(r"(?<![A-Za-z])([A-Za-z]{3})$")
#: No-break, narrow no-break and thin spaces, as spreadsheets put between thousands.
_SPACES = re.compile(r"[\u00a0\u202f\u2009]")
#: Thousands separators that can never be a decimal separator.
_GROUPING: Final = (" ", "'", "\u2019")
_DIGITS = re.compile(r"[0-9]+")
_NOT_AN_AMOUNT: Final = (
    "value: is not an amount like 1234.50, $1,234.50, 1.234,50 EUR or 1 234,50 €"
)
_AMBIGUOUS: Final = (
    "value: one ',' or '.' before three digits may separate thousands or decimals; write "
    "the amount with its decimals (2,000.00 or 2.000,00) or as a plain number (2000)"
)
#: ISO-4217 currencies without a minor unit: ``¥1,200`` can only be 1200 yen.
_NO_MINOR_UNITS: Final = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV",
     "XAF", "XOF", "XPF"}
)  # fmt: skip
_TRAITS: Final = ("email", "phone", "gender", "birthday")
_ADDRESS: Final = (
    ("city", "city"),
    ("state", "state"),
    ("zip", "postalCode"),
    ("country", "country"),
)


class Row(msgspec.Struct, frozen=True):
    """One row of the file: its number (1 = first data row) and its columns, or why it could
    not be read."""

    number: int
    columns: dict[str, Any]
    error: str = ""


class ColumnMap:
    """Which column holds which field.

    Args:
        explicit: field → column name, from ``--map field=Column``.

    Raises:
        ValueError: a mapped field is not one of :data:`FIELDS`.
    """

    def __init__(self, explicit: Mapping[str, str] | None = None) -> None:
        unknown = sorted(set(explicit or {}) - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r}; fields: {', '.join(FIELDS)}")
        self._explicit = dict(explicit or {})
        self._known: dict[tuple[str, ...], dict[str, str]] = {}

    def resolve(self, columns: list[str], *, header: bool = True) -> dict[str, str]:
        """field → column for the file's header (cached: a CSV has one header).

        ``header=False`` (JSON Lines): ``columns`` are the keys of one row, and a mapped key
        absent from it means that row has no value for the field, not that the file lacks it.

        Raises:
            ValueError: with a header, a column named by ``--map`` is not in it.
        """
        key = tuple(columns)
        if key not in self._known:
            self._known[key] = self._resolve(columns, header=header)
        return self._known[key]

    def _resolve(self, columns: list[str], *, header: bool) -> dict[str, str]:
        found: dict[str, str] = {}
        for column in columns:
            key = name_key(column)
            field = next((f for f in FIELDS if name_key(f) == key), None) or _ALIASES.get(key)
            if field and field not in found:
                found[field] = column
        missing = [c for c in self._explicit.values() if c not in columns]
        if missing and header:
            raise ValueError(f"column {missing[0]!r} is not in the file")
        found.update(self._explicit)
        return found


def read_rows(stream: TextIO, file_format: str) -> Iterator[Row]:
    """The rows of a CSV (with a header line) or JSON Lines stream, numbered from 1."""
    if file_format == "csv":
        reader = csv.DictReader(stream)
        for number, record in enumerate(reader, start=1):
            yield Row(number, {k: v for k, v in record.items() if k is not None})
        return
    decode = msgspec.json.Decoder().decode
    number = 0
    for line in stream:
        if not line.strip():
            continue
        number += 1
        try:
            value = decode(line)
        except msgspec.DecodeError as exc:
            yield Row(number, {}, f"not valid JSON: {exc}")
            continue
        if isinstance(value, dict):
            yield Row(number, value)
        else:
            yield Row(number, {}, "a line must be a JSON object")


def row_to_message(
    columns: Mapping[str, Any], fields: Mapping[str, str], *, default_event: str
) -> dict[str, Any]:
    """A Segment ``track`` call for one row; ``fields`` is field → column.

    Raises:
        ValueError: the row's ``value`` is not an amount (:func:`parse_offline_money`).
    """

    def get(field: str) -> Any:
        column = fields.get(field)
        value = columns.get(column) if column is not None else None
        return None if value == "" else value

    traits: dict[str, Any] = {k: get(k) for k in _TRAITS if get(k) is not None}
    for field, trait in (("first_name", "firstName"), ("last_name", "lastName")):
        if get(field) is not None:
            traits[trait] = get(field)
    address = {trait: get(field) for field, trait in _ADDRESS if get(field) is not None}
    if address:
        traits["address"] = address
    properties: dict[str, Any] = {"action_source": "offline"}
    value, currency = get("value"), get("currency")
    if value is not None:
        properties["revenue"], currency = parse_offline_money(value, currency)
    for name, given in (("currency", currency), ("order_id", get("order_id"))):
        if given is not None:
            properties[name] = given
    if get("click_id") is not None:
        properties["epik"] = get("click_id")
    ids = get("product_ids")
    if ids is not None:
        quantity = get("quantity")
        products = [{"product_id": p.strip()} for p in str(ids).split(",") if p.strip()]
        if quantity is not None and len(products) == 1:
            products[0]["quantity"] = quantity
        properties["products"] = products
    message: dict[str, Any] = {
        "type": "track",
        "event": get("event") or default_event,
        "properties": properties,
        "context": {"traits": traits, "action_source": "offline"},
    }
    for field, key in (("event_id", "messageId"), ("time", "timestamp"), ("user_id", "userId")):
        if get(field) is not None:
            message[key] = get(field)
    return message


def missing_time(columns: Mapping[str, Any], fields: Mapping[str, str]) -> bool:
    """Whether a row lacks the time of its conversion (refused: it cannot be dated)."""
    column = fields.get("time")
    return column is None or columns.get(column) in (None, "")


def parse_offline_money(value: object, currency: object = None) -> tuple[Any, Any]:
    """An offline row's ``value`` as a plain decimal, and the row's currency.

    Rules, in order:

    * Not text (a JSON number), or text without a currency sign or code and without ``,``,
      spaces or ``'``: returned unchanged, so the transform judges it as it judges
      ``revenue`` (``12.50`` and ``1.234`` are plain decimals, as everywhere).
    * A currency sign (:data:`CURRENCY_SIGNS`) or ISO-4217 code may come before or after the
      amount (``$12``, ``12 USD``, ``USD 12``, ``12,50 €``, both as in ``$12 USD``), and a
      ``-`` before it all or before the amount.
    * Thousands are grouped by three with ``,``, ``.``, a space or ``'``; the first group
      has one to three digits.
    * The decimal separator is the last ``,`` or ``.`` when both appear, or when it appears
      once. One kind appearing more than once separates thousands (``1,234,567``).
    * A single ``,`` or ``.`` with exactly three digits after it and no other separator is
      ambiguous (``1,234`` is 1234 in the US, 1.234 in Germany) and refused, unless the
      amount has no sign, code or ``,`` at all (``1.234``, a plain decimal, above), or the
      currency has no minor unit (``¥1,200`` is 1200 yen: JPY, KRW, VND, CLP, ISK, …).

    The sign or code fixes the currency: it must agree with the row's ``currency`` column
    when that holds an ISO code (``$`` agrees with any dollar or peso), and gives the
    currency when the row has none, if it stands for one currency only (``€``, ``£``,
    ``USD``; not ``$``, ``¥`` or ``kr``).

    Args:
        value: the row's value.
        currency: the row's currency column (``None`` when it has none).

    Returns:
        The value for ``revenue`` and the currency for the event (``currency`` unchanged
        unless the sign or code supplied it).

    Raises:
        ValueError: not an amount, an ambiguous separator, or a currency that conflicts with
            the currency column; the message names the field, never the value.
    """
    if not isinstance(value, str):
        return value, currency
    text = _SPACES.sub(" ", value).strip()
    negative = text.startswith("-")
    text = text.removeprefix("-").strip()
    text, before = _take_mark(text, before=True)
    text, after = _take_mark(text, before=False)
    if text.startswith("-") and not negative:
        negative, text = True, text[1:].strip()
    marks = [m for m in (before, after) if m is not None]
    if not marks and not any(c in text for c in (",", *_GROUPING)):
        return value, currency
    currency = _currency(marks, currency)
    whole_units = isinstance(currency, str) and currency.strip().upper() in _NO_MINOR_UNITS
    return ("-" if negative else "") + _amount(text, whole_units=whole_units), currency


def _take_mark(text: str, *, before: bool) -> tuple[str, tuple[str, tuple[str, ...]] | None]:
    """Split a currency sign or ISO code off the start (``before``) or end of ``text``."""
    for sign in _SIGNS_LONGEST_FIRST:
        if before and text.startswith(sign):
            return text[len(sign) :].strip(), (sign, CURRENCY_SIGNS[sign])
        if not before and text.endswith(sign):
            return text[: -len(sign)].strip(), (sign, CURRENCY_SIGNS[sign])
    found = _CODE_BEFORE.match(text) if before else _CODE_AFTER.search(text)
    if found is None:
        return text, None
    try:
        code = parse_currency(found.group(1))
    except ValueError:
        return text, None
    rest = text[found.end() :] if before else text[: found.start()]
    return rest.strip(), (code, (code,))


def _amount(text: str, *, whole_units: bool) -> str:
    """Digits of ``text`` with ``.`` as the only separator (see :func:`parse_offline_money`);
    ``whole_units``: the currency has no minor unit, so a lone separator groups thousands."""
    grouping = [c for c in _GROUPING if c in text]
    if len(grouping) > 1:
        raise ValueError(_NOT_AN_AMOUNT)
    group: str | None = grouping[0] if grouping else None
    decimal: str | None = None
    marks = [c for c in (".", ",") if c in text]
    if len(marks) == 2:
        decimal = "." if text.rfind(".") > text.rfind(",") else ","
        if group is not None or text.count(decimal) != 1:
            raise ValueError(_NOT_AN_AMOUNT)
        group = "," if decimal == "." else "."
    elif marks and text.count(marks[0]) > 1:
        if group is not None:
            raise ValueError(_NOT_AN_AMOUNT)
        group = marks[0]
    elif marks:
        whole, _, fraction = text.partition(marks[0])
        if group is None and len(fraction) == 3 and whole not in ("", "0"):
            if not whole_units:
                raise ValueError(_AMBIGUOUS if _DIGITS.fullmatch(fraction) else _NOT_AN_AMOUNT)
            group = marks[0]
        else:
            decimal = marks[0]
    whole, _, fraction = text.partition(decimal) if decimal else (text, "", "")
    groups = whole.split(group) if group else [whole]
    if not all(_DIGITS.fullmatch(g) for g in groups) or (
        decimal and not _DIGITS.fullmatch(fraction)
    ):
        raise ValueError(_NOT_AN_AMOUNT)
    if group and (len(groups[0]) > 3 or any(len(g) != 3 for g in groups[1:])):
        raise ValueError(_NOT_AN_AMOUNT)
    return "".join(groups) + (f".{fraction}" if decimal else "")


def _currency(marks: list[tuple[str, tuple[str, ...]]], currency: object) -> Any:
    """The row's currency, checked against the amount's signs or codes (or given by them)."""
    if not marks:
        return currency
    allowed = [c for c in marks[0][1] if all(c in codes for _, codes in marks[1:])]
    shown = " and ".join(sign for sign, _ in marks)
    if not allowed:
        raise ValueError(f"value: its currency marks {shown} disagree")
    named = ", ".join(allowed[:3]) + (", …" if len(allowed) > 3 else "")
    if currency is not None:
        try:
            code = parse_currency(str(currency))
        except ValueError:
            return currency  # the transform says what is wrong with the currency column
        if code not in allowed:
            raise ValueError(
                f"value: its currency {shown} ({named}) differs from the currency column ({code})"
            )
        return currency
    if len(allowed) > 1:
        raise ValueError(
            f"value: {shown} stands for several currencies ({named}); give the row a currency "
            "column or write the ISO code (12.50 USD)"
        )
    return allowed[0]
