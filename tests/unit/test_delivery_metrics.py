"""The sender's bulk histogram update matches one ``observe`` per value."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from pinbridge.delivery import observe_all

BUCKETS = (0.5, 1.0, 5.0, 60.0, 3600.0)


def _exposition(values: list[float], *, bulk: bool) -> bytes:
    registry = CollectorRegistry()
    histogram = Histogram("h", "test", ["d"], buckets=BUCKETS, registry=registry)
    child = histogram.labels("x")
    if bulk:
        observe_all(child, values)
    else:
        for value in values:
            child.observe(value)
    return b"\n".join(
        line for line in generate_latest(registry).splitlines() if b"_created" not in line
    )


@given(
    st.lists(
        st.one_of(
            st.sampled_from(BUCKETS),
            st.floats(min_value=0, max_value=1e6, allow_nan=False),
        ),
        max_size=50,
    )
)
def test_bulk_matches_one_observe_per_value(values: list[float]) -> None:
    """Counts per bucket (bounds included in their bucket), count and sum are the same."""
    assert _exposition(values, bulk=True) == _exposition(values, bulk=False)
