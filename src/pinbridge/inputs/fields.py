"""Small parsers shared by the input formats: times, IP addresses, click ids, strings.

Each parser either returns a clean value or raises :class:`ValueError` with a message fit to
show to the user; the caller attaches the field name. A message says why, never what: it never
holds the value, which may be personal data (an email in a shifted CSV column).
"""

from __future__ import annotations

import ipaddress
import math
import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import unquote_plus

__all__ = [
    "click_id_from_url",
    "get_path",
    "language_from_locale",
    "parse_bool",
    "parse_ip",
    "parse_time",
    "parse_time_precise",
    "text",
]

#: Epoch numbers above this are milliseconds (1e11 seconds is the year 5138).
_MILLISECONDS_THRESHOLD = 100_000_000_000
_EPIK = re.compile(r"[?&]epik=([^&]*)")


def parse_time(value: object) -> int:
    """Parse an event time into whole Unix seconds (rounded down).

    Accepts ISO-8601 dates and datetimes (``Z`` or an offset; naive means UTC), and epoch
    seconds or milliseconds as numbers or numeric strings.
    """
    return math.floor(parse_time_precise(value))


def parse_time_precise(value: object) -> float:
    """Like :func:`parse_time`, keeping fractions of a second."""
    if isinstance(value, bool) or value is None:
        raise ValueError("must be an ISO-8601 time or epoch seconds or milliseconds")
    if isinstance(value, int | float):
        try:
            return _from_epoch(float(value))
        except OverflowError:  # an integer beyond a float's range (over 308 digits)
            raise ValueError(_NOT_EPOCH) from None
    if isinstance(value, str):
        stripped = value.strip()
        try:
            return _from_epoch(float(stripped))
        except ValueError:
            pass
        try:
            moment = datetime.fromisoformat(stripped)
        except ValueError:
            raise ValueError("is not an ISO-8601 time or an epoch number") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    raise ValueError("must be an ISO-8601 time or epoch seconds or milliseconds")


_NOT_EPOCH = "must be a positive, finite epoch time"


def _from_epoch(number: float) -> float:
    if not math.isfinite(number) or number < 0:
        raise ValueError(_NOT_EPOCH)
    if number > _MILLISECONDS_THRESHOLD:
        number /= 1000
    return number


@lru_cache(maxsize=32768)
def parse_ip(value: str) -> str:
    """Validate an IPv4 or IPv6 address and return its compressed form.

    Cached for as many addresses as the transform keeps people: parsing one costs about 6 µs,
    and a visitor's address comes with each of their events.
    """
    try:
        return ipaddress.ip_address(value.strip()).compressed
    except ValueError:
        raise ValueError("is not an IPv4 or IPv6 address") from None


def click_id_from_url(url: str) -> str | None:
    """The ``epik`` query parameter of a URL, if any (the last one wins, as browsers do)."""
    if "epik=" not in url:
        return None
    return _click_id(url) if len(url) <= 2048 else _click_id.__wrapped__(url)


@lru_cache(maxsize=4096)
def _click_id(url: str) -> str | None:
    """Cached: a landing page's URL comes with each event of the visit."""
    found = _EPIK.findall(url.partition("#")[0])
    return unquote_plus(found[-1]).strip() or None if found else None


def get_path(obj: object, *keys: str) -> Any:
    """``obj[k1][k2]...`` or ``None`` when any step is missing or not an object."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def text(value: object) -> str | None:
    """A non-empty trimmed string from a string or number; ``None`` otherwise."""
    if value is None:
        return None
    if type(value) is str:
        return value.strip() or None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def parse_bool(value: object) -> bool | None:
    """``True``/``False`` from a JSON boolean or the strings ``true``/``false``; else ``None``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def language_from_locale(locale: object) -> str | None:
    """The two-letter ISO-639-1 language of a locale such as ``en-US`` or ``fr_FR``."""
    if not isinstance(locale, str):
        return None
    language = locale.strip().replace("_", "-").split("-", 1)[0].lower()
    return language if len(language) == 2 and language.isascii() and language.isalpha() else None
