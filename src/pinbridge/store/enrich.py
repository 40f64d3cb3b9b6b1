"""Per-destination enrichment inside the accept transaction, shared by every store."""

from __future__ import annotations

import msgspec

from pinbridge.identity import IdentityTables, Profile, enrich, satisfies_identifier_rule
from pinbridge.pinterest.schema import ConversionEvent
from pinbridge.store.base import IdentityPolicy, PendingEvent

__all__ = ["enrichments"]

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
    decoded = _decode(event.payload)
    profile = tables.profile(person)
    clicks = tables.clicks(person)
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
