"""Segment-spec calls (``track``, ``page``, ``screen``, ``identify``, ``alias``) to an InputEvent.

Field sources, as in DESIGN.md:

* PII from ``context.traits`` (and the top-level ``traits`` of ``identify``): ``email``,
  ``phone``, ``firstName``, ``lastName``, ``gender``, ``birthday``,
  ``address.{city,state,postalCode,country}``; ``userId`` becomes ``external_id``.
* click id from ``properties.epik``, else the ``epik`` parameter of ``context.page.url``, else
  the cookie ``context.cookies._epik``: the freshest source wins.
* ``client_ip_address`` from ``context.ip`` (validated), ``client_user_agent`` from
  ``context.userAgent``, ``hashed_maids`` from ``context.device.advertisingId``.
* ``action_source`` from ``properties.action_source`` or ``context.action_source``, else
  ``app_ios`` / ``app_android`` from ``context.os.name`` or ``context.device.type``, else ``web``.
"""

from __future__ import annotations

from typing import Any

from pinbridge.inputs.event import InputEvent
from pinbridge.inputs.fields import (
    click_id_from_url,
    get_path,
    language_from_locale,
    parse_bool,
    parse_ip,
    parse_time,
    parse_time_precise,
    text,
)
from pinbridge.problems import Problem

__all__ = ["SEGMENT_TYPES", "correct_clock_skew", "parse_segment"]

SEGMENT_TYPES = frozenset({"track", "page", "screen", "identify", "alias", "group"})

#: trait name -> hashed user_data field.
_TRAITS = (
    ("email", "em"),
    ("phone", "ph"),
    ("firstName", "fn"),
    ("first_name", "fn"),
    ("lastName", "ln"),
    ("last_name", "ln"),
    ("gender", "ge"),
    ("birthday", "db"),
)
_ADDRESS = (
    ("city", "ct"),
    ("state", "st"),
    ("postalCode", "zp"),
    ("postal_code", "zp"),
    ("zip", "zp"),
    ("country", "country"),
)
_OS_SOURCES = {
    "ios": "app_ios",
    "ipados": "app_ios",
    "iphone os": "app_ios",
    "android": "app_android",
}
#: Apple's IDFA when the user has not allowed tracking: not an identifier.
_ZERO_AD_ID = "00000000-0000-0000-0000-000000000000"


def parse_segment(message: dict[str, Any], *, now: int, default_source: str = "web") -> InputEvent:
    """Parse one Segment-spec call. Problems are recorded on the event, never raised."""
    kind = str(message.get("type", "")).strip().lower()
    event = InputEvent(kind=kind)
    if kind not in SEGMENT_TYPES:
        event.errors.append(Problem("type", f"must be one of {', '.join(sorted(SEGMENT_TYPES))}"))
        return event
    if kind == "group":
        # A user joins a group (a company): nothing for Pinterest, and the call's traits are
        # the group's, not the person's, so nothing of it is read.
        return event
    context = message.get("context")
    context = context if isinstance(context, dict) else {}
    properties = message.get("properties")
    event.properties = properties if isinstance(properties, dict) else {}
    event.name = _name(message, kind, event)
    event.event_id = text(message.get("messageId")) or text(event.properties.get("event_id"))
    event.user_id = text(message.get("userId"))
    event.anonymous_id = text(message.get("anonymousId"))
    event.previous_id = text(message.get("previousId"))
    _time(message, event, now)
    _identity(message, context, event)
    _web(context, event)
    _device(context, event)
    _privacy(context, event)
    _action_source(context, event, default_source)
    if kind == "page":
        event.page_category = text(message.get("category")) or text(
            event.properties.get("category")
        )
    return event


def _name(message: dict[str, Any], kind: str, event: InputEvent) -> str | None:
    if kind == "track":
        name = message.get("event")
        if not isinstance(name, str) or not name.strip():
            event.errors.append(Problem("event", "a track call needs an event name"))
            return None
        return name.strip()
    return text(message.get("name"))


def _time(message: dict[str, Any], event: InputEvent, now: int) -> None:
    value = message.get("timestamp")
    if value is None:
        value = message.get("originalTimestamp")
    if value is None:
        event.event_time = now
        return
    try:
        event.event_time = parse_time(value)
    except ValueError as exc:
        event.errors.append(Problem("timestamp", str(exc)))


def _identity(message: dict[str, Any], context: dict[str, Any], event: InputEvent) -> None:
    add = event.add_identifier
    for traits in (context.get("traits"), message.get("traits")):
        if not isinstance(traits, dict):
            continue
        for key, field in _TRAITS:
            value = traits.get(key)
            if value is not None:
                add(field, value)
        address = traits.get("address")
        if isinstance(address, dict):
            for key, field in _ADDRESS:
                value = address.get(key)
                if value is not None:
                    add(field, value)
    if event.user_id:
        event.add_identifier("external_id", event.user_id)


