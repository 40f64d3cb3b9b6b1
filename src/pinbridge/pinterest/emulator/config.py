"""How an emulator instance behaves: who may call it, how strict it is, and which faults it fakes.

``EmulatorConfig`` is fixed for the life of an app. ``FaultSettings`` is its initial fault
injection, which the control endpoint ``POST /_emulator/faults`` can change at run time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Final

import msgspec
from msgspec import Meta

from pinbridge.pinterest.schema import (
    MAX_EVENT_AGE_SECONDS,
    RATE_LIMIT_PER_MINUTE,
    TEST_REQUESTS_PER_SECOND,
)

__all__ = [
    "DEDUP_WINDOW_SECONDS",
    "FUTURE_SKEW_SECONDS",
    "MAX_RECORDED_EVENTS",
    "OFFLINE_AFTER_SECONDS",
    "EmulatorConfig",
    "FaultSettings",
]

#: Pinterest does not document a limit on future timestamps; 5 minutes covers clock skew
#: between honest hosts, while a millisecond timestamp (decades ahead) is always refused.
FUTURE_SKEW_SECONDS: Final = 300
#: Events received later than this after ``event_time`` are counted as offline (help centre).
OFFLINE_AFTER_SECONDS: Final = 3600
#: Pinterest's guide: duplicates arriving within 48 hours are counted once.
DEDUP_WINDOW_SECONDS: Final = 48 * 3600
#: Recorded events kept in memory (oldest dropped first): about 1 GB at worst.
MAX_RECORDED_EVENTS: Final = 1_000_000

Rate = Annotated[float, Meta(ge=0.0, le=1.0)]
NonNegative = Annotated[int, Meta(ge=0)]
ErrorStatus = Annotated[int, Meta(ge=500, le=599)]


class FaultSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Faults injected into ``POST .../events``, before any other check.

    Args:
        error_rate: probability that a request is answered with one of ``error_statuses``
            (500 ``{code: 1}``; 503 ``{code: 4197}``, Pinterest's "ramped down" answer).
        error_statuses: the statuses an injected error picks from, uniformly; at least one
            (``ValueError`` otherwise, a 400 from the control endpoint).
        latency_ms: added to every request before it is answered.
        drop_rate: probability that the connection is dropped without a complete response.
        burst_429: the next N requests are answered 429 ``{code: 8}``.
        retry_after_seconds: the ``Retry-After`` of those burst answers.
    """

    error_rate: Rate = 0.0
    error_statuses: tuple[ErrorStatus, ...] = (500, 503)
    latency_ms: NonNegative = 0
    drop_rate: Rate = 0.0
    burst_429: NonNegative = 0
    retry_after_seconds: Annotated[int, Meta(ge=1)] = 1

    def __post_init__(self) -> None:
        if not self.error_statuses:  # an injected error would have no status to pick
            raise ValueError("error_statuses must name at least one status (500-599)")


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """Everything an emulator instance needs; built once by the CLI or a test.

    Args:
        tokens: bearer token -> ad account ids it may use. ``None`` accepts any non-empty
            token for any account; with a map, other tokens get 401 and a token used for an
            account it lacks gets 403.
        rate_limit_per_minute: calls per minute per ad account (token bucket of that
            capacity, refilled continuously); 0 disables the limit.
        test_requests_per_second: ``?test=true`` calls per second per token (Pinterest: 10
            test requests per second per app; the token stands for the app); 0 disables it.
        strict: ``False`` accepts unknown keys inside events (as the live API does for
            e.g. ``advertiser_tracking_enabled``) with a warning instead of a 400.
        advertiser_defined_event_names: extra ``event_name`` values accepted besides the 22
            standard ones.
        max_age_seconds: older ``event_time`` values fail the event (Pinterest: 7 days).
        future_skew_seconds: ``event_time`` values further ahead fail the event.
        offline_after_seconds: events received later than this after ``event_time`` (and not
            ``offline`` already) get a warning that they count as offline conversions.
        dedup_window_seconds: the same (``event_id``, ``event_name``) per ad account within
            this window counts once.
        max_recorded_events: recorded events kept for inspection (oldest dropped).
        schema_error_code: ``code`` of 400 answers (Pinterest's example: 4196).
        faults: fault injection at start (changeable at run time).
        seed: seed of the random generator that decides injected faults.
    """

    tokens: Mapping[str, frozenset[str]] | None = None
    rate_limit_per_minute: int = RATE_LIMIT_PER_MINUTE
    test_requests_per_second: int = TEST_REQUESTS_PER_SECOND
    strict: bool = True
    advertiser_defined_event_names: frozenset[str] = frozenset()
    max_age_seconds: int = MAX_EVENT_AGE_SECONDS
    future_skew_seconds: int = FUTURE_SKEW_SECONDS
    offline_after_seconds: int = OFFLINE_AFTER_SECONDS
    dedup_window_seconds: int = DEDUP_WINDOW_SECONDS
    max_recorded_events: int = MAX_RECORDED_EVENTS
    schema_error_code: int = 4196
    faults: FaultSettings = field(default_factory=FaultSettings)
    seed: int | None = None

    def __repr__(self) -> str:
        tokens = (
            None if self.tokens is None else {"***": sorted(set().union(*self.tokens.values()))}
        )
        return (
            f"EmulatorConfig(tokens={tokens!r}, rate_limit_per_minute="
            f"{self.rate_limit_per_minute}, test_requests_per_second="
            f"{self.test_requests_per_second}, strict={self.strict}, faults={self.faults!r})"
        )
