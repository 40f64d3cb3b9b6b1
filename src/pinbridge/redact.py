"""Remove PII from an input event before it is kept in the event history.

The history keeps each input so that an operator can see what came in, but never raw email,
phone, name, birthday, gender or address: those values are replaced by ``"[redacted]"``
wherever they sit (Segment traits, Pinterest-shaped ``user_data``), and so is any other string
that looks like an email address or a phone number (a custom property, a note). Digests
(64 hex characters) are kept: they are what pinbridge sends anyway.
"""

from __future__ import annotations

import re
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


def looks_personal(text: str) -> bool:
    """Whether a string looks like it holds an email address or a phone number.

    Cheap tests first: an email needs an ``@``, a phone at least seven characters and a
    separator-delimited run of digits; most strings (names of events, currencies, ids) fail
    them without a regular expression.
    """
    if "@" in text and _EMAIL.search(text):
        return True
    return len(text) >= 7 and not text.isalpha() and _PHONE.search(text) is not None


def redact(value: Any, *, parent: str = "") -> Any:
    """A copy of ``value`` with PII replaced; the input is not changed."""
    if isinstance(value, dict):
        return {k: _redact_item(k, v, parent) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, parent=parent) for v in value]
    if isinstance(value, str) and looks_personal(value):
        return REDACTED
    return value


def _redact_item(key: str, value: Any, parent: str) -> Any:
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
    return redact(value, parent=lowered)
