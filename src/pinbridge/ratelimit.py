"""Calls per minute per ad account: a token bucket on a clock the caller passes in.

The sender asks a :class:`RateLimit` before each call. :class:`TokenBucket` keeps the budget in
this process (enough with SQLite, where one process sends);
:class:`pinbridge.store.postgres.SharedTokenBucket` keeps it in the database, so that every
sender of a PostgreSQL deployment takes from the same budget. :class:`AllLimits` makes a call
wait for several budgets at once (an ad account's and test mode's).

Every request takes a token, and a caller told to wait has its token already: the next caller
waits behind it, so callers that wait together never pass the rate.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

__all__ = ["AllLimits", "RateLimit", "TokenBucket"]


class RateLimit(Protocol):
    """One ad account's budget of calls."""

    async def reserve(self, now: float) -> float:
        """Take one call; returns the seconds to wait before making it (0: at once)."""
        ...


class TokenBucket(msgspec.Struct):
    """``rate_per_minute`` calls per minute, with bursts up to ``burst`` (default: a minute's)."""

    rate_per_minute: float
    burst: float = 0.0
    tokens: float = -1.0
    updated: float = 0.0

    def __post_init__(self) -> None:
        if self.rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be positive")
        self.burst = self.burst or self.rate_per_minute
        if self.tokens < 0:
            self.tokens = self.burst

    def wait_time(self, now: float) -> float:
        """Seconds until one call is allowed (0 when allowed now); takes the token if so."""
        elapsed = max(0.0, now - self.updated) if self.updated else 0.0
        self.updated = now
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate_per_minute / 60.0)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) * 60.0 / self.rate_per_minute

    async def reserve(self, now: float) -> float:
        """:meth:`wait_time`, as :class:`RateLimit` asks for it, except that a caller told
        to wait takes its token too (borrowed from the refill), so the next one waits longer."""
        wait = self.wait_time(now)
        if wait > 0:
            self.tokens -= 1.0
        return wait


class AllLimits:
    """Several budgets at once: a call takes a token from each and waits for the slowest."""

    __slots__ = ("limits",)

    def __init__(self, *limits: RateLimit) -> None:
        self.limits = limits

    def __repr__(self) -> str:
        return f"AllLimits{self.limits!r}"

    async def reserve(self, now: float) -> float:
        waits = [await limit.reserve(now) for limit in self.limits]
        return max(waits, default=0.0)
