"""Splitting encoded events into request bodies: both limits, no loss, no reordering."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pinbridge.pinterest.batching import (
    ENVELOPE_BYTES,
    ChunkPlan,
    body_size,
    join_body,
    plan_chunks,
)


class TestJoinBody:
    """``join_body`` and ``body_size``."""

    def test_joins_without_reencoding(self) -> None:
        """The body is the payloads joined by commas inside ``{"data":[...]}``, byte for byte."""
        payloads = [b'{"a":1}', b'{"b":"\xc3\xa9"}']
        body = join_body(payloads)
        assert body == b'{"data":[{"a":1},{"b":"\xc3\xa9"}]}'
        assert json.loads(body) == {"data": [{"a": 1}, {"b": "é"}]}

    def test_size_matches_the_body(self) -> None:
        """``body_size`` predicts the length of ``join_body``."""
        payloads = [b"{}", b'{"x":12345}', b'{"y":[]}']
        assert body_size([len(p) for p in payloads]) == len(join_body(payloads))
        assert body_size([2]) == ENVELOPE_BYTES + 2


class TestPlanChunks:
    """``plan_chunks``."""

    def test_splits_by_count(self) -> None:
        """2,500 small events make chunks of 1,000, 1,000 and 500."""
        plan = plan_chunks([10] * 2500, max_body_bytes=10**9)
        assert [len(c) for c in plan.chunks] == [1000, 1000, 500]
        assert plan.oversized == []

    def test_splits_by_bytes(self) -> None:
        """A chunk closes when the next event would take the body over the budget."""
        # Three 10-byte events: 11 + 10 + 1 + 10 + 1 + 10 = 43 bytes.
        plan = plan_chunks([10, 10, 10, 10], max_body_bytes=43)
        assert plan.chunks == [[0, 1, 2], [3]]
        assert body_size([10, 10, 10]) == 43

    def test_exact_fit(self) -> None:
        """An event whose one-event body is exactly the budget is sent alone."""
        plan = plan_chunks([5, 20, 5], max_body_bytes=ENVELOPE_BYTES + 20)
        assert plan == ChunkPlan(chunks=[[0], [1], [2]], oversized=[])

    def test_oversized_set_aside(self) -> None:
        """An event over the budget alone is set aside; its neighbours share a chunk."""
        plan = plan_chunks([10, 500, 10], max_body_bytes=100)
        assert plan == ChunkPlan(chunks=[[0, 2]], oversized=[1])

    def test_nothing(self) -> None:
        """No events, no chunks."""
        assert plan_chunks([], max_body_bytes=100) == ChunkPlan(chunks=[], oversized=[])

    def test_refuses_zero_events_per_chunk(self) -> None:
        """A chunk must be allowed at least one event."""
        with pytest.raises(ValueError, match="max_events"):
            plan_chunks([1], max_body_bytes=100, max_events=0)

    @given(
        sizes=st.lists(st.integers(min_value=0, max_value=300), max_size=400),
        max_body_bytes=st.integers(min_value=ENVELOPE_BYTES + 1, max_value=3000),
        max_events=st.integers(min_value=1, max_value=50),
    )
    def test_invariants(self, sizes: list[int], max_body_bytes: int, max_events: int) -> None:
        """No event is lost, duplicated or reordered, and every chunk respects both limits."""
        plan = plan_chunks(sizes, max_body_bytes=max_body_bytes, max_events=max_events)
        sent = [index for chunk in plan.chunks for index in chunk]
        assert sent == sorted(sent)
        assert sorted(sent + plan.oversized) == list(range(len(sizes)))
        assert plan.oversized == [
            i for i, size in enumerate(sizes) if ENVELOPE_BYTES + size > max_body_bytes
        ]
        for number, chunk in enumerate(plan.chunks):
            assert 1 <= len(chunk) <= max_events
            assert body_size([sizes[i] for i in chunk]) <= max_body_bytes
            if number + 1 < len(plan.chunks):
                # Greedy: the next chunk's first event did not fit in this one.
                grown = [sizes[i] for i in chunk] + [sizes[plan.chunks[number + 1][0]]]
                assert len(grown) > max_events or body_size(grown) > max_body_bytes
