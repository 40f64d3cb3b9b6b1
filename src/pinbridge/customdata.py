"""``custom_data`` from Segment e-commerce properties, or from a Pinterest-shaped input.

Only the keys of Pinterest's ``custom_data`` can come out of here: the result is a
:class:`~pinbridge.pinterest.schema.CustomData`, so a custom property (an email in
``properties.note``, say) can never reach Pinterest.

Rules:

* ``value`` from ``revenue``, else ``total``, else ``value``, as a decimal string; a value that
  is not a finite number, or is 10^15 or more in absolute value, is an error on that field
  (the same for prices and the native ``value``, ``predicted_ltv`` and ``item_price``).
* ``currency``: an ISO-4217 code, upper case, checked against pycountry's list.
* ``content_ids`` from ``products[].product_id`` (else ``sku``); for single-product events
  (``Product Viewed``, ``Product Added``) the properties themselves are the product.
* ``contents[]``: ``id``, ``item_price`` (string), ``quantity`` (integer), ``item_name``,
  ``item_category``, ``item_brand``. ``num_items`` is the sum of quantities, a product without
  a quantity counting as one. Quantities and their sum are int64, as Pinterest types them;
  beyond that range they are an error on the field.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import msgspec
import pycountry
from msgspec import UNSET

from pinbridge.pinterest.schema import Content, CustomData
from pinbridge.problems import Problem, problem_from_validation
from pinbridge.redact import looks_personal

__all__ = [
    "custom_data_from_native",
    "custom_data_from_segment",
    "parse_currency",
    "parse_money",
    "scrub_personal",
]

_MONEY_KEYS = ("revenue", "total", "value")
_PLAIN_DECIMAL = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?")
_TEXT_KEYS = (
    ("name", "content_name"),
    ("category", "content_category"),
    ("brand", "content_brand"),
)


#: Money is below 10^15 in absolute value (a quadrillion: no order is worth more, and
#: Pinterest reads the string as a double); it has at most 32 decimal places; a numeric string
#: has at most 64 characters. Without these bounds ``"1e999999999"`` would be written out as a
#: gigabyte of zeros.
MAX_MONEY_DIGITS = 15
_MAX_MONEY = Decimal(10) ** MAX_MONEY_DIGITS
_MAX_DECIMALS = 32
_MAX_MONEY_TEXT = 64
_TOO_LARGE = f"must be below 10^{MAX_MONEY_DIGITS} in absolute value"


def parse_money(value: object) -> str:
    """A finite decimal number (JSON number or numeric string) as Pinterest's decimal string.

    ``72.39`` → ``"72.39"``, ``"1,299.00"`` is refused (ambiguous thousands separator), and so
    are ``1e15`` and above (in absolute value), more than 32 decimal places and strings longer
    than 64 characters: the result is never longer than about 50 characters.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("must be a number")
    # Fast paths: repr() of a float is its shortest round-trip decimal, the form we send.
    if type(value) is int:
        if -_MAX_INT < value < _MAX_INT:
            return str(value)
        raise ValueError(_TOO_LARGE)
    if type(value) is float and value == value and abs(value) < 1e15:
        text = repr(value)
        if "e" not in text:
            return text[:-2] if text.endswith(".0") else text
    if isinstance(value, str):
        if len(value) > _MAX_MONEY_TEXT:
            raise ValueError(f"must be a number of at most {_MAX_MONEY_TEXT} characters")
        if type(value) is str:
            plain = _PLAIN_DECIMAL.fullmatch(value)
            if (
                plain
                and len(plain.group(1)) <= MAX_MONEY_DIGITS
                and len(plain.group(2) or ".") <= _MAX_DECIMALS + 1
            ):
                return value
    elif isinstance(value, int) and not -_MAX_INT < value < _MAX_INT:
        raise ValueError(_TOO_LARGE)  # before str() of a huge int (an int subclass)
    try:
        number = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except InvalidOperation:
        raise ValueError("must be a number") from None
    if not number.is_finite():
        raise ValueError("must be a finite number")
    if number.copy_abs() >= _MAX_MONEY:  # copy_abs, unlike abs(), never rounds
        raise ValueError(_TOO_LARGE)
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -_MAX_DECIMALS:
        raise ValueError(f"must have at most {_MAX_DECIMALS} decimal places")
    return format(number, "f")


_MAX_INT = 10**MAX_MONEY_DIGITS


@lru_cache(maxsize=512)
def parse_currency(value: str) -> str:
    """An ISO-4217 alphabetic code in upper case, or :class:`ValueError`."""
    code = value.strip().upper()
    if len(code) != 3 or pycountry.currencies.get(alpha_3=code) is None:
        raise ValueError("is not an ISO-4217 currency code")
    return code


