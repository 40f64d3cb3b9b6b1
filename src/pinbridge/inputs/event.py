"""The internal event: what every input format is parsed into.

Segment-style calls, Pinterest-shaped events with raw PII and offline rows all become one
:class:`InputEvent`. It still holds raw identifiers (hashing happens in the transform), and the
problems found while parsing, so that one bad field never hides the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pinbridge.problems import Problem

__all__ = ["InputEvent"]


@dataclass(slots=True)
class InputEvent:
    """One event as pinbridge understands it, before mapping and hashing.

    Attributes:
        kind: ``track``, ``page``, ``screen``, ``identify``, ``alias`` or ``pinterest`` (an
            event already shaped like Pinterest's).
        name: the input event name (``Order Completed``), the page's name, or for ``pinterest``
            the Pinterest event name as given.
        event_id: taken from the input (``messageId``, ``properties.event_id``), else ``None``
            and derived later.
        event_time: Unix seconds, or ``None`` when the input had no usable time.
        identifiers: raw values per hashed ``user_data`` field (``em``, ``ph``, ...).
        properties: the input's properties (Segment e-commerce spec) for ``custom_data``.
        custom_data: for ``pinterest`` inputs, the given ``custom_data`` object.
        passthrough: event-level Pinterest fields given as they are (``app_info``, ...).
    """

    kind: str
    name: str | None = None
    event_id: str | None = None
    event_time: int | None = None
    action_source: str | None = None
    identifiers: dict[str, list[object]] = field(default_factory=dict)
    client_ip_address: str | None = None
    client_user_agent: str | None = None
    click_id: str | None = None
    partner_id: str | None = None
    event_source_url: str | None = None
    language: str | None = None
    opt_out: bool | None = None
    limited_data_processing: bool = False
    opted_out_of_sale: bool = False
    page_category: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    previous_id: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    custom_data: dict[str, Any] | None = None
    passthrough: dict[str, Any] = field(default_factory=dict)
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    #: Whether an identifier is not a string (a number, a boolean): ``True == 1`` as a cache
    #: key, so such people are not looked up in caches keyed on raw values.
    non_text_identifiers: bool = False

    def add_identifier(self, name: str, value: object) -> None:
        """Remember a raw identifier; lists add each item, empty values are ignored."""
        if type(value) is str:
            if value:
                self.identifiers.setdefault(name, []).append(value)
            return
        if value is None or value == "":
            return
        self.non_text_identifiers = True
        values = self.identifiers.setdefault(name, [])
        if isinstance(value, list | tuple):
            values.extend(v for v in value if v is not None and v != "")
        else:
            values.append(value)
