"""The wire format of Pinterest's ``POST /v5/ad_accounts/{ad_account_id}/events``.

Everything here follows Pinterest's official OpenAPI description, v5.23.0 (schemas
``ConversionEvents``, ``ConversionEventsUserDataProperties``, ``ConversionEventAppInfo``,
``ConversionEventDeviceInfo``, ``ConversionApiResponse``, ``Error`` and ``DetailedError``).

The Structs serve both directions:

* pinbridge builds them and encodes them: a field that is not declared cannot be emitted, and
  ``omit_defaults`` leaves out what was not set (never ``"em": []`` or ``"value": null``).
* the emulator decodes request bodies with them: ``forbid_unknown_fields`` mirrors
  ``additionalProperties: false`` wherever Pinterest has it (top level, event, ``custom_data``,
  ``contents[]``, ``app_info``, ``device_info``). ``user_data`` is open in Pinterest's schema,
  so unknown keys there are ignored on decoding, as Pinterest ignores them.

Optional non-nullable fields default to ``UNSET`` so that ``null`` is refused where Pinterest
refuses it; nullable ones are ``X | None``.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

__all__ = [
    "ACTION_SOURCES",
    "ADVERTISER_DEFINED_EVENT_NAMES",
    "API_BASE",
    "EVENT_NAMES",
    "HASHED_FIELDS",
    "MAX_EVENTS_PER_REQUEST",
    "MAX_EVENT_AGE_SECONDS",
    "SPEC_EVENT_NAMES",
    "AppInfo",
    "Content",
    "ConversionApiResponse",
    "ConversionEvent",
    "ConversionEvents",
    "CustomData",
    "DetailedError",
    "DeviceInfo",
    "Error",
    "EventResult",
    "UserData",
]

API_BASE: Final = "https://api.pinterest.com/v5"

#: The 15 names listed in the v5.23.0 description of ``event_name``.
SPEC_EVENT_NAMES: Final = frozenset(
    {
        "add_payment_info",
        "add_to_cart",
        "add_to_wishlist",
        "app_install",
        "checkout",
        "custom",
        "initiate_checkout",
        "lead",
        "page_visit",
        "search",
        "signup",
        "subscribe",
        "view_category",
        "view_content",
        "watch_video",
    }
)
#: Standard names from Pinterest's event docs and the advertiser-defined conversion types.
ADVERTISER_DEFINED_EVENT_NAMES: Final = frozenset(
    {
        "app_open",
        "contact",
        "customize_product",
        "find_location",
        "schedule",
        "start_trial",
        "submit_application",
    }
)
#: All 22 standard event names Pinterest accepts.
EVENT_NAMES: Final = SPEC_EVENT_NAMES | ADVERTISER_DEFINED_EVENT_NAMES

ACTION_SOURCES: Final = frozenset({"app_android", "app_ios", "web", "offline"})

#: ``user_data`` fields sent as arrays of SHA-256 hex digests.
HASHED_FIELDS: Final = (
    "em",
    "ph",
    "ge",
    "db",
    "ln",
    "fn",
    "ct",
    "st",
    "zp",
    "country",
    "external_id",
    "hashed_maids",
)

MIN_EVENTS_PER_REQUEST: Final = 1
MAX_EVENTS_PER_REQUEST: Final = 1000
#: Pinterest refuses events older than 7 days.
MAX_EVENT_AGE_SECONDS: Final = 7 * 24 * 3600
#: Rate limit of the endpoint, per ad account ("5,000 calls per minute").
RATE_LIMIT_PER_MINUTE: Final = 5000
#: Rate limit of test requests (``?test=true``): "10 per second per app" (rate-limits page).
TEST_REQUESTS_PER_SECOND: Final = 10

Str100 = Annotated[str, Meta(max_length=100)]
Str200 = Annotated[str, Meta(max_length=200)]
Screen = Annotated[int, Meta(ge=0, le=30720)]
Storage = Annotated[int, Meta(ge=0, le=1048576)]
HashedList = list[str]


class _Wire(Struct, omit_defaults=True, forbid_unknown_fields=True):
    """Base of the closed objects (``additionalProperties: false``)."""


class AppInfo(_Wire):
    """``app_info`` (added in 5.16.0)."""

    app_id: Str200 | UnsetType = UNSET
    app_name: Str200 | UnsetType = UNSET
    app_package_name: Str200 | UnsetType = UNSET
    app_store: Str100 | UnsetType = UNSET
    app_version: Str100 | UnsetType = UNSET
    install_time: Annotated[int, Meta(ge=0)] | UnsetType = UNSET
    user_agent: Annotated[str, Meta(max_length=16384)] | UnsetType = UNSET
    window_height: Screen | UnsetType = UNSET
    window_width: Screen | UnsetType = UNSET


FormFactor = Literal[
    "desktop", "laptop", "cellphone", "tablet", "smartwatch", "tv", "vr", "console", "other"
]
NetworkType = Literal[
    "wifi",
    "cellular_2g",
    "cellular_3g",
    "cellular_4g",
    "cellular_5g",
    "cellular_6g",
    "ethernet",
    "unknown",
]
OsFamily = Literal["ios", "android", "macos", "windows", "linux", "bsd", "other"]


class DeviceInfo(_Wire):
    """``device_info`` (added in 5.16.0)."""

    battery_level: Annotated[int, Meta(ge=0, le=100)] | UnsetType = UNSET
    brand: Str100 | UnsetType = UNSET
    carrier: Str100 | UnsetType = UNSET
    cpu_cores: Annotated[int, Meta(ge=0, le=1152)] | UnsetType = UNSET
    external_storage_free_space: Storage | UnsetType = UNSET
    external_storage_size: Storage | UnsetType = UNSET
    form_factor: FormFactor | UnsetType = UNSET
    kernel_version: Str100 | UnsetType = UNSET
    languages: Annotated[list[str], Meta(max_length=100)] | UnsetType = UNSET
    locale: Annotated[str, Meta(max_length=35)] | UnsetType = UNSET
    model: Str100 | UnsetType = UNSET
    network_type: NetworkType | UnsetType = UNSET
    os_family: OsFamily | UnsetType = UNSET
    os_name: Str100 | UnsetType = UNSET
    os_release_name: Str100 | UnsetType = UNSET
    os_version: Str100 | UnsetType = UNSET
    screen_density: Annotated[int, Meta(ge=0, le=100000)] | UnsetType = UNSET
    screen_height: Screen | UnsetType = UNSET
    screen_width: Screen | UnsetType = UNSET
    storage_free_space: Storage | UnsetType = UNSET
    storage_size: Storage | UnsetType = UNSET
    timezone: Annotated[str, Meta(max_length=40)] | UnsetType = UNSET
    timezone_abbr: Annotated[str, Meta(max_length=5)] | UnsetType = UNSET
    type: Str100 | UnsetType = UNSET


class UserData(Struct, omit_defaults=True):
    """``user_data``: hashed identifiers as arrays, IP / user agent / click id in clear.

    Pinterest's schema leaves this object open, so unknown keys are ignored on decoding; they
    cannot be emitted because they are not declared. At least one of ``em``, ``hashed_maids``,
    or both ``client_ip_address`` and ``client_user_agent`` must be present (``anyOf``).
    """

    em: HashedList | UnsetType = UNSET
    hashed_maids: HashedList | UnsetType = UNSET
    client_ip_address: str | UnsetType = UNSET
    client_user_agent: str | UnsetType = UNSET
    ph: HashedList | UnsetType = UNSET
    ge: HashedList | UnsetType = UNSET
    db: HashedList | UnsetType = UNSET
    ln: HashedList | UnsetType = UNSET
    fn: HashedList | UnsetType = UNSET
    ct: HashedList | UnsetType = UNSET
    st: HashedList | UnsetType = UNSET
    zp: HashedList | UnsetType = UNSET
    country: HashedList | UnsetType = UNSET
    external_id: HashedList | UnsetType = UNSET
    click_id: str | UnsetType | None = UNSET
    partner_id: str | UnsetType | None = UNSET

    def satisfies_identifier_rule(self) -> bool:
        """Whether the schema's ``anyOf`` holds (the keys exist; arrays may still be empty)."""
        return (
            self.em is not UNSET
            or self.hashed_maids is not UNSET
            or (self.client_ip_address is not UNSET and self.client_user_agent is not UNSET)
        )


