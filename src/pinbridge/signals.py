"""What one input tells about its person: the pure side of identity.

Built by the transform from the input and the hashed user data, consumed by
:mod:`pinbridge.identity` inside the store's accept transaction.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Final
from urllib.parse import parse_qsl, urlsplit

import msgspec

from pinbridge.redact import looks_personal

__all__ = ["PROFILE_FIELDS", "Click", "IdentitySignals", "identifier_key", "utm_parameters"]

#: Hashed fields remembered per person (digests only).
PROFILE_FIELDS: Final = ("em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country")
_UTM: Final = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")


def identifier_key(kind: str, value: str) -> str:
    """The stored form of an identifier: ``<kind>:<sha-256 hex>`` (digests are kept as they are)."""
    if kind in ("em", "ph", "xid", "maid"):
        return f"{kind}:{value}"
    return f"{kind}:{hashlib.sha256(value.encode()).hexdigest()}"


class Click(msgspec.Struct, frozen=True):
    """A Pinterest click (``epik``) seen for a person, with where it landed.

    One click id is one click: ``first_seen`` is when it happened (its first sighting, which
    the attribution window runs from), ``last_seen`` its latest sighting (the ``_epik`` cookie
    comes back with every visit); the landing page and UTM parameters are the first
    sighting's.
    """

    click_id: str
    first_seen: float
    last_seen: float
    landing_url: str | None = None
    utm: dict[str, str] = {}


class IdentitySignals(msgspec.Struct, frozen=True):
    """What one input tells about its person; built by the pure transform."""

    keys: tuple[str, ...]
    fields: dict[str, list[str]] = {}
    click_id: str | None = None
    landing_url: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    seen_at: float = 0.0

    @property
    def click(self) -> Click | None:
        """The click this input carries, if any."""
        if not self.click_id:
            return None
        return Click(
            self.click_id,
            self.seen_at,
            self.seen_at,
            _strip_query(self.landing_url),
            utm_parameters(self.landing_url),
        )


def utm_parameters(url: str | None) -> dict[str, str]:
    """The ``utm_*`` parameters of a landing URL, but for those holding an email address or a
    phone number (a newsletter's ``utm_content``)."""
    if not url or "utm_" not in url:
        return {}
    try:
        query = urlsplit(url).query
    except ValueError:
        return {}
    return {k: v[:200] for k, v in parse_qsl(query) if k in _UTM and v and not looks_personal(v)}


def _strip_query(url: str | None) -> str | None:
    """A landing URL without its query: the page is kept, parameters (which may carry an
    email in a newsletter link) are not; UTM parameters are kept separately. A path holding an
    email address or a phone number (``/unsubscribe/zelda%40example.org``) is cut too: only the
    site is kept."""
    if not url:
        return None
    # The page ends where the query or the fragment starts: cut there, and the pages repeat.
    end = min((i for i in (url.find("?"), url.find("#")) if i >= 0), default=len(url))
    return _page(url[:end])


@functools.lru_cache(maxsize=4096)
def _page(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.netloc:
        return None
    # The host without any user name before it (``https://zelda@shop.example/``).
    site = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    page = f"{site}{parts.path}"
    return site if looks_personal(page) else page[:500]
