"""Pinterest's checks on a request body: the schema (a 400) and then each event (a 422).

Pure: no I/O, the current time is passed in. The fast path is one cached
``msgspec.json.Decoder(ConversionEvents)`` call plus a few set and regex look-ups per event;
error messages are only built when something is wrong.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Final

import msgspec
from msgspec import UNSET, UnsetType

from pinbridge.pinterest.emulator.config import EmulatorConfig
from pinbridge.pinterest.emulator.schema_errors import (
    find_violation,
    strip_unknown_fields,
)
from pinbridge.pinterest.schema import (
    ACTION_SOURCES,
    EVENT_NAMES,
    HASHED_FIELDS,
    ConversionEvent,
    ConversionEvents,
    UserData,
)

__all__ = ["BodyValidator", "EventCheck", "InvalidBody"]

_HEX64: Final = re.compile(r"[0-9a-f]{64}").fullmatch
_LANGUAGE: Final = re.compile(r"[A-Za-z]{2}").fullmatch
_CURRENCY: Final = re.compile(r"[A-Z]{3}").fullmatch

#: Failure reasons, as counted in the emulator's stats.
REASON_EVENT_NAME: Final = "event_name"
REASON_ACTION_SOURCE: Final = "action_source"
REASON_PAST: Final = "event_time_past"
REASON_FUTURE: Final = "event_time_future"
REASON_HASHED: Final = "hashed_format"
REASON_IDENTIFIER: Final = "empty_identifier"


class InvalidBody(Exception):
    """The body is not JSON or breaks the schema: Pinterest answers 400."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EventCheck(msgspec.Struct, frozen=True):
    """The outcome of one event's semantic checks; no reasons means processed."""

    reasons: tuple[str, ...] = ()
    error_message: str = ""
    warning_message: str = ""


_OK: Final = EventCheck()


class BodyValidator:
    """Decodes and checks request bodies for one emulator configuration."""

    def __init__(self, config: EmulatorConfig) -> None:
        self._decoder = msgspec.json.Decoder(ConversionEvents)
        self._strict = config.strict
        self._names = EVENT_NAMES | config.advertiser_defined_event_names
        self._max_age = config.max_age_seconds
        self._skew = config.future_skew_seconds
        self._offline_after = config.offline_after_seconds

    def decode(self, body: bytes) -> tuple[ConversionEvents, list[list[str]] | None]:
        """The decoded body and, in lenient mode, per event the unknown keys it dropped.

        Raises:
            InvalidBody: with ``"Invalid request: ..."``, naming the field and its JSON path.
        """
        try:
            events = self._decoder.decode(body)
        except msgspec.ValidationError as exc:
            return self._slow_decode(body, exc)
        except msgspec.DecodeError as exc:
            raise InvalidBody(f"Invalid request: the body is not valid JSON ({exc})") from None
        for event in events.data:
            if not event.user_data.satisfies_identifier_rule():
                return self._slow_decode(body, None)
        return events, None

    def _slow_decode(
        self, body: bytes, exc: msgspec.ValidationError | None
    ) -> tuple[ConversionEvents, list[list[str]] | None]:
        try:
            raw = msgspec.json.decode(body)
        except msgspec.DecodeError as error:
            raise InvalidBody(f"Invalid request: the body is not valid JSON ({error})") from None
        dropped = None if self._strict else strip_unknown_fields(raw)
        violation = find_violation(raw)
        if violation is not None:
            raise InvalidBody(f"Invalid request: {violation.describe()}")
        if dropped is None:
            # msgspec and the walker disagree: keep msgspec's verdict, say it in its words.
            raise InvalidBody(f"Invalid request: {exc}")
        try:
            return msgspec.convert(raw, ConversionEvents), dropped
        except msgspec.ValidationError as error:
            raise InvalidBody(f"Invalid request: {error}") from None

    def check(
        self, events: Sequence[ConversionEvent], now: float, dropped: list[list[str]] | None
    ) -> list[EventCheck]:
        """Per event, in request order: why it fails (if it does) and its warnings."""
        current = int(now)
        oldest = current - self._max_age
        latest = current + self._skew
        out: list[EventCheck] = []
        for index, event in enumerate(events):
            extra = dropped[index] if dropped else None
            if (
                extra
                or event.event_name not in self._names
                or event.action_source not in ACTION_SOURCES
                or not oldest <= event.event_time <= latest
                or current - event.event_time > self._offline_after
                or not _clean(event)
            ):
                out.append(self._check_slowly(event, current, extra))
            else:
                out.append(_OK)
        return out

    def _check_slowly(
        self, event: ConversionEvent, now: int, extra: list[str] | None
    ) -> EventCheck:
        reasons: list[str] = []
        errors: list[str] = []
        warnings: list[str] = []
        if event.event_name not in self._names:
            reasons.append(REASON_EVENT_NAME)
            errors.append(
                f"Invalid event_name parameter. Given event_name: {event.event_name!r} is neither "
                "a standard event name nor a configured advertiser-defined event."
            )
        if event.action_source not in ACTION_SOURCES:
            reasons.append(REASON_ACTION_SOURCE)
            errors.append(
                f"Invalid action_source parameter. Given action_source: {event.action_source!r} "
                "is not one of app_android, app_ios, web, offline."
            )
        if event.event_time < now - self._max_age:
            reasons.append(REASON_PAST)
            errors.append(
                "Invalid event_timestamp parameter. Given timestamp is in the past. "
                f"Current timestamp: {now}, Given event_timestamp: {event.event_time}"
            )
        elif event.event_time > now + self._skew:
            reasons.append(REASON_FUTURE)
            errors.append(
                "Invalid event_timestamp parameter. Given timestamp is in the future. "
                f"Current timestamp: {now}, Given event_timestamp: {event.event_time}"
            )
        elif now - event.event_time > self._offline_after and event.action_source != "offline":
            warnings.append(
                "Event received more than 1 hour after event_time: it is counted as an "
                "offline conversion."
            )
        _check_identifiers(event, reasons, errors)
        _warn_on_values(event, warnings)
        if extra:
            warnings.extend(f"Unknown field {key!r} was ignored." for key in extra)
        return EventCheck(tuple(dict.fromkeys(reasons)), " ".join(errors), " ".join(warnings))