def _web(context: dict[str, Any], event: InputEvent) -> None:
    ip = context.get("ip")
    if isinstance(ip, str) and ip.strip():
        try:
            event.client_ip_address = parse_ip(ip)
        except ValueError as exc:
            event.warnings.append(Problem("context.ip", f"{exc}; left out"))
    event.client_user_agent = text(context.get("userAgent"))
    url = text(get_path(context, "page", "url")) or text(event.properties.get("url"))
    event.event_source_url = url
    event.language = language_from_locale(context.get("locale"))
    event.click_id = (
        text(event.properties.get("epik"))
        or (click_id_from_url(url) if url else None)
        or text(get_path(context, "cookies", "_epik"))
    )


def _device(context: dict[str, Any], event: InputEvent) -> None:
    device = context.get("device")
    os = context.get("os")
    if isinstance(device, dict):
        ad_id = text(device.get("advertisingId"))
        if ad_id and ad_id != _ZERO_AD_ID:
            event.add_identifier("hashed_maids", ad_id)
    app = context.get("app")
    if isinstance(app, dict):
        info = {
            "app_name": text(app.get("name")),
            "app_version": text(app.get("version")),
            "app_package_name": text(app.get("namespace")),
        }
        event.passthrough["app_info"] = {k: v for k, v in info.items() if v}
    if isinstance(device, dict) or isinstance(os, dict):
        info = {
            "brand": text(get_path(context, "device", "manufacturer")),
            "model": text(get_path(context, "device", "model")),
            "os_name": text(get_path(context, "os", "name")),
            "os_version": text(get_path(context, "os", "version")),
            "carrier": text(get_path(context, "network", "carrier")),
            "locale": text(context.get("locale")),
            "timezone": text(context.get("timezone")),
        }
        event.passthrough["device_info"] = {k: v for k, v in info.items() if v}
    network = context.get("network")
    if isinstance(network, dict):
        wifi = parse_bool(network.get("wifi"))
        if wifi is not None:
            event.passthrough["wifi"] = wifi


def _privacy(context: dict[str, Any], event: InputEvent) -> None:
    properties = event.properties
    for source, value in (
        ("properties.opt_out_type", properties.get("opt_out_type")),
        ("context.opt_out_type", context.get("opt_out_type")),
    ):
        if value is None:
            continue
        if isinstance(value, str) and "LDP" in value.upper().replace(" ", "").split(","):
            event.limited_data_processing = True
        elif value != "":
            event.warnings.append(Problem(source, "only LDP is acted on; other values ignored"))
    traits = context.get("traits")
    event.opted_out_of_sale = (
        _opted_out_of_sale(context)
        or _opted_out_of_sale(properties)
        or (isinstance(traits, dict) and _opted_out_of_sale(traits))
    )
    opt_out = context.get("opt_out")
    if opt_out is not None:
        opt_out = parse_bool(opt_out)
    if opt_out is None and parse_bool(get_path(context, "device", "adTrackingEnabled")) is False:
        opt_out = True
    event.opt_out = opt_out


def _opted_out_of_sale(source: dict[str, Any]) -> bool:
    value = source.get("opt_out_of_sale")
    return value is not None and parse_bool(value) is True


def _action_source(context: dict[str, Any], event: InputEvent, default: str) -> None:
    explicit = text(event.properties.get("action_source")) or text(context.get("action_source"))
    if explicit:
        event.action_source = explicit.lower()
        return
    for hint in (get_path(context, "os", "name"), get_path(context, "device", "type")):
        if isinstance(hint, str) and hint.strip().lower() in _OS_SOURCES:
            event.action_source = _OS_SOURCES[hint.strip().lower()]
            return
    event.action_source = default


def correct_clock_skew(message: dict[str, Any], sent_at: object, received_at: float) -> None:
    """Correct a client's clock as Segment does: ``timestamp += receivedAt - sentAt``.

    The time corrected is ``timestamp``, else ``originalTimestamp`` (what RudderStack's SDKs
    send); the result is written to ``timestamp``, as Segment's and RudderStack's servers do.

    A device whose clock is an hour off stamps both ``timestamp`` and ``sentAt`` an hour
    off; the difference between when the server received the call and when the client says
    it sent it is that error. ``sentAt`` is the message's own, else the batch's. Nothing
    changes when either time is missing or unreadable (the transform reports a bad
    ``timestamp`` itself).
    """
    own = message.get("sentAt")
    stamp = message.get("timestamp")
    if stamp is None:  # RudderStack's SDKs send originalTimestamp only
        stamp = message.get("originalTimestamp")
    if stamp is None or (own is None and sent_at is None):
        return
    try:
        skew = received_at - parse_time_precise(own if own is not None else sent_at)
        message["timestamp"] = parse_time_precise(stamp) + skew
    except ValueError:
        return
