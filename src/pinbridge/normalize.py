"""Normalisation and SHA-256 hashing of the hashed ``user_data`` fields.

Pinterest matches a conversion to a person only when our digest equals the one it computed
from its own data, so each field is brought to the exact form the spec describes before it is
hashed (UTF-8 bytes, lowercase hex). Rules, field by field:

* every field: a value that already is a SHA-256 digest (64 hex characters, any case, after
  trimming) passes through lowercased and is never hashed twice. A value that looks like an
  MD5/SHA-1/SHA-224/-384/-512 digest is dropped with a warning: hashing it again would give
  a digest Pinterest can never match. ``external_id`` is exempt, being an opaque id that may
  legitimately be 32 hex characters (a dashless UUID, an MD5 key).
* ``em``: trim and lowercase only. Dots and ``+tags`` are kept: Pinterest lowercases only.
* ``ph``: E.164 digits without the ``+`` via the phone library, default region configurable.
* ``fn``/``ln``: NFC, lowercase, punctuation and spaces trimmed from the ends only.
* ``ge``: synonyms to ``f``, ``m`` or ``n``.
* ``db``: common date spellings to ``YYYYMMDD``.
* ``ct``: NFC, lowercase, letters (any script, with accents) and digits only.
* ``st``/``country``: names and codes to two-letter lowercase codes (see :mod:`pinbridge.geo`).
* ``zp``: a US ZIP or ZIP+4 becomes its 5 digits; any other code is lowercased with spaces
  and punctuation removed. Pinterest's spec says "digits only", which turns "SW1A 2AA" into
  "12" and "K1A 0A6" into "106", codes no one else produces (PEERS.md §2, §3), so letters are
  kept for non-US codes. A 4-digit code is not zero-padded: it is as likely an Australian,
  Swiss or Danish code as a US ZIP that lost its leading zero.
* ``external_id``: trimmed, case kept. ``hashed_maids``: trimmed and lowercased (GAID and
  IDFA are UUIDs, whose canonical text form is lowercase); the all-zero id of a device whose
  user denied tracking, and its digest, are refused.

Unusable values produce a warning whose message says why, never what: raw PII must not reach
logs. The module is pure (no I/O, no clock, no environment).
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import math
import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Final

import phonenumbers

from pinbridge import geo
from pinbridge.problems import Problem

__all__ = [
    "DEFAULT_CACHE_SIZE",
    "DEFAULT_REGION",
    "NormalizationError",
    "Normalizer",
    "is_sha256_hex",
    "normalize",
    "sha256_hex",
]

DEFAULT_REGION: Final = "US"
#: About 12 identifiers per event: enough for several thousand distinct recent users.
DEFAULT_CACHE_SIZE: Final = 65536
MIN_BIRTH_YEAR: Final = 1900
MAX_BIRTH_YEAR: Final = 2100

_SHA256_RE: Final = re.compile(r"[0-9a-fA-F]{64}")
_OTHER_DIGEST_LENGTHS: Final = frozenset({32, 40, 56, 96, 128})
_HEX_RE: Final = re.compile(r"[0-9a-fA-F]+")
_EMAIL_RE: Final = re.compile(r"[^@\s]+@[^@\s.][^@\s]*\.[^@\s]*[^@\s.]")
_ZIP_US_RE: Final = re.compile(r"([0-9]{5})(?:[-\s]?[0-9]{4})?", re.ASCII)
_DATE_YMD_RE: Final = re.compile(
    r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})"
    r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)?)?"
)
_DATE_COMPACT_RE: Final = re.compile(r"(\d{4})(\d{2})(\d{2})")
_DATE_XXY_RE: Final = re.compile(r"(\d{1,2})([-/.])(\d{1,2})\2(\d{4})")
_ASCII_NON_ALNUM_RE: Final = re.compile(r"[^a-z0-9]+")
#: Unicode categories that are not part of a name or city: punctuation, symbols,
#: separators, controls. Letters (L), marks (M, e.g. Devanagari vowel signs) and
#: numbers (N) are kept.
_NOISE_CATEGORIES: Final = frozenset("PSZC")

_GENDERS: Final[dict[str, str]] = {
    **dict.fromkeys(("female", "f", "woman", "w", "girl"), "f"),
    **dict.fromkeys(("male", "m", "man", "boy"), "m"),
    **dict.fromkeys(
        ("nonbinary", "nb", "n", "other", "x", "genderqueer", "agender"),
        "n",
    ),
}
_GENDER_NOISE_RE: Final = re.compile(r"[\s\-_]+")


class NormalizationError(ValueError):
    """A value cannot be brought to the form Pinterest hashes; the message says why.

    The message never contains the value itself, so it is safe to log.
    """


def sha256_hex(text: str) -> str:
    """SHA-256 of the UTF-8 bytes of ``text``, as 64 lowercase hex characters."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_sha256_hex(text: str) -> bool:
    """Whether ``text`` (trimmed) is 64 hex characters in any case, i.e. already a digest."""
    return _SHA256_RE.fullmatch(text.strip()) is not None


