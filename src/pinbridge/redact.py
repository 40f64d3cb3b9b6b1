"""Remove PII from an input event before it is kept in the event history.

The history keeps each input so that an operator can see what came in, but never raw email,
phone, name, birthday, gender or address: those values are replaced by ``"[redacted]"``
wherever they sit (Segment traits, Pinterest-shaped ``user_data``), and so is any other string
that looks like an email address or a phone number (a custom property, a note, a URL),
percent-encoded or not. A URL or query string loses its parameters named like personal data
(``?first_name=Jane&zip=94025``). Digests (64 hex characters) are kept: they are what
pinbridge sends anyway.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Final
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

__all__ = ["MAX_DEPTH", "REDACTED", "TOO_DEEP", "looks_personal", "redact", "scrub_url"]

REDACTED: Final = "[redacted]"
#: Pinterest's own two-letter ``user_data`` keys.
_USER_DATA_KEYS: Final = frozenset({"em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp"})
#: Keys whose values are a person's: name, contact, birth date, address, device ids, and
#: Pinterest's short names for them. Compared lowercased. Segment's reserved ``title`` (a job
#: title) and ``age`` are not on the list: ``title`` is far more often a page's or a
#: product's, and neither identifies anyone alone.
_PII_KEYS: Final = frozenset(
    {
        # email and phone
        "email",
        "email_address",
        "emailaddress",
        "phone",
        "phone_number",
        "phonenumber",
        "mobile",
        "mobile_phone",
        "mobilephone",
        "cell_phone",
        "cellphone",
        "telephone",
        "tel",
        # names
        "name",
        "firstname",
        "first_name",
        "given_name",
        "givenname",
        "lastname",
        "last_name",
        "surname",
        "family_name",
        "familyname",
        "middlename",
        "middle_name",
        "fullname",
        "full_name",
        "nickname",
        "username",
        "avatar",
        # gender and birth
        "gender",
        "birthday",
        "birthdate",
        "birth_date",
        "dob",
        "dateofbirth",
        "date_of_birth",
        # address
        "address",
        "street",
        "street2",
        "street_address",
        "streetaddress",
        "address1",
        "address2",
        "address_line1",
        "address_line2",
        "addressline1",
        "addressline2",
        "line1",
        "line2",
        "city",
        "state",
        "postalcode",
        "postal_code",
        "postcode",
        "post_code",
        "zip",
        "zipcode",
        "zip_code",
        # identifiers (and Pinterest's user_data keys, added below)
        "external_id",
        "hashed_maids",
        "advertisingid",
    }
).union(_USER_DATA_KEYS)
#: Query parameter names that are personal data whatever their value. Shop URLs use short
#: or generic names for other things (``?state=sale``, ``?name=red+dress``, ``?st=price_asc``,
#: ``filter[city]=paris``, ``?gender=women``), so those are removed only when their value
#: looks personal, like any other parameter.
_URL_PII_KEYS: Final = _PII_KEYS - {
    "name",
    "state",
    "city",
    "address",
    "line1",
    "line2",
    "gender",
    "tel",
    "avatar",
    "nickname",
    "external_id",
    "hashed_maids",
    *_USER_DATA_KEYS,
}
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
#: A bare run of 10 to 15 digits standing as a word of its own (after a space or "(", before
#: a space or a punctuation mark): a phone when the string also has letters ("call me
#: 4155550199").
#: Alone in its field, or glued to other characters (``ORD-1234567890``, ``?variant=…``), it
#: is an id and is kept.
_BARE_PHONE = re.compile(r"(?<![^\s(])\d{10,15}(?![^\s.,;:!?)])")
_LETTER = re.compile(r"[^\W\d_]")
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
    them without a regular expression. A string with ``%`` or ``+`` is also searched
    URL-decoded (``unquote_plus``, up to three times for double encoding): an HTML form sent by
    GET puts ``zelda%40example.org`` or ``650+555+1234`` in the page URL.
    """
    if len(text) > _CACHED_LENGTH:
        return _search(text)
    return _cached_search(text)


