"""Per-destination enrichment inside the accept transaction, shared by every store."""

from __future__ import annotations

from typing import Protocol

import msgspec

from pinbridge.identity import (
    Click,
    IdentityTables,
    Profile,
    enrich,
    latest_click,
    resolve,
    satisfies_identifier_rule,
)
from pinbridge.pinterest.schema import ConversionEvent
from pinbridge.signals import IdentitySignals
from pinbridge.store.base import Answer, IdentityPolicy, PendingEvent, PendingInput

__all__ = ["EventRows", "accept_input", "enrichments", "person_of"]

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
    """Whether a click happened within a destination's window before the event (the test
    ``enrich`` makes, with the widest window)."""
    windows = [policy.click_windows.get(d, -1.0) for d in event.destinations]
    widest = max(windows, default=-1.0)
    if widest < 0:
        return False
    return latest_click(clicks, event.event_time, widest) is not None


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


class EventRows(Protocol):
    """The event side of one input's accept, on the transaction of a store."""

    def take_key(self, event: PendingEvent) -> bool:
        """Record the event's dedup key; ``False`` when it was seen within the window."""
        ...

    def give_back_key(self, event: PendingEvent) -> None:
        """Forget a key just taken (the event was refused after all)."""
        ...

    def insert(
        self, event: PendingEvent, person: int | None, enriched: dict[str, tuple[bytes, bytes]]
    ) -> None:
        """Keep the event and queue its deliveries (``enriched``: per-destination payloads)."""
        ...


def accept_input(
    pending: PendingInput,
    policy: IdentityPolicy | None,
    tables: IdentityTables,
    now: float,
    rows: EventRows,
) -> list[Answer]:
    """One input's answers: each event deduplicated, enriched from its person, and kept.

    The person is resolved for every input, duplicates included: the server's copy of a
    conversion the browser already sent is a duplicate, yet its email is what stitches the
    browser's visitor (and click) to a known customer. Each event's dedup key comes before
    its enrichment, so a duplicate costs no click lookup; a key taken for an event that is
    then refused (no identifier found) is given back.
    """
    person = person_of(tables, pending.identity, policy, now)
    answers: list[Answer] = []
    for event in pending.events:
        if not rows.take_key(event):
            answers.append("duplicate")
            continue
        enriched = enrichments(tables, event, person, policy)
        if enriched is None:
            rows.give_back_key(event)
            answers.append("unmatched")
            continue
        rows.insert(event, person, enriched)
        answers.append("accepted")
    return answers