def normalize(field: str, raw: str, *, default_region: str = DEFAULT_REGION) -> str:
    """Normalise one raw value of a hashed field to the exact string that is hashed.

    Pure and uncached. When ``raw`` already is a SHA-256 digest it is returned lowercased;
    it is then the digest itself, not something to hash (:class:`Normalizer` handles that).

    Args:
        field: One of :data:`pinbridge.pinterest.schema.HASHED_FIELDS`.
        raw: The value as received.
        default_region: ISO region used for phone numbers without a country code.

    Raises:
        NormalizationError: The value is empty or unusable; the message says why.
        ValueError: ``field`` is not a hashed field (a programming error).
    """
    rule = _rule(field)
    text = raw.strip()
    if not text:
        raise NormalizationError("empty value")
    if _SHA256_RE.fullmatch(text):
        digest = text.lower()
        if digest == _ZERO_MAID_DIGEST and field == "hashed_maids":
            raise NormalizationError(_ZERO_MAID_MESSAGE)
        return digest
    if field != "external_id" and _looks_like_other_digest(text):
        raise NormalizationError("looks like a digest but not SHA-256")
    return rule(text, default_region.upper())


class Normalizer:
    """Normalises and hashes ``user_data`` values; configured once, with a bounded cache.

    Hashing is the hot path (about 12 identifiers per event), and phone parsing alone costs
    tens of microseconds, so outcomes are memoised per ``(field, raw value)`` in an LRU
    cache of ``cache_size`` entries. Failures are cached too, so a repeated bad value costs
    no more than a good one. ``cache_size=0`` disables caching. The cache holds raw values
    in memory for as long as they stay recent; it is never written anywhere.

    Args:
        default_region: ISO 3166 region for phone numbers without a country code.
        cache_size: Maximum number of cached outcomes; 0 disables the cache.
    """

    __slots__ = ("_outcome", "cache_size", "default_region")

    def __init__(
        self, *, default_region: str = DEFAULT_REGION, cache_size: int = DEFAULT_CACHE_SIZE
    ) -> None:
        region = default_region.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown phone region: {default_region!r}")
        if cache_size < 0:
            raise ValueError("cache_size must be >= 0")
        self.default_region = region
        self.cache_size = cache_size

        def outcome(field: str, text: str) -> str | NormalizationError | None:
            return _outcome(field, text, region)

        self._outcome: Callable[[str, str], str | NormalizationError | None] = (
            functools.lru_cache(maxsize=cache_size)(outcome) if cache_size else outcome
        )

    def __repr__(self) -> str:
        return f"Normalizer(default_region={self.default_region!r}, cache_size={self.cache_size})"

    def hash_values(self, field: str, values: Iterable[object]) -> tuple[list[str], list[Problem]]:
        """Normalise and hash each value of one hashed field.

        Returns the digests (64 lowercase hex, deduplicated, in first-seen order) and one
        warning per dropped value. ``None``, empty and whitespace-only values are dropped
        silently; ints and integral floats are converted to text (a phone or ZIP sent as a
        JSON number); booleans, containers and other types are dropped with a warning.

        Raises:
            ValueError: ``field`` is not a hashed field (a programming error).
        """
        if field not in _RULES:
            _rule(field)
        outcome = self._outcome
        digests: list[str] = []
        problems: list[Problem] = []
        for value in values:
            if type(value) is str:
                result = outcome(field, value)
            elif value is None:
                continue
            else:
                text = _scalar_text(value)
                result = outcome(field, text) if text is not None else _type_error(value)
            if type(result) is str:
                digests.append(result)
            elif result is not None:
                problems.append(Problem(field=f"user_data.{field}", message=str(result)))
        if len(digests) > 1:
            digests = list(dict.fromkeys(digests))
        return digests, problems


def _outcome(field: str, raw: str, region: str) -> str | NormalizationError | None:
    """Digest of one value, the reason it is unusable, or None when it is blank."""
    if not raw or raw.isspace():
        return None
    try:
        normalized = normalize(field, raw, default_region=region)
    except NormalizationError as exc:
        return exc
    return normalized if is_sha256_hex(raw) else sha256_hex(normalized)


