"""The errors of Pinterest's side of pinbridge, one tree:

    PinterestError
     ├── TransportFailure      no usable HTTP answer came back; the request may or may not
     │    │                    have reached Pinterest (safe to resend: Pinterest dedups)
     │    ├── Timeout          the request took longer than its deadline
     │    ├── ConnectionFailure  connecting, sending or receiving failed at the socket
     │    └── ProtocolFailure  the HTTP exchange broke: a dropped connection, a truncated or
     │                         undecodable answer, a request httpx2 refused to build
     ├── InvalidAnswer         a complete answer whose body is not what Pinterest documents
     │                         (not JSON, wrong shape, a status count that does not match)
     ├── ApiError              Pinterest answered with an error status (``http_status``,
     │                         Pinterest's ``code`` and ``message``, ``retry_after``)
     └── ClientClosed          the client was used after ``aclose()``

``PinterestClient.send`` never raises any of these for a delivery problem: it turns them into
one ``Outcome`` per event. ``conversion_eqs`` raises them. Invalid arguments (an ad account id
that is not 1 to 18 digits, an unusable token or base URL) are programming errors and raise
``ValueError``.

httpx2's exceptions are translated in one place (``translate_httpx_errors``, used by the
client) and never escape. The original is kept as ``__cause__`` unless its text contains the
token, which no message, ``str`` or ``repr`` here ever shows.

This tree is separate from ``pinbridge.errors`` because this layer imports nothing else of
pinbridge.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx2

__all__ = [
    "ApiError",
    "ClientClosed",
    "ConnectionFailure",
    "InvalidAnswer",
    "PinterestError",
    "ProtocolFailure",
    "Timeout",
    "TransportFailure",
    "translate_httpx_errors",
]


class PinterestError(Exception):
    """Talking to Pinterest failed."""

    def __init__(self, message: str | None = None) -> None:
        # The class docstring is the default message, as in procrastinate.
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        """The message, as given or taken from the class docstring."""
        return str(self)


class TransportFailure(PinterestError):
    """No usable answer came back from Pinterest."""


class Timeout(TransportFailure):
    """The request to Pinterest timed out."""


class ConnectionFailure(TransportFailure):
    """The connection to Pinterest failed."""


class ProtocolFailure(TransportFailure):
    """The HTTP exchange with Pinterest broke off or was malformed."""


class InvalidAnswer(PinterestError):
    """Pinterest's answer could not be read."""


class ApiError(PinterestError):
    """Pinterest answered with an error status.

    Args:
        http_status: the HTTP status.
        code: Pinterest's error ``code`` when the body carried one.
        message: Pinterest's ``message``, or a description of the answer when it had none.
        retry_after: seconds from ``Retry-After``, when given.
    """

    def __init__(
        self,
        http_status: int,
        message: str,
        *,
        code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.http_status = http_status
        self.code = code
        self.retry_after = retry_after
        suffix = f", code {code}" if code is not None else ""
        super().__init__(f"{message} (HTTP {http_status}{suffix})")


class ClientClosed(PinterestError):
    """The Pinterest client is closed."""


#: Most specific first: the first matching class decides the translation.
_TRANSLATIONS: tuple[tuple[type[Exception], type[TransportFailure]], ...] = (
    (httpx2.TimeoutException, Timeout),
    (httpx2.NetworkError, ConnectionFailure),
    (httpx2.ProtocolError, ProtocolFailure),
    (httpx2.DecodingError, ProtocolFailure),
    (httpx2.HTTPError, TransportFailure),
    (httpx2.InvalidURL, ProtocolFailure),
    (httpx2.StreamError, ProtocolFailure),
    (httpx2.CookieConflict, ProtocolFailure),
)
_HTTPX_ERRORS: tuple[type[Exception], ...] = tuple(source for source, _ in _TRANSLATIONS)


def redact(text: str, secret: str) -> str:
    """``text`` with every occurrence of ``secret`` replaced by ``***``."""
    return text.replace(secret, "***") if secret else text


@contextmanager
def translate_httpx_errors(secret: str) -> Iterator[None]:
    """Turn any httpx2 exception raised inside into the matching ``TransportFailure``.

    The message names httpx2's class (``ReadTimeout``, ``RemoteProtocolError``...), so that an
    operator reading a retry reason knows what failed, and never contains ``secret``. When
    httpx2's own text mentions the secret (a header refused by h11 would quote it), the
    original is dropped instead of being chained.
    """
    try:
        yield
    except _HTTPX_ERRORS as exc:
        target = next(t for source, t in _TRANSLATIONS if isinstance(exc, source))
        text = str(exc)
        clean = redact(text, secret)
        detail = f"{type(exc).__name__}: {clean}" if clean else type(exc).__name__
        translated = target(f"{(target.__doc__ or '').strip().rstrip('.')} ({detail})")
        if clean != text:
            raise translated from None
        raise translated from exc
