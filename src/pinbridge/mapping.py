"""Event names and event ids: which Pinterest events an input becomes, and under which id.

The default map is DESIGN.md's table. Matching ignores case, spaces, ``_`` and ``-``, so
``Order Completed``, ``order_completed`` and ``orderCompleted`` are one name. A configured map
entry replaces the default for that name and may fan one input out to several Pinterest events.
Inputs that are already Pinterest names map to themselves. Anything else becomes ``custom``, or
is dropped when so configured: a raw name that Pinterest refuses is never sent.

Event ids are deterministic so that the browser tag and the server agree: the input's
``messageId`` or ``properties.event_id``; else, for ``checkout``, the ``order_id``; else a
digest of the event's content. When one input fans out to several Pinterest events, each gets
the first Pinterest event keeps the id and each other one gets ``<id>:<pinterest name>``,
so that every event has its own id and the first (a ``checkout`` mapped first) still matches
the browser tag's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Final

import msgspec

from pinbridge.inputs.event import InputEvent
from pinbridge.pinterest.schema import EVENT_NAMES

__all__ = ["DEFAULT_EVENT_MAP", "EventMapper", "derive_event_id", "name_key", "primary_event"]

DEFAULT_EVENT_MAP: Final[Mapping[str, tuple[str, ...]]] = {
    "Order Completed": ("checkout",),
    "Purchase": ("checkout",),
    "Product Added": ("add_to_cart",),
    "Products Searched": ("search",),
    "Product List Viewed": ("view_category",),
    "Product List Filtered": ("view_category",),
    "Category Viewed": ("view_category",),
    "Product Viewed": ("view_content",),
    "Checkout Started": ("initiate_checkout",),
    "Payment Info Entered": ("add_payment_info",),
    "Product Added to Wishlist": ("add_to_wishlist",),
    "Signed Up": ("signup",),
    "Lead Generated": ("lead",),
    "Subscription Started": ("subscribe",),
    "Video Playback Started": ("watch_video",),
    "Application Installed": ("app_install",),
}

_IGNORED = str.maketrans("", "", " _-\t")


def name_key(name: str) -> str:
    """The matching key of an event name: lower case without spaces, ``_`` or ``-``."""
    return name.translate(_IGNORED).lower()


class EventMapper:
    """Maps an input event to Pinterest event names.

    Args:
        overrides: input name → Pinterest name(s); replaces the default for that name.
        unmapped: ``"custom"`` to send unknown names as ``custom``, ``"drop"`` to drop them.
        extra_names: advertiser-defined event names the account accepts as they are.
    """

    __slots__ = ("_extra", "_map", "_unmapped")

    def __init__(
        self,
        overrides: Mapping[str, str | Sequence[str]] | None = None,
        *,
        unmapped: str = "custom",
        extra_names: frozenset[str] = frozenset(),
    ) -> None:
        if unmapped not in ("custom", "drop"):
            raise ValueError("unmapped must be 'custom' or 'drop'")
        self._unmapped = unmapped
        self._extra = extra_names
        table: dict[str, tuple[str, ...]] = {name_key(n): (n,) for n in EVENT_NAMES | extra_names}
        table.update((name_key(k), v) for k, v in DEFAULT_EVENT_MAP.items())
        for name, targets in (overrides or {}).items():
            chosen = (targets,) if isinstance(targets, str) else tuple(targets)
            unknown = [t for t in chosen if t not in EVENT_NAMES and t not in extra_names]
            if unknown:
                raise ValueError(
                    f"mapping for {name!r}: {unknown[0]!r} is not a Pinterest event name"
                )
            table[name_key(name)] = tuple(dict.fromkeys(chosen))
        self._map = table

    def names_for(self, event: InputEvent) -> tuple[str, ...]:
        """The Pinterest event names for this input; empty when it maps to nothing."""
        if event.kind in ("identify", "alias", "invalid"):
            return ()
        if event.kind in ("page", "screen"):
            return ("view_category",) if event.page_category else ("page_visit",)
        if not event.name:
            return ()
        found = self._map.get(name_key(event.name))
        if found is not None:
            return found
        return ("custom",) if self._unmapped == "custom" else ()


def primary_event(names: Sequence[str]) -> str:
    """Of the Pinterest events one input fans out to, the one that keeps the input's id.

    The ``checkout`` when there is one, wherever it is listed (the browser tag sends its
    checkout under that id), else the first.
    """
    return "checkout" if "checkout" in names else names[0]


def derive_event_id(event: InputEvent, names: Sequence[str], order_id: str | None) -> str:
    """The event id when the input has none: the order id when it becomes a checkout, else a
    digest of the event's content.

    The content includes who it is about (ids, raw identifiers, IP, user agent, click): two
    people's otherwise equal events in the same second must not share an id, or the second
    would be dropped as a duplicate of the first.
    """
    if "checkout" in names and order_id:
        return order_id
    content = msgspec.json.encode(
        [
            event.kind,
            event.name,
            event.user_id,
            event.anonymous_id,
            event.event_time,
            event.properties,
            event.custom_data,
            event.identifiers,
            event.client_ip_address,
            event.client_user_agent,
            event.click_id,
        ],
        order="sorted",
    )
    return hashlib.sha256(content).hexdigest()[:32]