def _scalar_text(value: object) -> str | None:
    """Text of a number sent where a string belongs, or None for unusable types.

    bool is refused although it is an int: ``true`` is never an identifier.
    """
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else str(value)
    return None


def _type_error(value: object) -> NormalizationError | None:
    """Warning for a value of an unusable type (named by type only, never by content)."""
    if isinstance(value, float):
        return NormalizationError("not a finite number")
    return NormalizationError(f"expected a string, got {type(value).__name__}")


def _looks_like_other_digest(text: str) -> bool:
    """Whether ``text`` is hex of a length other common hash functions produce."""
    return len(text) in _OTHER_DIGEST_LENGTHS and _HEX_RE.fullmatch(text) is not None


def _rule(field: str) -> Callable[[str, str], str]:
    """The normaliser for ``field``; ValueError for a name that is not a hashed field."""
    try:
        return _RULES[field]
    except KeyError:
        raise ValueError(f"not a hashed user_data field: {field!r}") from None


def _email(text: str, region: str) -> str:
    """Lowercase, nothing else: Pinterest hashes the address as written, dots and tags too."""
    if _EMAIL_RE.fullmatch(text) is None:
        raise NormalizationError("not an email address or a SHA-256 digest")
    return text.lower()


def _phone(text: str, region: str) -> str:
    """E.164 digits without ``+``, through the phone library.

    ``00`` is the international prefix almost everywhere, so a leading ``00`` is read as
    ``+`` whatever the default region; ``011`` and other regional prefixes are handled by the
    library for the default region. Extensions are dropped.

    The number must be *possible* (right length for its country), not *valid*: validity
    needs the library's knowledge of assigned ranges, which lags behind new ranges, and a
    possible but unassigned number only costs a hash that matches nobody. A number that is
    possible only as a local number (no area code) is refused: its digits would be wrong.

    Bare digits too long for the default region are read once more as an international
    number, when that gives a valid one: ``442079460958`` is Pinterest's own normalized form
    (country code, area code, number) of a London number, which a shop may already send.
    """
    candidate = "+" + text[2:] if text.startswith("00") else text
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        raise NormalizationError("not a phone number") from None
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason != phonenumbers.ValidationResult.IS_POSSIBLE:
        number = _international(text, region, reason)
    e164: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164.lstrip("+")


