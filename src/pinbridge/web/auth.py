"""Dashboard login: password hashes, signed session cookies, CSRF tokens.

Passwords are kept as ``pbkdf2_sha256$<iterations>$<salt>$<hash>`` (salt and hash in
URL-safe base64), made by ``pinbridge dashboard passwd``; only the standard library is used.
A session is a cookie ``<user>|<expiry>|<HMAC-SHA256>`` signed with a key drawn at start (a
restart logs everyone out) or configured (``[dashboard] session_secret``, for several
processes behind one address). Forms that change something carry a CSRF token derived from
the session, and the cookie is ``SameSite=Strict``.

Logging in costs one PBKDF2 hash whether or not the user exists (an unknown user is checked
against a made-up hash with the same parameters), so the answer's timing does not tell which
users exist. :class:`LoginThrottle` bounds how often an address may try and how many hashes run
at once; the dashboard runs the hash in a worker thread, never on the event loop.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import math
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Final

__all__ = [
    "DEFAULT_ITERATIONS",
    "MIN_PASSWORD_LENGTH",
    "LoginThrottle",
    "Sessions",
    "hash_password",
    "verify_password",
]

DEFAULT_ITERATIONS: Final = 600_000
#: The shortest password accepted (``dashboard passwd`` and ``PINBRIDGE_DASHBOARD_PASSWORD``).
MIN_PASSWORD_LENGTH: Final = 12
SESSION_SECONDS: Final = 12 * 3600
#: Login attempts per client address: a burst of this many, then one per 60/N seconds.
LOGIN_ATTEMPTS_PER_MINUTE: Final = 5
#: Passwords hashed at once, all addresses together (each hash keeps a core busy ~0.3 s).
LOGIN_HASHES_IN_FLIGHT: Final = 2
#: Addresses remembered by the throttle; the least recently seen are forgotten first.
LOGIN_ADDRESSES: Final = 10_000
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


def _dummy_hash(users: Mapping[str, str]) -> str:
    """A hash no password matches, costing as much to check as the users' own (their largest
    iteration count), for unknown user names."""
    counts = [int(h.split("$")[1]) for h in users.values() if is_password_hash(h)]
    iterations = max(counts, default=DEFAULT_ITERATIONS)
    salt, digest = secrets.token_bytes(16), secrets.token_bytes(32)
    return f"{_SCHEME}${iterations}${_b64(salt)}${_b64(digest)}"


def _same(a: str, b: str) -> bool:
    """Constant-time equality of two strings of any characters (``hmac.compare_digest``
    refuses ``str`` with non-ASCII characters)."""
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode())


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
        verify: checks a password against a stored hash (:func:`verify_password`; tests
            wrap it to see where and when it runs).
    """

    def __init__(
        self,
        users: Mapping[str, str],
        *,
        secret: bytes | None = None,
        clock: Callable[[], float] = time.time,
        verify: Callable[[str, str], bool] = verify_password,
    ) -> None:
        self._users = dict(users)
        self._key = secret or secrets.token_bytes(32)
        self._clock = clock
        self._verify = verify
        self._dummy = _dummy_hash(self._users)

    @property
    def enabled(self) -> bool:
        """Whether any user is configured (without one the dashboard stays closed)."""
        return bool(self._users)

    def login(self, user: str, password: str) -> str | None:
        """A session cookie value for a correct user and password, else ``None``.

        Blocks for one PBKDF2 hash (about 0.3 s at 600,000 iterations): call it from a worker
        thread. An unknown user costs the same hash, against a made-up one.
        """
        stored = self._users.get(user)
        matches = self._verify(password, stored or self._dummy)
        if stored is None or not matches:
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
        if not _same(signature, self._sign(body)):
            return None
        if not (expiry.isascii() and expiry.isdigit()) or int(expiry) < self._clock():
            return None
        if user not in self._users:
            return None
        return user

    def csrf(self, cookie: str) -> str:
        """The CSRF token of a session."""
        return self._sign(f"csrf|{cookie}")

    def check_csrf(self, cookie: str, token: str) -> bool:
        """Whether ``token`` is the CSRF token of the session ``cookie``."""
        return _same(token, self.csrf(cookie))

    def _sign(self, text: str) -> str:
        data = text.encode("utf-8", "surrogatepass")
        return _b64(hmac.new(self._key, data, hashlib.sha256).digest())


class LoginThrottle:
    """How often login may be tried: per client address, and how many hashes run at once.

    Each address has a token bucket of ``per_minute`` attempts, refilled at ``per_minute`` a
    minute; IPv6 addresses count per /64 (what one subscriber usually holds). Every attempt
    counts, right or wrong. Apart from that, at most ``in_flight`` passwords are being hashed
    at any moment; an attempt beyond that is refused, not queued, so that a flood of logins
    cannot take more than that many cores from collection and delivery.

    Args:
        per_minute: attempts per address and minute (also the burst).
        in_flight: hashes at once, all addresses together.
        max_addresses: addresses remembered (the least recently seen are forgotten).
    """

    __slots__ = ("_addresses", "_max", "_rate", "_slots")

    def __init__(
        self,
        *,
        per_minute: int = LOGIN_ATTEMPTS_PER_MINUTE,
        in_flight: int = LOGIN_HASHES_IN_FLIGHT,
        max_addresses: int = LOGIN_ADDRESSES,
    ) -> None:
        self._rate = per_minute
        self._slots = threading.BoundedSemaphore(in_flight)
        self._max = max_addresses
        #: address → (tokens, when they were counted); oldest first.
        self._addresses: dict[str, tuple[float, float]] = {}

    def acquire(self, address: str, now: float) -> float:
        """Take an attempt for ``address``: 0 when it may go ahead (then call :meth:`release`
        once the hash is done, from any thread), else the seconds to wait before trying."""
        key = _address_key(address)
        tokens, then = self._addresses.pop(key, (float(self._rate), now))
        tokens = min(float(self._rate), tokens + max(0.0, now - then) * self._rate / 60)
        self._addresses[key] = (tokens, now)
        if len(self._addresses) > self._max:
            del self._addresses[next(iter(self._addresses))]
        if tokens < 1:
            return max(1.0, math.ceil((1 - tokens) * 60 / self._rate))
        if not self._slots.acquire(blocking=False):
            return 1.0
        self._addresses[key] = (tokens - 1, now)
        return 0.0

    def release(self) -> None:
        """One hash is done."""
        self._slots.release()


def _address_key(address: str) -> str:
    """What the throttle counts by: the address, or its /64 for IPv6."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)