#: Pinterest's ``quantity`` and ``num_items`` are int64: from -2^63 to 2^63 - 1. Negative
#: quantities are passed on, as they always were (Pinterest's schema has no minimum).
_INT64 = 2**63
_INT64_DIGITS = 19
_NOT_INT64 = "must fit in a 64-bit integer (-2^63 to 2^63 - 1)"
_SUM_NOT_INT64 = "quantities add up to more than num_items, a 64-bit integer, can hold"


def _quantity(value: object) -> int:
    """A whole number in int64's range, from a JSON integer, a whole float or a digit string."""
    if isinstance(value, bool):
        raise ValueError("must be a whole number")
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        number = int(value)
    elif isinstance(value, str) and (digits := value.strip().removeprefix("-")).isdecimal():
        significant = digits.lstrip("0")
        if len(significant) > _INT64_DIGITS:  # before int(), whose time grows with the length
            raise ValueError(_NOT_INT64)
        number = -int(significant or "0") if value.strip() != digits else int(significant or "0")
    else:
        raise ValueError("must be a whole number")
    if not -_INT64 <= number < _INT64:
        raise ValueError(_NOT_INT64)
    return number


def _text(value: object) -> str | None:
    if type(value) is str:
        return value.strip() or None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def custom_data_from_segment(
    properties: dict[str, Any], *, page_category: str | None = None
) -> tuple[CustomData | None, list[Problem]]:
    """Build ``custom_data`` from Segment e-commerce properties; returns it and the errors."""
    errors: list[Problem] = []
    data = CustomData()
    for key in _MONEY_KEYS:
        if properties.get(key) is not None:
            try:
                data.value = parse_money(properties[key])
            except ValueError as exc:
                errors.append(Problem(f"properties.{key}", str(exc)))
            break
    currency = properties.get("currency")
    if currency is not None:
        try:
            data.currency = parse_currency(str(currency))
        except ValueError as exc:
            errors.append(Problem("properties.currency", str(exc)))
    data.order_id = _text(properties.get("order_id"))
    data.search_string = _text(properties.get("query"))
    for key, target in _TEXT_KEYS:
        setattr(data, target, _text(properties.get(key)))
    if page_category and not data.content_category:
        data.content_category = page_category
    _products(properties, data, errors)
    if data == _EMPTY:
        return None, errors
    return data, errors


_EMPTY = CustomData()


def _products(properties: dict[str, Any], data: CustomData, errors: list[Problem]) -> None:
    products = properties.get("products")
    prefix = "properties.products"
    if products is None:
        if properties.get("product_id") is None and properties.get("sku") is None:
            return
        products, prefix = [properties], "properties"
    if not isinstance(products, list):
        errors.append(Problem(prefix, "must be a list of products"))
        return
    contents: list[Content] = []
    ids: list[str] = []
    num_items = 0
    indexed = prefix.endswith("products")
    for index, product in enumerate(products):
        where = f"{prefix}[{index}]" if indexed else prefix
        if not isinstance(product, dict):
            errors.append(Problem(where, "must be an object"))
            continue
        content = _content(product, where, errors)
        contents.append(content)
        if content.id is not UNSET:
            ids.append(content.id)
        quantity = content.quantity
        num_items += quantity if quantity is not UNSET else 1
    if ids:
        data.content_ids = ids
    if contents:
        data.contents = contents
        if -_INT64 <= num_items < _INT64:
            data.num_items = num_items
        else:
            errors.append(Problem(prefix, _SUM_NOT_INT64))


def _content(product: dict[str, Any], where: str, errors: list[Problem]) -> Content:
    """One product as a ``contents`` item.

    Shops sell the same products again and again: the item made of a product's six fields is
    cached on their raw values, so a known product costs a tuple and a lookup.
    """
    get = product.get
    raw = (
        get("product_id"),
        get("sku"),
        get("price"),
        get("quantity"),
        get("name"),
        get("category"),
        get("brand"),
    )
    try:
        fields, problems = _cached_item(*raw)
    except TypeError:  # an unhashable value (an object as a name): not cached
        fields, problems = _item(*raw)
    for suffix, message in problems:
        errors.append(Problem(f"{where}.{suffix}", message))
    return Content(**fields)


_ItemProblems = tuple[tuple[str, str], ...]


def _item(
    product_id: object,
    sku: object,
    price: object,
    quantity: object,
    *texts: object,
) -> tuple[dict[str, Any], _ItemProblems]:
    """A product's ``contents`` fields from its raw values, and the problems (field, message)."""
    fields: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    item_id = _text(product_id) or _text(sku)
    if item_id:
        fields["id"] = item_id
    if price is not None:
        try:
            fields["item_price"] = parse_money(price)
        except ValueError as exc:
            problems.append(("price", str(exc)))
    if type(quantity) is int and -_INT64 <= quantity < _INT64:
        fields["quantity"] = quantity
    elif quantity is not None:
        try:
            fields["quantity"] = _quantity(quantity)
        except ValueError as exc:
            problems.append(("quantity", str(exc)))
    for target, given in zip(_ITEM_FIELDS, texts, strict=True):
        value = _text(given)
        if value:
            fields[target] = value
    return fields, tuple(problems)


