"""The per-ad-account token bucket."""

from __future__ import annotations

import pytest

from pinbridge.ratelimit import AllLimits, TokenBucket


class TestTokenBucket:
    def test_burst_then_wait(self):
        """A full minute's calls pass at once; the next waits for a token."""
        bucket = TokenBucket(rate_per_minute=60)
        assert all(bucket.wait_time(100.0) == 0 for _ in range(60))
        assert bucket.wait_time(100.0) == pytest.approx(1.0)

    def test_refills_with_time(self):
        """Tokens come back at the configured rate."""
        bucket = TokenBucket(rate_per_minute=60, burst=1)
        assert bucket.wait_time(10.0) == 0
        assert bucket.wait_time(10.5) == pytest.approx(0.5)
        assert bucket.wait_time(11.6) == 0

    def test_rate_must_be_positive(self):
        """A zero rate is refused."""
        with pytest.raises(ValueError, match="positive"):
            TokenBucket(rate_per_minute=0)


@pytest.mark.anyio
class TestReserve:
    async def test_waiting_callers_queue_up(self):
        """A caller told to wait has taken its token: the next one waits a token longer."""
        bucket = TokenBucket(rate_per_minute=60, burst=1)
        assert await bucket.reserve(10.0) == 0
        assert await bucket.reserve(10.0) == pytest.approx(1.0)
        assert await bucket.reserve(10.0) == pytest.approx(2.0)
        assert await bucket.reserve(13.0) == 0  # the borrowed tokens were paid back

    async def test_all_limits_waits_for_the_slowest(self):
        """Every budget is charged; the wait is the longest of theirs."""
        fast, slow = TokenBucket(rate_per_minute=6000), TokenBucket(rate_per_minute=60, burst=1)
        both = AllLimits(fast, slow)
        assert await both.reserve(5.0) == 0
        assert await both.reserve(5.0) == pytest.approx(1.0)
        assert fast.tokens == pytest.approx(5998)
