"""Dashboard login: password hashes, signed session cookies, CSRF tokens.

Passwords are kept as ``pbkdf2_sha256$<iterations>$<salt>$<hash>`` (salt and hash in
URL-safe base64), made by ``pinbridge dashboard passwd``; only the standard library is used.
A session is a cookie ``<user>|<expiry>|<session id>|<HMAC-SHA256>`` signed with a key drawn
at start (a restart logs everyone out) or configured (``[dashboard] session_secret``, for
several processes behind one address). The signature also covers the user's password hash
(never sent), so a changed password ends that user's sessions. Logging out revokes the
session id until the cookie would have expired anyway; the list of revoked ids is kept in
the process that served the logout (see :class:`Revocations`). Forms that change something
carry a CSRF token derived from the session, and the cookie is ``SameSite=Strict``.

Logging in costs one PBKDF2 hash whether or not the user exists (an unknown user is checked
against a made-up hash with the same parameters), so the answer's timing does not tell which
users exist. :class:`LoginThrottle` bounds how often an address may try and how many hashes run
at once; the dashboard runs the hash in a worker thread, never on the event loop.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
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
    "Revocations",
    "Sessions",
    "hash_password",
    "stable_salt",
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


def hash_password(
    password: str, *, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None
) -> str:
    """A salted PBKDF2-SHA256 hash of ``password`` in the configuration's format.

    Args:
        password: the password.
        iterations: PBKDF2 rounds.
        salt: 16 bytes (default: random); see :func:`stable_salt`.
    """
    salt = salt or secrets.token_bytes(16)
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


def stable_salt(secret: str) -> bytes | None:
    """A salt derived from the session secret, for a password hashed at every start
    (``PINBRIDGE_DASHBOARD_PASSWORD``): processes sharing the secret then hold the same hash,
    so they keep accepting each other's sessions, which are bound to it. ``None`` (random)
    without a secret, when no session outlives its process anyway."""
    if not secret:
        return None
    label = b"pinbridge dashboard password salt"
    return hmac.new(secret.encode(), label, hashlib.sha256).digest()[:16]


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


class Revocations:
    """Session ids logged out, each kept until its cookie's own expiry, then forgotten.

    Memory is bounded by the sessions that end in logout within one session lifetime (12 h),
    and each needed a successful, throttled login. Kept per process: with a shared
    ``session_secret``, another process still accepts a cookie logged out here until it
    expires (or until the user's password changes). Not locked: the dashboard uses it from
    the event loop only (logins, in worker threads, do not touch it).
    """

    __slots__ = ("_ids", "_queue")

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        #: (expiry, session id), soonest first, to forget expired ids.
        self._queue: list[tuple[int, str]] = []

    def __len__(self) -> int:
        return len(self._ids)

    def revoke(self, session_id: str, expiry: int, now: float) -> None:
        """Refuse ``session_id`` from now until ``expiry`` (seconds since the epoch)."""
        self._forget(now)
        if session_id not in self._ids and expiry >= now:
            self._ids[session_id] = expiry
            heapq.heappush(self._queue, (expiry, session_id))

    def revoked(self, session_id: str, now: float) -> bool:
        """Whether ``session_id`` was logged out."""
        self._forget(now)
        return session_id in self._ids

    def _forget(self, now: float) -> None:
        while self._queue and self._queue[0][0] < now:
            _, session_id = heapq.heappop(self._queue)
            del self._ids[session_id]


class Sessions:
    """Signs and checks session cookies and CSRF tokens.

    Args:
        users: user name → password hash.
        secret: signing key (``None``: random, valid until the process ends).
        clock: seconds since the epoch.
        verify: checks a password against a stored hash (:func:`verify_password`; tests
            wrap it to see where and when it runs).
        revocations: the session ids logged out (default: a new, empty list).
    """

    def __init__(
        self,
        users: Mapping[str, str],
        *,
        secret: bytes | None = None,
        clock: Callable[[], float] = time.time,
        verify: Callable[[str, str], bool] = verify_password,
        revocations: Revocations | None = None,
    ) -> None:
        self._users = dict(users)
        self._key = secret or secrets.token_bytes(32)
        self._clock = clock
        self._verify = verify
        self._dummy = _dummy_hash(self._users)
        self._revocations = Revocations() if revocations is None else revocations

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
        body = f"{user}|{expiry}|{secrets.token_urlsafe(16)}"
        return f"{body}|{self._sign_session(body, stored)}"

    def user(self, cookie: str | None) -> str | None:
        """The user a valid, unexpired, not logged-out session cookie belongs to."""
        session = self._session(cookie)
        if session is None or self._revocations.revoked(session[2], self._clock()):
            return None
        return session[0]

    def logout(self, cookie: str | None) -> None:
        """End the session ``cookie`` (if valid) in this process: it is refused from now on."""
        session = self._session(cookie)
        if session is not None:
            _, expiry, session_id = session
            self._revocations.revoke(session_id, expiry, self._clock())

    def csrf(self, cookie: str) -> str:
        """The CSRF token of a session."""
        return self._sign(f"csrf|{cookie}")

    def check_csrf(self, cookie: str, token: str) -> bool:
        """Whether ``token`` is the CSRF token of the session ``cookie``."""
        return _same(token, self.csrf(cookie))

    def _session(self, cookie: str | None) -> tuple[str, int, str] | None:
        """(user, expiry, session id) of a cookie signed here for the user's current password
        hash and not expired, logged out or not."""
        if not cookie:
            return None
        body, _, signature = cookie.rpartition("|")
        fields = body.rsplit("|", 2)
        if len(fields) != 3:
            return None
        user, expiry, session_id = fields
        stored = self._users.get(user)
        if not _same(signature, self._sign_session(body, stored or self._dummy)):
            return None
        if stored is None or not (expiry.isascii() and expiry.isdigit()):
            return None
        if int(expiry) < self._clock():
            return None
        return user, int(expiry), session_id

    def _sign_session(self, body: str, stored: str) -> str:
        # The password hash is signed, never sent: a new password makes old cookies wrong.
        return self._sign(f"session|{body}|{stored}")

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
