"""Pinterest's rules, checked on every produced event before it may be sent.

The wire model already makes forbidden keys impossible; this module checks what types alone
cannot: the ``user_data`` identifier rule, known event names and action sources, the time
window, hashed formats, and the decimal strings. Each failure is a field-level
:class:`~pinbridge.problems.Problem`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from msgspec import UNSET

from pinbridge.pinterest.schema import (
    ACTION_SOURCES,
    EVENT_NAMES,
    HASHED_FIELDS,
    MAX_EVENT_AGE_SECONDS,
    ConversionEvent,
    UserData,
)
from pinbridge.problems import Problem

__all__ = ["DEFAULT_FUTURE_SKEW_SECONDS", "IDENTIFIER_RULE", "EventValidator", "check_digests"]

#: How far in the future an event time may be (client clocks drift; milliseconds don't pass).
DEFAULT_FUTURE_SKEW_SECONDS: Final = 300
IDENTIFIER_RULE: Final = "needs em, hashed_maids, or both client_ip_address and client_user_agent"
_DIGESTS = re.compile(r"[0-9a-f]{64}(?:,[0-9a-f]{64})*")
_DECIMAL = re.compile(r"-?\d+(\.\d+)?")
_CURRENCY = re.compile(r"[A-Z]{3}")


class EventValidator:
    """Checks Pinterest events; configured once, called per event.

    Args:
        extra_names: advertiser-defined event names the account accepts.
        max_age_seconds: events older than this are refused (Pinterest: 7 days).
        future_skew_seconds: events further in the future than this are refused.
    """

    __slots__ = ("_future", "_max_age", "_names")

    def __init__(
        self,
        *,
        extra_names: frozenset[str] = frozenset(),
        max_age_seconds: int = MAX_EVENT_AGE_SECONDS,
        future_skew_seconds: int = DEFAULT_FUTURE_SKEW_SECONDS,
    ) -> None:
        self._names = EVENT_NAMES | extra_names
        self._max_age = max_age_seconds
        self._future = future_skew_seconds

    def __call__(
        self,
        event: ConversionEvent,
        *,
        now: int,
        check_time: bool = True,
        digest_problems: Sequence[Problem] | None = None,
    ) -> list[Problem]:
        """All the problems of one event; empty when Pinterest will accept it.

        A caller that has already checked the time window passes ``check_time=False``; one
        that has checked the hashed fields (:func:`check_digests`, once per person) passes
        what that check found as ``digest_problems``.
        """
        problems: list[Problem] = []
        if event.event_name not in self._names:
            problems.append(
                Problem("event_name", f"{event.event_name!r} is not a Pinterest event name")
            )
        if event.action_source not in ACTION_SOURCES:
            problems.append(
                Problem("action_source", f"must be one of {', '.join(sorted(ACTION_SOURCES))}")
            )
        if not event.event_id:
            problems.append(Problem("event_id", "must not be empty"))
        if check_time:
            problems.extend(self.check_time(event.event_time, now=now))
        problems.extend(_check_user_data(event, digest_problems))
        problems.extend(_check_custom_data(event))
        return problems

    def check_time(self, event_time: int, *, now: int) -> list[Problem]:
        """The time window: not older than the maximum age, not beyond the allowed skew."""
        if event_time < now - self._max_age:
            days = self._max_age // 86400
            return [Problem("event_time", f"is more than {days} days old; Pinterest refuses it")]
        if event_time > now + self._future:
            return [
                Problem(
                    "event_time",
                    f"is more than {self._future} seconds in the future "
                    "(milliseconds instead of seconds, or a wrong clock)",
                )
            ]
        return []


def _check_user_data(
    event: ConversionEvent, digest_problems: Sequence[Problem] | None
) -> list[Problem]:
    user = event.user_data
    problems: list[Problem] = []
    has_em = user.em is not UNSET and bool(user.em)
    has_maid = user.hashed_maids is not UNSET and bool(user.hashed_maids)
    has_web = bool(user.client_ip_address) and bool(user.client_user_agent)
    if not (has_em or has_maid or has_web):
        problems.append(Problem("user_data", IDENTIFIER_RULE))
    problems.extend(check_digests(user) if digest_problems is None else digest_problems)
    return problems


def check_digests(user: UserData) -> list[Problem]:
    """The hashed fields that are not lists of SHA-256 digests (64 lowercase hex)."""
    given = [(field, getattr(user, field)) for field in HASHED_FIELDS]
    given = [(field, values) for field, values in given if values is not UNSET]
    if all(given_values for _, given_values in given) and _DIGESTS.fullmatch(
        ",".join([",".join(values) for _, values in given])
    ):
        # One search over all fields: the usual case, digests from our own normalizer.
        return []
    problems = []
    for field, values in given:
        if not values:
            problems.append(Problem(f"user_data.{field}", "must not be an empty list"))
        elif not _DIGESTS.fullmatch(",".join(values)):
            problems.append(
                Problem(f"user_data.{field}", "must hold SHA-256 digests (64 lowercase hex)")
            )
    return problems


def _check_custom_data(event: ConversionEvent) -> list[Problem]:
    data = event.custom_data
    if data is UNSET:
        return []
    problems: list[Problem] = []
    for field in ("value", "predicted_ltv"):
        value = getattr(data, field)
        if value is not None and not _DECIMAL.fullmatch(value):
            problems.append(Problem(f"custom_data.{field}", "must be a decimal number as a string"))
    if data.currency is not None and not _CURRENCY.fullmatch(data.currency):
        problems.append(Problem("custom_data.currency", "must be a 3-letter ISO-4217 code"))
    if data.contents is not UNSET:
        for index, item in enumerate(data.contents):
            if item.item_price is not UNSET and not _DECIMAL.fullmatch(item.item_price):
                problems.append(
                    Problem(f"custom_data.contents[{index}].item_price", "must be a decimal string")
                )
    return problems