_ITEM_FIELDS = ("item_name", "item_category", "item_brand")
#: Distinct products whose ``contents`` item is kept (the values are small dicts).
_ITEM_CACHE_SIZE = 8192
#: ``typed``: ``True``, ``1`` and ``1.0`` are equal keys but not equal quantities or prices.
_cached_item = lru_cache(maxsize=_ITEM_CACHE_SIZE, typed=True)(_item)


_NATIVE_MONEY = ("value", "predicted_ltv")


def custom_data_from_native(custom: dict[str, Any]) -> tuple[CustomData | None, list[Problem]]:
    """Check a Pinterest-shaped ``custom_data``; numbers for money fields become strings."""
    errors: list[Problem] = []
    given = dict(custom)
    for key in _NATIVE_MONEY:
        if given.get(key) is not None:
            try:
                given[key] = parse_money(given[key])
            except ValueError as exc:
                errors.append(Problem(f"custom_data.{key}", str(exc)))
                given.pop(key)
    contents = given.get("contents")
    if isinstance(contents, list):
        given["contents"] = [_native_content(item, i, errors) for i, item in enumerate(contents)]
    num_items = given.get("num_items")
    if type(num_items) is int and not -_INT64 <= num_items < _INT64:
        errors.append(Problem("custom_data.num_items", _NOT_INT64))
        given.pop("num_items")
    if isinstance(given.get("currency"), str):
        try:
            given["currency"] = parse_currency(given["currency"])
        except ValueError as exc:
            errors.append(Problem("custom_data.currency", str(exc)))
            given.pop("currency")
    try:
        data = msgspec.convert(given, CustomData)
    except msgspec.ValidationError as exc:
        errors.append(problem_from_validation(exc, "custom_data"))
        return None, errors
    return (None if data == _EMPTY else data), errors


_TEXT_FIELDS = (
    "content_name",
    "content_category",
    "content_brand",
    "search_string",
    "order_id",
)
_ITEM_TEXT_FIELDS = ("id", "item_name", "item_category", "item_brand")


def scrub_personal(data: CustomData) -> list[Problem]:
    """Remove text that looks like an email or a phone number from ``custom_data``.

    Pinterest forbids personal data outside ``user_data``, where it is hashed; a product named
    after a customer's email must not leak it in clear. Returns one warning per removal,
    without the value.
    """
    warnings = []
    for field in _TEXT_FIELDS:
        value = getattr(data, field)
        if isinstance(value, str) and looks_personal(value):
            setattr(data, field, None)
            warnings.append(Problem(f"custom_data.{field}", _PERSONAL))
    if data.content_ids is not UNSET:
        kept = [i for i in data.content_ids if not looks_personal(i)]
        if len(kept) != len(data.content_ids):
            data.content_ids = kept
            warnings.append(Problem("custom_data.content_ids", _PERSONAL))
    if data.contents is not UNSET:
        for index, item in enumerate(data.contents):
            for field in _personal_item_fields(
                item.id, item.item_name, item.item_category, item.item_brand
            ):
                setattr(item, field, UNSET)
                warnings.append(Problem(f"custom_data.contents[{index}].{field}", _PERSONAL))
    return warnings


@lru_cache(maxsize=8192)
def _personal_item_fields(*texts: object) -> tuple[str, ...]:
    """The fields of a ``contents`` item (id, name, category, brand) that look personal;
    cached on the four values: the same products come back."""
    return tuple(
        field
        for field, value in zip(_ITEM_TEXT_FIELDS, texts, strict=True)
        if isinstance(value, str) and looks_personal(value)
    )


_PERSONAL = "looks like an email or phone number; left out (personal data goes in user_data)"


def _native_content(item: object, index: int, errors: list[Problem]) -> object:
    if not isinstance(item, dict):
        return item
    item = dict(item)
    if item.get("item_price") is not None:
        try:
            item["item_price"] = parse_money(item["item_price"])
        except ValueError as exc:
            errors.append(Problem(f"custom_data.contents[{index}].item_price", str(exc)))
            item.pop("item_price")
    quantity = item.get("quantity")
    if type(quantity) is int and not -_INT64 <= quantity < _INT64:
        errors.append(Problem(f"custom_data.contents[{index}].quantity", _NOT_INT64))
        item.pop("quantity")
    return item
