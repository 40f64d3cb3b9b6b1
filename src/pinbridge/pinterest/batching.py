"""Splitting already-encoded events into request bodies Pinterest accepts.

A request carries 1 to 1,000 events (``maxItems`` in Pinterest's description) and, by our own
rule, at most ``max_body_bytes`` bytes. The body is built by joining the encoded events, never
by re-encoding them: ``{"data":[`` + events joined by ``,`` + ``]}``. So a body of *n* events
whose encodings weigh *s1..sn* bytes is ``ENVELOPE_BYTES + s1 + ... + sn + (n - 1)`` bytes.

Pure functions over sizes and bytes; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import msgspec

from pinbridge.pinterest.schema import MAX_EVENTS_PER_REQUEST

__all__ = ["ENVELOPE_BYTES", "ChunkPlan", "body_size", "join_body", "plan_chunks"]

_OPEN: Final = b'{"data":['
_CLOSE: Final = b"]}"
#: Bytes of the body around the events: ``{"data":[`` and ``]}``.
ENVELOPE_BYTES: Final = len(_OPEN) + len(_CLOSE)


class ChunkPlan(msgspec.Struct, frozen=True):
    """Which events go in which request, by their index in the caller's sequence.

    Args:
        chunks: the requests to send, in order; each lists event indices in increasing order,
            and the chunks follow one another (every index of a chunk is below every index of
            the next one).
        oversized: indices of the events that alone make a body over the byte budget; they
            are in no chunk.
    """

    chunks: list[list[int]]
    oversized: list[int]


def body_size(sizes: Sequence[int]) -> int:
    """Bytes of the body that joins events of these encoded sizes (at least one)."""
    return ENVELOPE_BYTES + sum(sizes) + len(sizes) - 1


def join_body(payloads: Sequence[bytes]) -> bytes:
    """The request body for already-encoded events, without decoding or re-encoding them."""
    return _OPEN + b",".join(payloads) + _CLOSE


def plan_chunks(
    sizes: Sequence[int],
    *,
    max_body_bytes: int,
    max_events: int = MAX_EVENTS_PER_REQUEST,
) -> ChunkPlan:
    """Group events greedily, in order, into as few bodies as fit both limits.

    An event is added to the current chunk while the chunk stays within ``max_events`` and
    its body within ``max_body_bytes``; otherwise a new chunk starts with it. An event whose
    own one-event body is over the budget is set aside in ``oversized``: it could never be
    sent, and it must not hold up the others.

    Args:
        sizes: the encoded size of each event, in bytes, in sending order.
        max_body_bytes: the largest body allowed, envelope included.
        max_events: the most events per body (Pinterest: 1,000).
    """
    if max_events < 1:
        raise ValueError("max_events must be at least 1")
    chunks: list[list[int]] = []
    oversized: list[int] = []
    current: list[int] = []
    current_bytes = ENVELOPE_BYTES - 1  # an empty body, less the comma the first event lacks
    for index, size in enumerate(sizes):
        if ENVELOPE_BYTES + size > max_body_bytes:
            oversized.append(index)
            continue
        if current and (len(current) >= max_events or current_bytes + size + 1 > max_body_bytes):
            chunks.append(current)
            current, current_bytes = [], ENVELOPE_BYTES - 1
        current.append(index)
        current_bytes += size + 1
    if current:
        chunks.append(current)
    return ChunkPlan(chunks=chunks, oversized=oversized)
