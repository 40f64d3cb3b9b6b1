"""When to try a failed delivery again: a pure policy, tested with tables.

Exponential backoff with full jitter: after the ``n``-th failed attempt (``n`` from 1) the
next one is due after a delay drawn uniformly from ``[0, min(cap, base * 2 ** (n - 1))]``,
and never before Pinterest's ``Retry-After``. A retry that would fall after the event's
expiry (event time + 7 days, when Pinterest refuses it as too old) is not scheduled: the
event becomes a dead letter with that reason instead.
"""

from __future__ import annotations

import random
from typing import Final

import msgspec

__all__ = [
    "DEFAULT_BASE_SECONDS",
    "DEFAULT_CAP_SECONDS",
    "LEASE_USE",
    "RetryDecision",
    "RetryPolicy",
]

#: The share of a claim's lease a delivery round may use: a request starts only when it can
#: end (the client's timeout) within it, so that the outcomes are recorded while the lease
#: holds. ``lease_seconds`` must therefore leave room for one request: at least
#: ``timeout_seconds / LEASE_USE``.
LEASE_USE = 0.9

DEFAULT_BASE_SECONDS: Final = 1.0
DEFAULT_CAP_SECONDS: Final = 600.0
EXPIRED_REASON: Final = "expired: Pinterest refuses events older than 7 days"


class RetryDecision(msgspec.Struct, frozen=True):
    """Either ``due_at`` (try again then) or ``give_up`` with a reason."""

    due_at: float | None = None
    give_up: str | None = None


class RetryPolicy(msgspec.Struct, frozen=True):
    """Exponential backoff with full jitter, honouring ``Retry-After`` and the event's expiry."""

    base_seconds: float = DEFAULT_BASE_SECONDS
    cap_seconds: float = DEFAULT_CAP_SECONDS

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after the ``attempt``-th failure (1 = the first)."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** min(max(attempt, 1) - 1, 62))
        return rng.uniform(0.0, ceiling)

    def decide(
        self,
        *,
        attempt: int,
        now: float,
        expires_at: float,
        rng: random.Random,
        retry_after: float | None = None,
    ) -> RetryDecision:
        """The next due time after ``attempt`` failures, or why to give up."""
        wait = max(self.delay(attempt, rng), retry_after or 0.0)
        due = now + wait
        if due >= expires_at:
            return RetryDecision(give_up=EXPIRED_REASON)
        return RetryDecision(due_at=due)