def _search(text: str) -> bool:
    if _search_plain(text):
        return True
    for _ in range(_DECODINGS):
        if "%" not in text and "+" not in text:
            return False
        decoded = unquote_plus(text)
        if decoded == text:
            return False
        if _search_plain(decoded):
            return True
        text = decoded
    return False


#: Times a string is URL-decoded in turn (a parameter encoded twice shows ``%2540``).
_DECODINGS: Final = 3


def _search_plain(text: str) -> bool:
    if "@" in text and _EMAIL.search(text):
        return True
    if len(text) < 7 or text.isalpha():
        return False
    if _PHONE.search(text) is not None:
        return True
    return (
        len(text) >= 12
        and _BARE_PHONE.search(text) is not None
        and _LETTER.search(text) is not None
    )


_cached_search = lru_cache(maxsize=_CACHE_SIZE)(_search)


def scrub_url(url: str) -> str:
    """``url`` without the personal data it carries, or ``url`` itself when it carries none.

    Query parameters named like personal data (``email=``, ``phone=``, ``first_name=``,
    ``zip=``, also percent-encoded or in brackets: ``customer[email]=``) or whose value looks
    like an email or a phone are removed, the others (``utm_*``, ``epik``) kept; a path that
    looks personal (``/unsubscribe/zelda%40example.org``) is cut, and so is a fragment that
    looks personal or holds such a parameter (``#/thanks?phone=…``), and a user name before
    the host. A URL that cannot be parsed is cut to nothing.

    A URL without ``?``, ``#`` or ``@`` that does not look personal is returned at once; the
    verdict on other URLs up to :data:`_CACHED_URL_LENGTH` characters is cached, since a
    landing page's URL comes with each event of the visit.
    """
    if "?" not in url and "#" not in url and "@" not in url and not looks_personal(url):
        return url
    return _cached_scrub(url) if len(url) <= _CACHED_URL_LENGTH else _scrub(url)


#: URLs up to this length have their scrubbed form cached (:func:`scrub_url`).
_CACHED_URL_LENGTH: Final = 2048
_URL_CACHE_SIZE: Final = 4096


def _scrub(url: str) -> str:
    if "@" not in url and not looks_personal(url) and not _has_personal_params(url):
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return ""
    if ":" in host:  # IPv6: urlsplit gives the address without its brackets
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    query = _kept_params(parts.query)
    path = "/" if looks_personal(parts.path) else parts.path
    fragment = parts.fragment
    if looks_personal(fragment) or _has_personal_fragment(fragment):
        fragment = ""
    return urlunsplit((parts.scheme, netloc, path, urlencode(query), fragment))


_cached_scrub = lru_cache(maxsize=_URL_CACHE_SIZE)(_scrub)


def _kept_params(query: str) -> list[tuple[str, str]]:
    """The parameters of a query string that are neither named nor valued like PII."""
    return [
        (key, value)
        for key, value in parse_qsl(query, keep_blank_values=True)
        if _bare_key(key) not in _URL_PII_KEYS
        and not looks_personal(key)
        and not looks_personal(value)
    ]


def _bare_key(key: str) -> str:
    """A decoded parameter name as compared with :data:`_URL_PII_KEYS`: trimmed, lowercased, and
    the last bracketed name of a form field (``customer[email]``, ``email[]``)."""
    key = key.strip().lower()
    if key.endswith("]"):
        inner = key.rstrip("]").rpartition("[")[2]
        key = inner or key.partition("[")[0]
    return key


def _has_personal_params(text: str) -> bool:
    """Whether the query or the fragment of a URL has a parameter named like personal data.

    Cheaper than parsing: a split on ``&``, and a decoding only of names with ``%`` or ``+``.
    """
    base, _, fragment = text.partition("#")
    _, mark, query = base.partition("?")
    if mark and any(_param_is_personal(pair) for pair in query.split("&")):
        return True
    return _has_personal_fragment(fragment)


