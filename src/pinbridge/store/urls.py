"""Database URLs as they may be printed: every secret in them masked.

A libpq URL carries secrets in two places: the password of its user information
(``postgresql://user:secret@host/db``) and its query parameters ``password`` and
``sslpassword`` (the passphrase of the client key), named in any case. Everything else (user,
hosts, database, ``sslmode``...) stays readable, for the operator who must tell which
database a message is about.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MASK", "display_url"]

MASK: Final = "***"
#: libpq query parameters whose values are secrets.
_SECRET_PARAMETERS = re.compile(r"(?i)([?&](?:ssl)?password=)[^&#]*")


def display_url(url: str) -> str:
    """``url`` with its password and secret query parameters replaced by ``***``.

    The user information ends at the last ``@`` before the query: a password written with a
    raw ``@`` or ``/`` is still masked whole.
    """
    scheme_end = url.find("://")
    if scheme_end < 0:
        return url
    start = scheme_end + 3
    query = url.find("?", start)
    query = len(url) if query < 0 else query
    at = url.rfind("@", start, query)
    if at >= 0 and ":" in url[start:at]:
        user = url[start:at].split(":", 1)[0]
        url = f"{url[:start]}{user}:{MASK}{url[at:]}"
    return _SECRET_PARAMETERS.sub(rf"\g<1>{MASK}", url)
