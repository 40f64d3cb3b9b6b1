"""Country and state name tables: free-form place names to the codes Pinterest hashes.

Pinterest wants ``country`` as the ISO 3166-1 alpha-2 code and ``st`` as a two-letter
subdivision code, both lowercase. Data arrives as names ("Germany", "California"), alpha-3
codes ("DEU"), prefixed subdivision codes ("US-CA") or common aliases ("UK"). The tables that
map these are built from pycountry once, on first use, and cached for the life of the process:
pycountry's own ``lookup`` scans every record on each call, far too slow for a hot path.

Lookups go through :func:`lookup_key`, which folds case, accents, spaces and punctuation, so
"new york", "New-York" and "NEW YORK" find the same entry. The module is pure: no I/O beyond
importing pycountry's bundled data, no clock, no environment.
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Final

import pycountry

__all__ = ["country_code", "lookup_key", "subdivision_code"]

#: Countries whose subdivisions are entered first, so that a name shared by several countries
#: resolves to the US (then Canada): the US dominates Pinterest's advertiser base, and these
#: two are where a bare state name is most often meant.
PREFERRED_SUBDIVISION_COUNTRIES: Final = ("US", "CA")

#: Everyday names pycountry does not carry (it knows "United Kingdom", not "UK").
COUNTRY_ALIASES: Final[dict[str, str]] = {
    "uk": "gb",
    "greatbritain": "gb",
    "britain": "gb",
    "england": "gb",
    "scotland": "gb",
    "wales": "gb",
    "northernireland": "gb",
    "america": "us",
    "russia": "ru",
    "turkey": "tr",
    "holland": "nl",
    "thenetherlands": "nl",
    "ivorycoast": "ci",
    "vatican": "va",
    "vaticancity": "va",
    "palestine": "ps",
    "macedonia": "mk",
    "swaziland": "sz",
    "capeverde": "cv",
    "burma": "mm",
    "drc": "cd",
    "democraticrepublicofthecongo": "cd",
    "republicofthecongo": "cg",
}

#: Subdivision spellings pycountry does not carry.
SUBDIVISION_ALIASES: Final[dict[str, str]] = {
    "washingtondc": "dc",
}


def lookup_key(text: str) -> str:
    """Fold a place name to a table key: no accents, no case, letters and digits only.

    Accents are removed for the *lookup only* (never for what gets hashed), so "Québec" and
    "Quebec" find the same entry.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed.lower() if ch.isalnum())


def country_code(text: str) -> str | None:
    """Return the lowercase alpha-2 code for a country name or code, or None if unknown."""
    return _country_table().get(lookup_key(text))


def subdivision_code(text: str) -> str | None:
    """Return the two-letter lowercase code for a state or province name, or None if unknown.

    Only subdivisions whose ISO 3166-2 suffix is two letters are listed, since Pinterest's
    ``st`` is a two-letter code; "England" (``GB-ENG``) or Paris (``FR-75C``) have none.
    """
    return _subdivision_table().get(lookup_key(text))


@functools.cache
def _country_table() -> dict[str, str]:
    """Build key -> alpha-2 from codes first, then names, then aliases (first entry wins)."""
    table: dict[str, str] = {}
    countries = list(pycountry.countries)
    for country in countries:
        code = country.alpha_2.lower()
        table.setdefault(code, code)
        table.setdefault(country.alpha_3.lower(), code)
    for country in countries:
        code = country.alpha_2.lower()
        for attribute in ("name", "common_name", "official_name"):
            name = getattr(country, attribute, None)
            if name:
                table.setdefault(lookup_key(name), code)
    for alias, code in COUNTRY_ALIASES.items():
        table.setdefault(alias, code)
    return table


@functools.cache
def _subdivision_table() -> dict[str, str]:
    """Build name key -> two-letter code, preferred countries first (first entry wins)."""
    table: dict[str, str] = {}
    subdivisions = list(pycountry.subdivisions)
    preferred = [
        s
        for country in PREFERRED_SUBDIVISION_COUNTRIES
        for s in subdivisions
        if s.country_code == country
    ]
    rest = [s for s in subdivisions if s.country_code not in PREFERRED_SUBDIVISION_COUNTRIES]
    for subdivision in preferred + rest:
        suffix = subdivision.code.partition("-")[2]
        if len(suffix) == 2 and suffix.isascii() and suffix.isalpha():
            table.setdefault(lookup_key(subdivision.name), suffix.lower())
    for alias, code in SUBDIVISION_ALIASES.items():
        table.setdefault(alias, code)
    return table
