"""The retry policy: exponential backoff with full jitter, Retry-After, expiry."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pinbridge.backoff import EXPIRED_REASON, RetryPolicy


class _Max(random.Random):
    """Always draws the top of the range, to test the ceilings."""

    def uniform(self, a: float, b: float) -> float:
        return b


class TestRetryPolicy:
    @pytest.mark.parametrize(
        ("attempt", "ceiling"),
        [
            (1, 1.0),
            (2, 2.0),
            (3, 4.0),
            (4, 8.0),
            (10, 512.0),
            (11, 600.0),
            (50, 600.0),
            (10_000, 600.0),
        ],
    )
    def test_ceiling_doubles_up_to_the_cap(self, attempt, ceiling):
        """The n-th delay is at most base * 2**(n-1), and never above the cap."""
        assert RetryPolicy().delay(attempt, _Max()) == ceiling

    @given(attempt=st.integers(1, 100), seed=st.integers(0, 2**32))
    def test_full_jitter_stays_in_range(self, attempt, seed):
        """Every delay lies between 0 and its ceiling."""
        policy = RetryPolicy(base_seconds=0.5, cap_seconds=30)
        delay = policy.delay(attempt, random.Random(seed))
        assert 0 <= delay <= min(30, 0.5 * 2 ** (attempt - 1))

    def test_retry_after_is_a_floor(self):
        """A Retry-After longer than the backoff wins."""
        decision = RetryPolicy().decide(
            attempt=1, now=1000.0, expires_at=10_000.0, rng=random.Random(1), retry_after=60
        )
        assert decision.due_at == 1060.0 and decision.give_up is None

    def test_never_past_expiry(self):
        """A retry that would land after the event's expiry gives up with the reason."""
        decision = RetryPolicy().decide(
            attempt=1, now=1000.0, expires_at=1030.0, rng=random.Random(1), retry_after=60
        )
        assert decision.due_at is None and decision.give_up == EXPIRED_REASON

    def test_before_expiry_retries(self):
        """A retry that lands before the expiry is scheduled."""
        decision = RetryPolicy(base_seconds=1).decide(
            attempt=1, now=1000.0, expires_at=1002.0, rng=random.Random(3)
        )
        assert decision.due_at is not None and 1000.0 <= decision.due_at <= 1001.0