class Content(_Wire):
    """One item of ``custom_data.contents``: prices are strings, quantities integers."""

    id: str | UnsetType = UNSET
    item_price: str | UnsetType = UNSET
    quantity: int | UnsetType = UNSET
    item_name: str | UnsetType = UNSET
    item_category: str | UnsetType = UNSET
    item_brand: str | UnsetType = UNSET


class CustomData(_Wire):
    """``custom_data``: ``value`` and ``predicted_ltv`` are decimal strings, never numbers."""

    currency: str | None = None
    value: str | None = None
    content_ids: list[str] | UnsetType = UNSET
    content_name: str | None = None
    content_category: str | None = None
    content_brand: str | None = None
    contents: list[Content] | UnsetType = UNSET
    num_items: int | UnsetType = UNSET
    order_id: str | None = None
    search_string: str | None = None
    opt_out_type: str | None = None
    predicted_ltv: str | None = None
    np: str | None = None
    external_measurement_id: str | None = None
    external_measurement_vendor_id: int | None = None


class ConversionEvent(_Wire):
    """One conversion event. Required: name, source, time (seconds), id, user data."""

    event_name: str
    action_source: str
    event_time: int
    event_id: str
    user_data: UserData
    custom_data: CustomData | UnsetType = UNSET
    event_source_url: str | None = None
    opt_out: bool | UnsetType = UNSET
    partner_name: str | None = None
    app_id: str | None = None
    app_name: str | None = None
    app_version: str | None = None
    device_brand: str | None = None
    device_carrier: str | None = None
    device_model: str | None = None
    device_type: str | None = None
    os_version: str | None = None
    wifi: bool | UnsetType = UNSET
    language: str | None = None
    app_info: AppInfo | UnsetType = UNSET
    device_info: DeviceInfo | UnsetType = UNSET


class ConversionEvents(_Wire):
    """The request body: ``{"data": [...]}`` with 1 to 1000 events."""

    data: Annotated[
        list[ConversionEvent],
        Meta(min_length=MIN_EVENTS_PER_REQUEST, max_length=MAX_EVENTS_PER_REQUEST),
    ]


class EventResult(Struct):
    """Per-event status in a response, in request order."""

    status: Literal["processed", "failed"]
    error_message: str | None = ""
    warning_message: str | None = ""


class ConversionApiResponse(Struct):
    """The 200 body, and the ``details`` of a 422."""

    num_events_received: int
    num_events_processed: int
    events: list[EventResult]


class Error(Struct):
    """Pinterest's error body (400, 401, 403, 429, 503, default)."""

    code: int
    message: str


class DetailedError(Struct):
    """The 422 body: some or all events failed; ``details`` says which."""

    code: int
    message: str
    details: ConversionApiResponse


def encode_events(events: list[ConversionEvent]) -> bytes:
    """Encode a request body for a list of events."""
    return msgspec.json.encode(ConversionEvents(data=events))
