"""Event Quality Score from the events the emulator recorded, shaped like Pinterest's answer.

``GET /v5/ad_accounts/{id}/conversion_eqs`` answers a JSON array of ``EventQualityScore``
(official spec): per source platform, ``quality_components`` maps each component (hashed email,
IP, user agent, ...) to ``{<CONVERSION_TYPE>: {"coverage": <percent>, "issues": [...]}}``.

``overall_status`` follows Pinterest's resilience levels (REFERENCE.md §11.1):
``NEEDS_IMPROVEMENT`` when IP + user agent are not on every event or a checkout lacks both
email and MAID; ``GOOD`` when, beyond that, every medium and low priority identifier is sent on
some event; ``FAIR`` otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final, Literal

import msgspec
from msgspec import UNSET

from pinbridge.pinterest.emulator.state import RecordedEvent
from pinbridge.pinterest.schema import ConversionEvent

__all__ = [
    "INGESTION_SOURCES",
    "LOOKBACK_DAYS",
    "SOURCE_PLATFORMS",
    "EventQualityScore",
    "QualityComponentDetails",
    "QualityComponentIssue",
    "event_quality_scores",
]

#: ``LookbackPeriodOptions``.
LOOKBACK_DAYS: Final = {"1d": 1, "14d": 14}
#: ``SourcePlatformOptions`` (only the first five can come from the Conversions API).
SOURCE_PLATFORMS: Final = (
    "WEB",
    "MOBILE",
    "MOBILE_ANDROID",
    "MOBILE_IOS",
    "OFFLINE",
    "PINTEREST_WEB",
    "PINTEREST_ANDROID",
    "PINTEREST_IOS",
    "POINT_OF_SALE",
)
#: ``IngestionSourceOptions``; everything the emulator receives is ``CONVERSIONS_API``.
INGESTION_SOURCES: Final = ("TAG", "MMP", "FILE_UPLOAD", "CONVERSIONS_API", "NATIVE")

_PLATFORM_OF: Final = {
    "web": "WEB",
    "app_android": "MOBILE_ANDROID",
    "app_ios": "MOBILE_IOS",
    "offline": "OFFLINE",
}


class QualityComponentIssue(msgspec.Struct):
    """``QualityComponentIssue``."""

    id: str
    name: str
    reason: str


class QualityComponentDetails(msgspec.Struct, omit_defaults=True):
    """``QualityComponentDetails``: coverage in percent; overlap only for event ids."""

    coverage: float
    issues: list[QualityComponentIssue] = msgspec.field(default_factory=list)
    overlap: float | None = None


class EventQualityScore(msgspec.Struct):
    """``EventQualityScore``."""

    overall_status: Literal["NEEDS_IMPROVEMENT", "FAIR", "GOOD"]
    quality_components: dict[str, dict[str, QualityComponentDetails]]
    ingestion_source: str
    source_platform: str
    lookback_period: str


def _has(value: object) -> bool:
    return value is not UNSET and value is not None and bool(value)


def _custom(event: ConversionEvent, name: str) -> object:
    data = event.custom_data
    return UNSET if data is UNSET else getattr(data, name)


def _product(event: ConversionEvent) -> bool:
    data = event.custom_data
    if data is UNSET:
        return False
    return _has(data.content_ids) or (
        data.contents is not UNSET and any(_has(item.id) for item in data.contents)
    )


#: Component name -> whether an event carries it.
COMPONENTS: Final[dict[str, Callable[[ConversionEvent], bool]]] = {
    "hashed_email": lambda e: _has(e.user_data.em),
    "hashed_maid": lambda e: _has(e.user_data.hashed_maids),
    "ip_address": lambda e: _has(e.user_data.client_ip_address),
    "user_agent": lambda e: _has(e.user_data.client_user_agent),
    "click_id_epik": lambda e: _has(e.user_data.click_id),
    "advertiser_external_id": lambda e: _has(e.user_data.external_id),
    "external_event_id": lambda e: bool(e.event_id),
    "order_id": lambda e: _has(_custom(e, "order_id")),
    "order_value": lambda e: _has(_custom(e, "value")),
    "product_id": _product,
    "source_url": lambda e: _has(e.event_source_url),
}
_MEDIUM_AND_LOW: Final = ("external_id", "fn", "ln", "click_id", "ph", "ge", "db", "ct", "st", "zp")
_REQUIRED_EVERYWHERE: Final = ("ip_address", "user_agent")


def event_quality_scores(
    records: Iterable[RecordedEvent],
    *,
    lookback_period: str,
    source_platform: str | None,
    ingestion_source: str | None,
) -> list[EventQualityScore]:
    """One score per source platform that received events (or only the one asked for)."""
    if ingestion_source not in (None, "CONVERSIONS_API"):
        return []
    by_platform: dict[str, list[tuple[ConversionEvent, bool]]] = {}
    for record in records:
        event = record.decoded()
        platform = _PLATFORM_OF.get(event.action_source, "WEB")
        by_platform.setdefault(platform, []).append((event, record.duplicate))
        if platform.startswith("MOBILE_"):
            by_platform.setdefault("MOBILE", []).append((event, record.duplicate))
    if source_platform is not None:
        by_platform = {k: v for k, v in by_platform.items() if k == source_platform}
    else:
        by_platform.pop("MOBILE", None)
    return [
        _score(items, platform, lookback_period) for platform, items in sorted(by_platform.items())
    ]


def _score(
    records: list[tuple[ConversionEvent, bool]], platform: str, lookback: str
) -> EventQualityScore:
    by_type: dict[str, list[tuple[ConversionEvent, bool]]] = {}
    for record in records:
        by_type.setdefault(record[0].event_name.upper(), []).append(record)
    components: dict[str, dict[str, QualityComponentDetails]] = {}
    for name, present in COMPONENTS.items():
        per_type: dict[str, QualityComponentDetails] = {}
        for kind, items in sorted(by_type.items()):
            coverage = _percent(sum(1 for e, _ in items if present(e)), len(items))
            details = QualityComponentDetails(coverage=coverage)
            if name == "external_event_id":
                details.overlap = _percent(sum(1 for _, dup in items if dup), len(items))
            if name in _REQUIRED_EVERYWHERE and coverage < 100.0:
                details.issues.append(
                    QualityComponentIssue(
                        id="LOW_COVERAGE",
                        name=f"{name} is missing on some events",
                        reason=f"{coverage}% of {kind} events carry it; send it on all of them.",
                    )
                )
            per_type[kind] = details
        components[name] = per_type
    return EventQualityScore(
        overall_status=_overall(records),
        quality_components=components,
        ingestion_source="CONVERSIONS_API",
        source_platform=platform,
        lookback_period=lookback,
    )


def _overall(
    records: list[tuple[ConversionEvent, bool]],
) -> Literal["NEEDS_IMPROVEMENT", "FAIR", "GOOD"]:
    events = [event for event, _ in records]
    ip_ua = all(COMPONENTS["ip_address"](e) and COMPONENTS["user_agent"](e) for e in events)
    checkouts_matched = all(
        _has(e.user_data.em) or _has(e.user_data.hashed_maids)
        for e in events
        if e.event_name == "checkout"
    )
    if not (ip_ua and checkouts_matched):
        return "NEEDS_IMPROVEMENT"
    if all(any(_has(getattr(e.user_data, f)) for e in events) for f in _MEDIUM_AND_LOW):
        return "GOOD"
    return "FAIR"


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0
