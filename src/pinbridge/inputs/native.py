"""Pinterest-shaped events with raw PII to an InputEvent.

The input looks like one item of Pinterest's ``data`` array, except that ``user_data`` may hold
raw values (``"em": "raw@x.com"``), single values instead of arrays, and ``event_time`` may be
an ISO-8601 string or milliseconds. pinbridge normalizes and hashes them like any other input.
"""

from __future__ import annotations

from typing import Any

from pinbridge.inputs.event import InputEvent
from pinbridge.inputs.fields import parse_bool, parse_ip, parse_time, text
from pinbridge.pinterest.schema import HASHED_FIELDS
from pinbridge.problems import Problem

__all__ = ["parse_native"]

#: Event-level keys copied as they are; the wire model checks their types later.
_PASSTHROUGH = frozenset(
    {
        "partner_name",
        "app_id",
        "app_name",
        "app_version",
        "device_brand",
        "device_carrier",
        "device_model",
        "device_type",
        "os_version",
        "wifi",
        "app_info",
        "device_info",
    }
)
_KNOWN = _PASSTHROUGH | {
    "event_name",
    "action_source",
    "event_time",
    "event_id",
    "user_data",
    "custom_data",
    "event_source_url",
    "opt_out",
    "language",
}
_CLEAR_TEXT = ("click_id", "partner_id")


def parse_native(obj: dict[str, Any], *, now: int, default_source: str = "web") -> InputEvent:
    """Parse one Pinterest-shaped event. Problems are recorded on the event, never raised."""
    event = InputEvent(kind="pinterest")
    name = obj.get("event_name")
    if not isinstance(name, str) or not name.strip():
        event.errors.append(Problem("event_name", "is required and must be a string"))
    else:
        event.name = name.strip()
    event.event_id = text(obj.get("event_id"))
    source = obj.get("action_source")
    event.action_source = source.strip().lower() if isinstance(source, str) else default_source
    _time(obj, event, now)
    _user_data(obj.get("user_data"), event)
    custom = obj.get("custom_data")
    if custom is not None and not isinstance(custom, dict):
        event.errors.append(Problem("custom_data", "must be an object"))
    else:
        event.custom_data = custom
    event.event_source_url = text(obj.get("event_source_url"))
    event.language = text(obj.get("language"))
    if "opt_out" in obj:
        event.opt_out = parse_bool(obj["opt_out"])
        if event.opt_out is None:
            event.errors.append(Problem("opt_out", "must be true or false"))
    if isinstance(custom, dict):
        opt_out_type = custom.get("opt_out_type")
        event.limited_data_processing = isinstance(opt_out_type, str) and "LDP" in (
            opt_out_type.upper().replace(" ", "").split(",")
        )
    event.passthrough = {k: v for k, v in obj.items() if k in _PASSTHROUGH}
    for key in sorted(set(obj) - _KNOWN):
        event.errors.append(Problem(key, "is not a field of a Pinterest event"))
    return event


def _time(obj: dict[str, Any], event: InputEvent, now: int) -> None:
    if obj.get("event_time") is None:
        event.event_time = now
        return
    try:
        event.event_time = parse_time(obj["event_time"])
    except ValueError as exc:
        event.errors.append(Problem("event_time", str(exc)))


def _user_data(user_data: object, event: InputEvent) -> None:
    if user_data is None:
        return
    if not isinstance(user_data, dict):
        event.errors.append(Problem("user_data", "must be an object"))
        return
    for field in HASHED_FIELDS:
        event.add_identifier(field, user_data.get(field))
    ip = user_data.get("client_ip_address")
    if isinstance(ip, str) and ip.strip():
        try:
            event.client_ip_address = parse_ip(ip)
        except ValueError as exc:
            event.errors.append(Problem("user_data.client_ip_address", str(exc)))
    event.client_user_agent = text(user_data.get("client_user_agent"))
    event.click_id = text(user_data.get(_CLEAR_TEXT[0]))
    event.partner_id = text(user_data.get(_CLEAR_TEXT[1]))
    opt_out_type = user_data.get("opt_out_type")
    if isinstance(opt_out_type, str) and "LDP" in opt_out_type.upper():
        # Pinterest's own plugins put it here by mistake; it belongs in custom_data.
        event.limited_data_processing = True
        event.warnings.append(
            Problem(
                "user_data.opt_out_type",
                "moved to custom_data.opt_out_type, where Pinterest reads it",
            )
        )
