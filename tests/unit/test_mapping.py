"""Event-name mapping and event ids."""

from __future__ import annotations

import pytest

from pinbridge.inputs import InputEvent
from pinbridge.mapping import DEFAULT_EVENT_MAP, EventMapper, derive_event_id, name_key
from pinbridge.pinterest.schema import EVENT_NAMES


def _track(name):
    return InputEvent(kind="track", name=name, event_time=1)


class TestEventMapper:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            ("Order Completed", ("checkout",)),
            ("order completed", ("checkout",)),
            ("order_completed", ("checkout",)),
            ("OrderCompleted", ("checkout",)),
            ("  Order  Completed ", ("checkout",)),
            ("Product Added", ("add_to_cart",)),
            ("Products Searched", ("search",)),
            ("Product List Viewed", ("view_category",)),
            ("Product List Filtered", ("view_category",)),
            ("Category Viewed", ("view_category",)),
            ("Product Viewed", ("view_content",)),
            ("Checkout Started", ("initiate_checkout",)),
            ("Payment Info Entered", ("add_payment_info",)),
            ("Product Added to Wishlist", ("add_to_wishlist",)),
            ("Signed Up", ("signup",)),
            ("Lead Generated", ("lead",)),
            ("Subscription Started", ("subscribe",)),
            ("Video Playback Started", ("watch_video",)),
            ("Application Installed", ("app_install",)),
            ("checkout", ("checkout",)),
            ("start_trial", ("start_trial",)),
            ("Something Else", ("custom",)),
        ],
    )
    def test_default_map(self, name, expected):
        """DESIGN.md's table, case- and space-insensitive; unknown names become custom."""
        assert EventMapper().names_for(_track(name)) == expected

    def test_every_default_target_is_a_pinterest_name(self):
        """The default map never produces a name Pinterest refuses."""
        assert {t for targets in DEFAULT_EVENT_MAP.values() for t in targets} <= EVENT_NAMES

    def test_unmapped_dropped(self):
        """With unmapped = drop, unknown names map to nothing."""
        assert EventMapper(unmapped="drop").names_for(_track("Something Else")) == ()

    def test_override_and_fan_out(self):
        """A configured entry replaces the default and may fan out to several events."""
        mapper = EventMapper({"Order Completed": ["checkout", "custom"], "Joined": "signup"})
        assert mapper.names_for(_track("order completed")) == ("checkout", "custom")
        assert mapper.names_for(_track("joined")) == ("signup",)

    def test_override_to_unknown_name_is_refused(self):
        """A map entry naming a non-Pinterest event is a configuration error."""
        with pytest.raises(ValueError, match="purchase"):
            EventMapper({"Order Completed": "purchase"})

    def test_advertiser_defined_names(self):
        """Configured advertiser-defined names are accepted as targets and as inputs."""
        mapper = EventMapper(
            {"Quote": "quote_requested"}, extra_names=frozenset({"quote_requested"})
        )
        assert mapper.names_for(_track("Quote")) == ("quote_requested",)
        assert mapper.names_for(_track("quote_requested")) == ("quote_requested",)

    @pytest.mark.parametrize(
        ("kind", "category", "expected"),
        [
            ("page", None, ("page_visit",)),
            ("page", "Shoes", ("view_category",)),
            ("screen", None, ("page_visit",)),
            ("identify", None, ()),
            ("alias", None, ()),
        ],
    )
    def test_calls_without_event_names(self, kind, category, expected):
        """page is page_visit (view_category with a category); identify and alias send nothing."""
        event = InputEvent(kind=kind, name="Home", page_category=category)
        assert EventMapper().names_for(event) == expected

    def test_name_key(self):
        """Keys ignore case, spaces, underscores and dashes."""
        assert name_key("Order-Completed") == name_key("order_completed") == "ordercompleted"


class TestDeriveEventId:
    def test_checkout_uses_order_id(self):
        """A checkout without an id takes the order id, as the browser tag does."""
        assert derive_event_id(_track("Order Completed"), ("checkout",), "o-7") == "o-7"

    def test_deterministic(self):
        """The same event gives the same id; a different event another."""
        a = InputEvent(kind="track", name="X", event_time=5, properties={"a": 1, "b": 2})
        b = InputEvent(kind="track", name="X", event_time=5, properties={"b": 2, "a": 1})
        c = InputEvent(kind="track", name="X", event_time=6, properties={"a": 1, "b": 2})
        assert derive_event_id(a, ("custom",), None) == derive_event_id(b, ("custom",), None)
        assert derive_event_id(a, ("custom",), None) != derive_event_id(c, ("custom",), None)
        assert len(derive_event_id(a, ("custom",), None)) == 32
