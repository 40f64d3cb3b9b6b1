"""Attribution: which Pinterest campaign each conversion goes back to, by last click.

A conversion (checkout, lead, signup, add to cart) is attributed to its person's latest click
seen within the window before it (default: Pinterest's default click window, 30 days), and
through that click to its campaign (``utm_campaign`` of the landing page, else ``(no
campaign)``); without a click it counts under ``(no click)``. Values are summed per currency.
The delay from click to conversion is bucketed like Pinterest's click windows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import msgspec

__all__ = ["BUCKETS", "AttributionRow", "attribute"]

#: Delay buckets, in days: Pinterest's click windows.
BUCKETS: Final = (1, 7, 14, 30)
NO_CLICK: Final = "(no click)"
NO_CAMPAIGN: Final = "(no campaign)"


class AttributionRow(msgspec.Struct):
    """Conversions of one event name attributed to one campaign, in one currency."""

    campaign: str
    event_name: str
    currency: str
    conversions: int = 0
    value: str = "0"
    by_delay: dict[str, int] = {}


class _Conversion(msgspec.Struct):
    custom_data: dict[str, Any] = {}


_decode = msgspec.json.Decoder(_Conversion).decode


def attribute(rows: Iterable[Sequence[Any]]) -> list[AttributionRow]:
    """Aggregate ``(id, event_name, event_time, payload, click_id, click_seen, utm)`` rows
    (one per conversion and candidate click, as the store's ``attribution`` query gives)."""
    best: dict[int, tuple[str, int, bytes, float | None, bytes | None]] = {}
    for row_id, name, event_time, payload, click_id, seen, utm in rows:
        kept = best.get(row_id)
        if kept is None or (seen is not None and (kept[3] is None or seen > kept[3])):
            best[row_id] = (name, event_time, payload, seen if click_id else None, utm)
    groups: dict[tuple[str, str, str], AttributionRow] = {}
    totals: dict[tuple[str, str, str], Decimal] = {}
    for name, event_time, payload, seen, utm in best.values():
        campaign = NO_CLICK if seen is None else _campaign(utm)
        data = _decode(payload).custom_data
        currency = str(data.get("currency") or "")
        key = (campaign, name, currency)
        group = groups.setdefault(key, AttributionRow(campaign, name, currency))
        group.conversions += 1
        totals[key] = totals.get(key, Decimal(0)) + _money(data.get("value"))
        if seen is not None:
            bucket = _bucket(event_time - seen)
            group.by_delay[bucket] = group.by_delay.get(bucket, 0) + 1
    for key, group in groups.items():
        group.value = format(totals[key], "f")
    return sorted(groups.values(), key=lambda g: (-g.conversions, g.campaign, g.event_name))


def _campaign(utm: bytes | None) -> str:
    found = msgspec.json.decode(utm) if utm else {}
    return str(found.get("utm_campaign") or NO_CAMPAIGN)


def _money(value: object) -> Decimal:
    try:
        return Decimal(str(value)) if value is not None else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def _bucket(delay: float) -> str:
    days = max(delay, 0) / 86400
    for limit in BUCKETS:
        if days <= limit:
            return f"<= {limit}d"
    return f"> {BUCKETS[-1]}d"
