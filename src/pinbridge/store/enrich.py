"""Per-destination enrichment inside the accept transaction, shared by every store."""

from __future__ import annotations

import msgspec

from pinbridge.identity import (
    Click,
    IdentityTables,
    Profile,
    enrich,
    resolve,
    satisfies_identifier_rule,
)
from pinbridge.pinterest.schema import ConversionEvent
from pinbridge.signals import IdentitySignals
from pinbridge.store.base import IdentityPolicy, PendingEvent

__all__ = ["enrichments", "person_of"]

_decode = msgspec.json.Decoder(ConversionEvent).decode
_encode = msgspec.json.Encoder().encode
_NO_PROFILE = Profile()


def enrichments(
    tables: IdentityTables,
    event: PendingEvent,
    person: int | None,
    policy: IdentityPolicy | None,
) -> dict[str, tuple[bytes, bytes]] | None:
    """For each destination whose copy the person's history changes: (payload, record).

    Destinations with the same click window share one computation; a destination missing
    from ``policy.click_windows`` gets no click id, but enhanced match all the same.
    ``None`` when the event ``needs_identifier`` and the history cannot supply it.
    """
    if person is None or policy is None:
        return None if event.needs_identifier else {}
    if event.complete:
        return {}
    clicks = tables.clicks(person)
    if event.identified and not _fits(clicks, event, policy):
        return {}
    decoded = _decode(event.payload)
    profile = tables.profile(person)
    done: dict[float, tuple[bytes, bytes] | None] = {}
    found: dict[str, tuple[bytes, bytes]] = {}
    for destination in event.destinations:
        window = policy.click_windows.get(destination, -1.0)
        if window not in done:
            enriched, record = enrich(
                decoded,
                person,
                profile if policy.enhanced_match else _NO_PROFILE,
                clicks if window >= 0 else [],
                window_seconds=max(window, 0.0),
            )
            if event.needs_identifier and not satisfies_identifier_rule(enriched.user_data):
                return None
            done[window] = (_encode(enriched), _encode(record)) if record.added else None
        result = done[window]
        if result is not None:
            found[destination] = result
    return found


def _fits(clicks: list[Click], event: PendingEvent, policy: IdentityPolicy) -> bool:
    """Whether a click lies within a destination's window before the event (as in ``enrich``)."""
    windows = [policy.click_windows.get(d, -1.0) for d in event.destinations]
    widest = max(windows, default=-1.0)
    if widest < 0:
        return False
    latest = event.event_time + 300
    return any(event.event_time - widest <= c.last_seen <= latest for c in clicks)


def person_of(
    tables: IdentityTables,
    signals: IdentitySignals | None,
    policy: IdentityPolicy | None,
    now: float,
) -> int | None:
    """The person an input belongs to (stitched and recorded), or ``None`` without identity."""
    if policy is None or signals is None:
        return None
    return resolve(tables, signals, now=now, ignore=policy.ignore, max_per_kind=policy.max_per_kind)
