"""Remove PII from an input event before it is kept in the event history.

The history keeps each input so that an operator can see what came in, but never raw email,
phone, name, birthday, gender or address: those values are replaced by ``"[redacted]"``
wherever they sit (Segment traits, Pinterest-shaped ``user_data``), and so is any other string
that looks like an email address or a phone number (a custom property, a note). Digests
(64 hex characters) are kept: they are what pinbridge sends anyway.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Final

__all__ = ["REDACTED", "looks_personal", "redact"]

REDACTED: Final = "[redacted]"
_PII_KEYS: Final = frozenset(
    {
        "email",
        "phone",
        "firstname",
        "first_name",
        "lastname",
        "last_name",
        "name",
        "gender",
        "birthday",
        "address",
        "street",
        "city",
        "state",
        "postalcode",
        "postal_code",
        "zip",
        "external_id",
        "hashed_maids",
        "advertisingid",
        "em",
        "ph",
        "fn",
        "ln",
        "ge",
        "db",
        "ct",
        "st",
        "zp",
    }
)
#: Objects whose ``name`` is not a person's (an event, a product, a page, an app, an OS).
_NAMED_THINGS: Final = frozenset(
    {"", "properties", "products", "page", "app", "os", "library", "campaign", "device", "network"}
)
#: Matches start only where a word starts: searching from every position inside a long word
#: took quadratic time (seconds for a 30 KB property), and the leftmost match is the same.
_EMAIL = re.compile(r"(?<![^@\s])[^@\s]+@[^@\s]+\.[^@\s]+")
#: International numbers (+...) and formatted national ones ((650) 555-1234, 650.555.1234);
#: bare digit strings are left alone: they are order ids far more often than phones.
_PHONE = re.compile(r"\+\d[\d\s().-]{5,}\d|\(?\d{2,4}\)?[\s.-]\d{3,4}[\s.-]\d{3,4}")
_DIGEST = re.compile(r"[0-9a-fA-F]{64}")


#: Strings up to this length have their verdict cached: user agents, product names and ids
#: repeat from event to event, and a regular-expression search of a user agent costs
#: microseconds. Longer strings (free text) are rarely repeated and are searched each time.
_CACHED_LENGTH: Final = 256
_CACHE_SIZE: Final = 16384


def looks_personal(text: str) -> bool:
    """Whether a string looks like it holds an email address or a phone number.

    Cheap tests first: an email needs an ``@``, a phone at least seven characters and a
    separator-delimited run of digits; most strings (names of events, currencies, ids) fail
    them without a regular expression.
    """
    if len(text) > _CACHED_LENGTH:
        return _search(text)
    return _cached_search(text)


def _search(text: str) -> bool:
    if "@" in text and _EMAIL.search(text):
        return True
    return len(text) >= 7 and not text.isalpha() and _PHONE.search(text) is not None


_cached_search = lru_cache(maxsize=_CACHE_SIZE)(_search)


def redact(value: Any, *, parent: str = "") -> Any:
    """A copy of ``value`` with PII replaced; the input is not changed."""
    kind = type(value)
    if kind is str:
        return REDACTED if looks_personal(value) else value
    if kind is dict:
        return _redact_object(value, parent)
    if kind is list:
        return [redact(v, parent=parent) for v in value]
    if kind in _SCALARS:
        return value
    return _redact_other(value, parent)


#: Decoded JSON scalars that are never personal.
_SCALARS: Final = frozenset({int, float, bool, type(None)})


def _redact_other(value: Any, parent: str) -> Any:
    """Subclasses of dict, list and str, walked as their base types."""
    if isinstance(value, dict):
        return _redact_object(value, parent)
    if isinstance(value, list):
        return [redact(v, parent=parent) for v in value]
    if isinstance(value, str) and looks_personal(value):
        return REDACTED
    return value


def _redact_object(value: dict[str, Any], parent: str) -> dict[str, Any]:
    """One object, in one loop: most keys are not personal and most values are scalars."""
    kept: dict[str, Any] = {}
    for key, item in value.items():
        lowered = key.lower()
        if lowered in _PII_KEYS and not (lowered == "name" and parent in _NAMED_THINGS):
            kept[key] = _redact_personal(item, lowered)
            continue
        kind = type(item)
        if kind is str:
            personal = _cached_search(item) if len(item) <= _CACHED_LENGTH else _search(item)
            kept[key] = REDACTED if personal else item
        elif kind in _SCALARS:
            kept[key] = item
        elif kind is dict:
            kept[key] = _redact_object(item, lowered)
        else:
            kept[key] = redact(item, parent=lowered)
    return kept


def _redact_personal(value: Any, lowered: str) -> Any:
    """The value of a personal key: redacted unless empty or already digests."""
    if type(value) is str:
        if not value:
            return value
        stripped = value.strip()
        return value if len(stripped) == 64 and _DIGEST.fullmatch(stripped) else REDACTED
    if value in (None, "", [], {}):
        return redact(value, parent=lowered)
    if isinstance(value, str) and _DIGEST.fullmatch(value.strip()):
        return value
    if isinstance(value, list) and all(isinstance(v, str) and _DIGEST.fullmatch(v) for v in value):
        return value
    return REDACTED
