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
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from typing import Any, Final, TextIO

import msgspec

from pinbridge.mapping import name_key

__all__ = ["FIELDS", "ColumnMap", "Row", "missing_time", "read_rows", "row_to_message"]

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
    """A Segment ``track`` call for one row; ``fields`` is field → column."""

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
    for field, name in (("value", "revenue"), ("currency", "currency"), ("order_id", "order_id")):
        if get(field) is not None:
            properties[name] = get(field)
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
