"""What happened to each event of a request: Pinterest's answer read event by event.

Pure functions from an HTTP status, a ``Retry-After`` header and a body to one ``Outcome`` per
event sent, in request order. The rules, by status:

========================  ====================================================================
2xx                       each ``events[]`` entry: ``processed`` (its warning kept) or
                          ``failed`` (its ``error_message``). A 200 that carries ``failed``
                          entries (Pinterest did so in 2023) is read the same way.
2xx, unreadable body      every event ``retry``: the body is not JSON or not Pinterest's shape,
                          or ``events[]`` does not have one entry per event sent. Nothing says
                          which events were taken, and resending is safe because Pinterest
                          deduplicates on ``event_id``.
422                       ``details.events`` read like a 200. Without usable details, every
                          event ``failed``: the data was refused, sending it again unchanged
                          cannot help; the dead-letter queue keeps it for a replay.
400, 413, other 4xx       every event ``failed`` with Pinterest's message (schema errors are
                          never retried; the sender splits a refused request of several
                          events first).
401, 403                  every event ``stopped``: the token or its access is wrong for the
                          whole destination; the events are kept.
3xx                       every event ``stopped``: Pinterest does not redirect this endpoint,
                          so the base URL is wrong (e.g. ``http://`` for ``https://``).
404, 405, 410             every event ``stopped``: an answer to the whole request saying the
                          endpoint is not there, so the base URL is wrong (e.g. without
                          ``/v5``), not the events; they are kept.
408, 429, 5xx             every event ``retry``, with ``Retry-After`` when given (503 with
                          ``code 4197`` is Pinterest's "ramped down" answer).
========================  ====================================================================

Answers are read leniently (unknown fields ignored, ``null`` messages read as empty): the
emulator validates strictly, the client should not break on a field Pinterest adds.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Sequence
from typing import Any, Final, Literal

import msgspec

from pinbridge.pinterest.errors import ApiError, InvalidAnswer, PinterestError

__all__ = [
    "Outcome",
    "OutcomeKind",
    "api_error",
    "classify_answer",
    "outcomes_for_failure",
    "parse_retry_after",
]

OutcomeKind = Literal["processed", "failed", "retry", "stopped"]


class Outcome(msgspec.Struct, frozen=True):
    """What happened to one event.

    Args:
        kind: ``processed``: accepted by Pinterest (a warning may be kept); ``failed``:
            refused for good, never retry; ``retry``: send again later (429, 5xx, 503/4197,
            timeout, connection error, unreadable answer); ``stopped``: a destination-level
            refusal (401/403, or a wrong base URL: 3xx/404/405/410): pause the destination,
            keep the event.
        message: Pinterest's ``error_message`` or error ``message`` (with HTTP status and
            code), or our description of the failure.
        warning: Pinterest's ``warning_message``.
        http_status: the status of the answer, if one came back.
        retry_after: seconds to wait, from ``Retry-After``, when given (``retry`` only).
    """

    kind: OutcomeKind
    message: str = ""
    warning: str = ""
    http_status: int | None = None
    retry_after: float | None = None


class _EventStatus(msgspec.Struct):
    status: str
    error_message: str | None = None
    warning_message: str | None = None


class _Answer(msgspec.Struct):
    events: list[_EventStatus]


class _Detailed(msgspec.Struct):
    details: _Answer


_decode_answer: Final = msgspec.json.Decoder(_Answer).decode
_decode_detailed: Final = msgspec.json.Decoder(_Detailed).decode
_decode_any: Final = msgspec.json.Decoder().decode
_SECONDS: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")
#: Answers to the whole request that say the endpoint is wrong (not found, method not allowed,
#: gone): the destination is misconfigured, the events are not at fault.
_NO_ENDPOINT: Final = frozenset({404, 405, 410})


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delay-seconds or an HTTP-date.

    A date in the past gives 0; anything unreadable gives ``None`` (no advice).

    Args:
        value: the header, if present.
        now: the current Unix time, to turn a date into a delay.
    """
    if value is None:
        return None
    value = value.strip()
    if _SECONDS.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; an obsolete form may omit the zone
        return None
    return max(0.0, when.timestamp() - now)


