"""Input formats: each parses one incoming event into an :class:`InputEvent`."""

from __future__ import annotations

from typing import Any

from pinbridge.inputs.event import InputEvent
from pinbridge.inputs.native import parse_native
from pinbridge.inputs.segment import SEGMENT_TYPES, parse_segment
from pinbridge.problems import Problem

__all__ = ["InputEvent", "parse_input", "parse_native", "parse_segment"]


def parse_input(obj: object, *, now: int, default_source: str = "web") -> InputEvent:
    """Parse a Segment-spec call (it has ``type``) or a Pinterest-shaped event (``event_name``)."""
    if not isinstance(obj, dict):
        event = InputEvent(kind="invalid")
        event.errors.append(Problem("", "an event must be a JSON object"))
        return event
    message: dict[str, Any] = obj
    if "type" in message:
        return parse_segment(message, now=now, default_source=default_source)
    if "event_name" in message:
        return parse_native(message, now=now, default_source=default_source)
    event = InputEvent(kind="invalid")
    event.errors.append(
        Problem(
            "type",
            "an event needs a Segment 'type' (one of "
            + ", ".join(sorted(SEGMENT_TYPES))
            + ") or a Pinterest 'event_name'",
        )
    )
    return event
