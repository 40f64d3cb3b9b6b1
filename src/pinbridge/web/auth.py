"""Dashboard login: password hashes, signed session cookies, CSRF tokens.

Passwords are kept as ``pbkdf2_sha256$<iterations>$<salt>$<hash>`` (salt and hash in
URL-safe base64), made by ``pinbridge dashboard passwd``; only the standard library is used.
A session is a cookie ``<user>|<expiry>|<HMAC-SHA256>`` signed with a key drawn at start (a
restart logs everyone out) or configured (``[dashboard] session_secret``, for several
processes behind one address). Forms that change something carry a CSRF token derived from
the session, and the cookie is ``SameSite=Strict``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Final

__all__ = ["DEFAULT_ITERATIONS", "Sessions", "hash_password", "verify_password"]

DEFAULT_ITERATIONS: Final = 600_000
SESSION_SECONDS: Final = 12 * 3600
_SCHEME: Final = "pbkdf2_sha256"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, iterations: int = DEFAULT_ITERATIONS) -> str:
    """A salted PBKDF2-SHA256 hash of ``password`` in the configuration's format."""
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{_SCHEME}${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (a :func:`hash_password` value)."""
    try:
        scheme, iterations, salt, digest = stored.split("$")
        if scheme != _SCHEME:
            return False
        found = hashlib.pbkdf2_hmac("sha256", password.encode(), _unb64(salt), int(iterations))
        return hmac.compare_digest(found, _unb64(digest))
    except (ValueError, TypeError):
        return False


def is_password_hash(value: str) -> bool:
    """Whether a configured value looks like :func:`hash_password`'s output."""
    parts = value.split("$")
    return len(parts) == 4 and parts[0] == _SCHEME and parts[1].isdigit()


class Sessions:
    """Signs and checks session cookies and CSRF tokens.

    Args:
        users: user name → password hash.
        secret: signing key (``None``: random, valid until the process ends).
        clock: seconds since the epoch.
    """

    def __init__(
        self,
        users: Mapping[str, str],
        *,
        secret: bytes | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._users = dict(users)
        self._key = secret or secrets.token_bytes(32)
        self._clock = clock

    @property
    def enabled(self) -> bool:
        """Whether any user is configured (without one the dashboard stays closed)."""
        return bool(self._users)

    def login(self, user: str, password: str) -> str | None:
        """A session cookie value for a correct user and password, else ``None``."""
        stored = self._users.get(user)
        if stored is None:
            # Spend the same time whether or not the user exists.
            verify_password(password, hash_password("x", iterations=DEFAULT_ITERATIONS // 10))
            return None
        if not verify_password(password, stored):
            return None
        expiry = int(self._clock() + SESSION_SECONDS)
        body = f"{user}|{expiry}"
        return f"{body}|{self._sign(body)}"

    def user(self, cookie: str | None) -> str | None:
        """The user a valid, unexpired session cookie belongs to."""
        if not cookie:
            return None
        body, _, signature = cookie.rpartition("|")
        user, _, expiry = body.partition("|")
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        if not expiry.isdigit() or int(expiry) < self._clock() or user not in self._users:
            return None
        return user

    def csrf(self, cookie: str) -> str:
        """The CSRF token of a session."""
        return self._sign(f"csrf|{cookie}")

    def check_csrf(self, cookie: str, token: str) -> bool:
        return hmac.compare_digest(self.csrf(cookie), token)

    def _sign(self, text: str) -> str:
        return _b64(hmac.new(self._key, text.encode(), hashlib.sha256).digest())