def _international(text: str, region: str, reason: int) -> phonenumbers.PhoneNumber:
    """Bare digits too long for the region, read as a number with its country code: only
    when that reading is a *valid* number (assigned range), so a local number or a typo is
    not turned into some other country's number."""
    if reason != phonenumbers.ValidationResult.TOO_LONG or not (
        text.isascii() and text.isdigit() and text[0] != "0"
    ):
        raise NormalizationError("not a possible phone number")
    try:
        number = phonenumbers.parse("+" + text, region)
    except phonenumbers.NumberParseException:
        raise NormalizationError("not a possible phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise NormalizationError("not a possible phone number")
    return number


def _name(text: str, region: str) -> str:
    """NFC, lowercase, with punctuation and spaces trimmed from both ends only.

    Inner hyphens, apostrophes and spaces are kept as given ("Mary-Ann", "O'Brien"): the
    spec only says lowercase, and Pinterest's own Magento plugin only lowercases. ``lower``
    rather than ``casefold``: casefold turns "ß" into "ss", which Pinterest would not do.
    """
    name = _strip_noise(unicodedata.normalize("NFC", text).lower())
    if not any(unicodedata.category(ch)[0] == "L" for ch in name):
        raise NormalizationError("no letter in name")
    return name


def _gender(text: str, region: str) -> str:
    """``f``, ``m`` or ``n`` from common synonyms, ignoring case, spaces and hyphens."""
    code = _GENDERS.get(_GENDER_NOISE_RE.sub("", text.lower()))
    if code is None:
        raise NormalizationError("not a recognised gender")
    return code


def _birth_date(text: str, region: str) -> str:
    """``YYYYMMDD`` from the common spellings of a date.

    Year first: ``1997-12-26``, ``1997/12/26``, ``19971226`` and ISO datetimes, whose date
    part is taken as written (converting a birth date to UTC would shift it by a day).
    Year last: dots mean day first (``26.12.1997``, European); slashes and dashes mean month
    first (``12/26/1997``, US) unless the first number is over 12, which only a day can be.
    """
    if match := _DATE_YMD_RE.fullmatch(text):
        year, month, day = match.group(1, 3, 4)
    elif match := _DATE_COMPACT_RE.fullmatch(text):
        year, month, day = match.group(1, 2, 3)
    elif match := _DATE_XXY_RE.fullmatch(text):
        first, separator, second, year = match.groups()
        day_first = separator == "." or int(first) > 12
        day, month = (first, second) if day_first else (second, first)
    else:
        raise NormalizationError("not a recognised date format")
    return _date_text(int(year), int(month), int(day))


def _date_text(year: int, month: int, day: int) -> str:
    """``YYYYMMDD`` for a real calendar date within the plausible birth years."""
    if not MIN_BIRTH_YEAR <= year <= MAX_BIRTH_YEAR:
        raise NormalizationError("birth year out of range")
    try:
        date = datetime.date(year, month, day)
    except ValueError:
        raise NormalizationError("not a real calendar date") from None
    return date.strftime("%Y%m%d")


def _city(text: str, region: str) -> str:
    """NFC, lowercase, letters and digits only; accents and non-Latin scripts kept.

    Digits are kept because some place names contain them. At least one letter is
    required: a city without letters is a ZIP or a number in the wrong column.
    """
    lowered = unicodedata.normalize("NFC", text).lower()
    if lowered.isascii():
        city = _ASCII_NON_ALNUM_RE.sub("", lowered)
    else:
        city = "".join(ch for ch in lowered if unicodedata.category(ch)[0] not in _NOISE_CATEGORIES)
    if not any(unicodedata.category(ch)[0] == "L" for ch in city):
        raise NormalizationError("no letter in city")
    return city


def _state(text: str, region: str) -> str:
    """Two-letter lowercase code from a code (``CA``, ``US-CA``) or a name."""
    prefix, dash, suffix = text.partition("-")
    if dash and len(prefix) == 2 and prefix.isalpha():
        text = suffix
    key = geo.lookup_key(text)
    if len(key) == 2 and key.isascii() and key.isalpha():
        return key
    code = geo.subdivision_code(text)
    if code is None:
        raise NormalizationError("not a recognised state or province")
    return code


def _country(text: str, region: str) -> str:
    """Lowercase ISO 3166-1 alpha-2 code from an alpha-2 or alpha-3 code or a name."""
    code = geo.country_code(text)
    if code is None:
        raise NormalizationError("not a recognised country")
    return code


def _zip(text: str, region: str) -> str:
    """5-digit US ZIP, or any other postcode lowercased without spaces or punctuation."""
    if match := _ZIP_US_RE.fullmatch(text):
        return match.group(1)
    lowered = text.lower()
    code = "".join(ch for ch in lowered if ch.isalnum())
    if not code:
        raise NormalizationError("no letters or digits in postcode")
    return code


def _external_id(text: str, region: str) -> str:
    """The id as given (already trimmed): ids can be case-sensitive."""
    return text


def _maid(text: str, region: str) -> str:
    """Lowercase, the canonical text form of the UUIDs that GAIDs and IDFAs are.

    The all-zero id is what iOS and Android report when the user denied tracking: it is
    shared by millions of devices and identifies no one, so it is refused.
    """
    maid = text.lower()
    if maid in _ZERO_MAIDS:
        raise NormalizationError(_ZERO_MAID_MESSAGE)
    return maid


_ZERO_MAIDS: Final = frozenset({"00000000-0000-0000-0000-000000000000"})
#: The digest of the all-zero id, refused like the id itself when it comes pre-hashed.
_ZERO_MAID_DIGEST: Final = hashlib.sha256(b"00000000-0000-0000-0000-000000000000").hexdigest()
_ZERO_MAID_MESSAGE: Final = (
    "the all-zero advertising id means tracking was denied; it identifies no one"
)


def _strip_noise(text: str) -> str:
    """Remove punctuation, symbols, separators and controls from both ends."""
    start, end = 0, len(text)
    while start < end and unicodedata.category(text[start])[0] in _NOISE_CATEGORIES:
        start += 1
    while end > start and unicodedata.category(text[end - 1])[0] in _NOISE_CATEGORIES:
        end -= 1
    return text[start:end]


_RULES: Final[dict[str, Callable[[str, str], str]]] = {
    "em": _email,
    "ph": _phone,
    "ge": _gender,
    "db": _birth_date,
    "ln": _name,
    "fn": _name,
    "ct": _city,
    "st": _state,
    "zp": _zip,
    "country": _country,
    "external_id": _external_id,
    "hashed_maids": _maid,
}