def api_error(status: int, body: bytes, retry_after: float | None = None) -> ApiError:
    """The ``ApiError`` for an error answer, with Pinterest's ``code`` and ``message``."""
    try:
        decoded: Any = _decode_any(body)
    except msgspec.DecodeError:
        decoded = None
    code = message = None
    if isinstance(decoded, dict):
        code = decoded.get("code")
        message = decoded.get("message")
    if not isinstance(message, str) or not message:
        message = "answer without Pinterest's error body"
    if not isinstance(code, int) or isinstance(code, bool):
        code = None
    return ApiError(status, message, code=code, retry_after=retry_after)


def classify_answer(
    status: int, body: bytes, count: int, *, retry_after: float | None = None
) -> list[Outcome]:
    """One outcome per event sent, from Pinterest's answer (the rules are in the module doc).

    Args:
        status: the HTTP status.
        body: the answer body.
        count: how many events the request carried.
        retry_after: seconds parsed from ``Retry-After``, if any.
    """
    if 200 <= status < 300:
        try:
            return _read_events(_decode_answer(body).events, count, status)
        except (msgspec.DecodeError, InvalidAnswer) as exc:
            failure = exc if isinstance(exc, InvalidAnswer) else _invalid(status, exc)
            return outcomes_for_failure(failure, count, http_status=status)
    error = api_error(status, body, retry_after)
    if status == 422:
        try:
            return _read_events(_decode_detailed(body).details.events, count, status)
        except (msgspec.DecodeError, InvalidAnswer):
            message = f"{error}; the answer does not say which events failed"
            return [Outcome("failed", message=message, http_status=status)] * count
    kind = _kind_of(status)
    message = str(error)
    if 300 <= status < 400:
        message = f"unexpected redirect (HTTP {status}); check the base URL"
    elif status in _NO_ENDPOINT:
        message = f"{error}: no events endpoint there; check the base URL (it ends in /v5)"
    wait = retry_after if kind == "retry" else None
    return [Outcome(kind, message=message, http_status=status, retry_after=wait)] * count


def outcomes_for_failure(
    failure: PinterestError, count: int, *, http_status: int | None = None
) -> list[Outcome]:
    """``count`` outcomes for a request that got no usable answer: all ``retry``."""
    return [Outcome("retry", message=str(failure), http_status=http_status)] * count


def _kind_of(status: int) -> OutcomeKind:
    if status in (401, 403) or status in _NO_ENDPOINT or 300 <= status < 400:
        return "stopped"
    if status in (408, 429) or status >= 500:
        return "retry"
    if 400 <= status < 500:
        return "failed"
    return "retry"


def _invalid(status: int, exc: msgspec.DecodeError) -> InvalidAnswer:
    return InvalidAnswer(f"Pinterest's HTTP {status} answer could not be read: {exc}")


def _read_events(entries: Sequence[_EventStatus], count: int, status: int) -> list[Outcome]:
    if len(entries) != count:
        raise InvalidAnswer(
            f"Pinterest's HTTP {status} answer has {len(entries)} event statuses "
            f"for {count} events sent"
        )
    processed = Outcome("processed", http_status=status)
    outcomes: list[Outcome] = []
    for entry in entries:
        warning = entry.warning_message or ""
        if entry.status == "processed":
            outcome = (
                processed
                if not warning
                else Outcome("processed", warning=warning, http_status=status)
            )
        elif entry.status == "failed":
            message = entry.error_message or "Pinterest failed the event without a message"
            outcome = Outcome("failed", message=message, warning=warning, http_status=status)
        else:
            message = f"Pinterest gave the unknown event status {entry.status!r}"
            outcome = Outcome("retry", message=message, warning=warning, http_status=status)
        outcomes.append(outcome)
    return outcomes