def _hashed_values(user: UserData) -> tuple[list[str] | UnsetType, ...]:
    """The hashed fields of ``user_data``, in ``HASHED_FIELDS`` order (no ``getattr``)."""
    return (
        user.em,
        user.ph,
        user.ge,
        user.db,
        user.ln,
        user.fn,
        user.ct,
        user.st,
        user.zp,
        user.country,
        user.external_id,
        user.hashed_maids,
    )


def _clean(event: ConversionEvent) -> bool:
    """Whether the event has nothing to fail or warn about, apart from name, source and time.

    The fast path: no messages are built here; ``_check_slowly`` builds them when needed.
    """
    for values in _hashed_values(event.user_data):
        if values is not UNSET and not all(map(_HEX64, values)):
            return False
    if not _has_usable_identifier(event):
        return False
    if event.language is not None and _LANGUAGE(event.language) is None:
        return False
    data = event.custom_data
    if data is UNSET:
        return True
    if data.currency is not None and _CURRENCY(data.currency) is None:
        return False
    if (data.value is not None and not _is_number(data.value)) or (
        data.predicted_ltv is not None and not _is_number(data.predicted_ltv)
    ):
        return False
    if data.contents is not UNSET:
        for item in data.contents:
            if item.item_price is not UNSET and not _is_number(item.item_price):
                return False
    return True


def _has_usable_identifier(event: ConversionEvent) -> bool:
    user = event.user_data
    return bool(user.em or user.hashed_maids or (user.client_ip_address and user.client_user_agent))


def _check_identifiers(event: ConversionEvent, reasons: list[str], errors: list[str]) -> None:
    for name, values in zip(HASHED_FIELDS, _hashed_values(event.user_data), strict=True):
        if values is UNSET:
            continue
        for index, value in enumerate(values):
            if _HEX64(value) is None:
                reasons.append(REASON_HASHED)
                errors.append(
                    f"Invalid user_data.{name}[{index}] parameter. The value is not in hashed "
                    "format: send a SHA-256 hex digest (64 lowercase hexadecimal characters)."
                )
                break
    if not _has_usable_identifier(event):
        reasons.append(REASON_IDENTIFIER)
        errors.append(
            "Invalid user_data parameter. No usable identifier: em and hashed_maids are empty "
            "or absent, and client_ip_address with client_user_agent is not given."
        )


def _warn_on_values(event: ConversionEvent, warnings: list[str]) -> None:
    if event.language is not None and _LANGUAGE(event.language) is None:
        warnings.append(
            f"language {event.language!r} is not a two-letter ISO-639-1 code; it was ignored."
        )
    data = event.custom_data
    if data is UNSET:
        return
    if data.currency is not None and _CURRENCY(data.currency) is None:
        warnings.append(
            f"custom_data.currency {data.currency!r} is not a three-letter upper-case ISO-4217 "
            "code; the ad account's currency is used."
        )
    for name, value in (("value", data.value), ("predicted_ltv", data.predicted_ltv)):
        if value is not None and not _is_number(value):
            warnings.append(f"custom_data.{name} {value!r} is not a number; it was ignored.")
    if data.contents is not UNSET:
        for index, item in enumerate(data.contents):
            if item.item_price is not UNSET and not _is_number(item.item_price):
                warnings.append(
                    f"custom_data.contents[{index}].item_price {item.item_price!r} is not a "
                    "number; it was ignored."
                )


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False