def _has_personal_fragment(fragment: str) -> bool:
    """Whether a fragment holds a ``key=value`` parameter named like personal data (a route's
    query, ``#/thanks?phone=…``); a bare anchor (``#address``) is not a parameter."""
    if "=" not in fragment:
        return False
    pairs = fragment.rpartition("?")[2].split("&")
    return any("=" in pair and _param_is_personal(pair) for pair in pairs)


def _param_is_personal(pair: str) -> bool:
    key = pair.partition("=")[0]
    if "%" in key or "+" in key:
        key = unquote_plus(key)
    return _bare_key(key) in _URL_PII_KEYS


def _clean_text(text: str) -> str:
    """A string as kept: ``[redacted]`` when it looks personal; a URL (or a query string such
    as ``page.search``) without its parameters named like personal data; else itself."""
    if _search(text):
        return REDACTED
    if ("?" in text or "#" in text) and _SPACE.search(text) is None:
        return _without_personal_params(text)
    return text


_SPACE = re.compile(r"\s")
_cached_clean = lru_cache(maxsize=_CACHE_SIZE)(_clean_text)


def _without_personal_params(text: str) -> str:
    if not _has_personal_params(text):
        return text
    if text.startswith("?"):  # a query string alone (Segment's page.search)
        kept = _kept_params(text[1:].partition("#")[0])
        return f"?{urlencode(kept)}" if kept else ""
    return _scrub(text)


def _clean(text: str) -> str:
    return _cached_clean(text) if len(text) <= _CACHED_LENGTH else _clean_text(text)


#: Containers nested deeper than this (a list in a list in …, 64 times) are kept as
#: :data:`TOO_DEEP`: no real event nests so deep, and walking an arbitrarily deep value would
#: exhaust Python's stack.
MAX_DEPTH: Final = 64
TOO_DEEP: Final = "[too deep]"


def redact(value: Any, *, parent: str = "") -> Any:
    """A copy of ``value`` with PII replaced; the input is not changed.

    Never raises: an object or list nested more than :data:`MAX_DEPTH` levels deep is replaced
    by :data:`TOO_DEEP`.
    """
    return _redact(value, parent, 0)


def _redact(value: Any, parent: str, depth: int) -> Any:
    kind = type(value)
    if kind is str:
        return _clean(value)
    if kind is dict:
        return _redact_object(value, parent, depth + 1)
    if kind is list:
        return _redact_list(value, parent, depth + 1)
    if kind in _SCALARS:
        return value
    return _redact_other(value, parent, depth)


def _redact_list(value: list[Any], parent: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        return TOO_DEEP
    return [_redact(v, parent, depth) for v in value]


#: Decoded JSON scalars that are never personal.
_SCALARS: Final = frozenset({int, float, bool, type(None)})


def _redact_other(value: Any, parent: str, depth: int) -> Any:
    """Subclasses of dict, list and str, walked as their base types."""
    if isinstance(value, dict):
        return _redact_object(value, parent, depth + 1)
    if isinstance(value, list):
        return _redact_list(value, parent, depth + 1)
    if isinstance(value, str):
        return _clean(value)
    return value


def _redact_object(value: dict[str, Any], parent: str, depth: int) -> Any:
    """One object, in one loop: most keys are not personal and most values are scalars."""
    if depth > MAX_DEPTH:
        return TOO_DEEP
    kept: dict[str, Any] = {}
    for key, item in value.items():
        lowered = key.lower()
        if lowered in _PII_KEYS and not (lowered == "name" and parent in _NAMED_THINGS):
            kept[key] = _redact_personal(item, lowered)
            continue
        kind = type(item)
        if kind is str:
            kept[key] = _cached_clean(item) if len(item) <= _CACHED_LENGTH else _clean_text(item)
        elif kind in _SCALARS:
            kept[key] = item
        elif kind is dict:
            kept[key] = _redact_object(item, lowered, depth + 1)
        else:
            kept[key] = _redact(item, lowered, depth)
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
