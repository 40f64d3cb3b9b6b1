"""Oracle: Pinterest's official description accepts every event the transform lets through.

A large, seeded sample of Segment calls and Pinterest-shaped inputs, varied across every field
the transform reads (PII in many spellings, products, app and web contexts, LDP, bad values),
is transformed; every ``ok`` event must validate against ``ConversionEvents`` in
``openapi.json`` (read from outside the repository, see ``tests/spec.py``).
"""

from __future__ import annotations

import random

import msgspec

from pinbridge.transform import Transformer, TransformOptions
from tests.spec import conversion_events_validator

NOW = 1_795_345_200
SAMPLE = 4000

EMAILS = [" Jane.Doe@Example.COM ", "a@b.co", "Hashed email", "x" * 64, "nope", ""]
PHONES = [
    "+1 (650) 555-1234",
    "020 7946 0958",
    "+33 6 12 34 56 78",
    "555",
    "Hashed phone",
    6505551234,
]
NAMES = ["Jane", "Zoë", "O'Neil", "李", "Müller", "123", "  ", None]
GENDERS = ["Female", "m", "non-binary", "x", "unknown", 3]
BIRTHDAYS = ["1990-04-01", "19900401", "04/01/1990", "1990-02-30", "01.04.1990", "soon"]
CITIES = ["San Francisco", "St. Louis", "São Paulo", "!!!", 94103]
STATES = ["California", "CA", "ny", "Ontario", "Atlantis"]
ZIPS = ["94103-1234", "SW1A 2AA", "K1A 0A6", "75001", "---"]
COUNTRIES = ["United States", "USA", "de", "United Kingdom", "Narnia"]
EVENTS = [
    "Order Completed",
    "Product Added",
    "Products Searched",
    "Signed Up",
    "Mystery Event",
    "checkout",
    "Lead Generated",
    "Product Viewed",
]


def pick(rng: random.Random, values: list[object]) -> object:
    return rng.choice(values)


def mostly(rng: random.Random, good: list[object], bad: list[object]) -> object:
    """A good value nine times in ten, else a bad one."""
    return rng.choice(good if rng.random() < 0.9 else bad)


def segment(rng: random.Random, n: int) -> dict[str, object]:
    traits = {
        k: pick(rng, v)
        for k, v in (
            ("email", EMAILS),
            ("phone", PHONES),
            ("firstName", NAMES),
            ("lastName", NAMES),
            ("gender", GENDERS),
            ("birthday", BIRTHDAYS),
        )
        if rng.random() < 0.7
    }
    traits["address"] = {
        "city": pick(rng, CITIES),
        "state": pick(rng, STATES),
        "postalCode": pick(rng, ZIPS),
        "country": pick(rng, COUNTRIES),
    }
    context: dict[str, object] = {"traits": traits, "locale": pick(rng, ["en-US", "fr_FR", "xx"])}
    if rng.random() < 0.8:
        context["ip"] = pick(rng, ["203.0.113.9", "2001:db8::1", "bad-ip"])
        context["userAgent"] = "Mozilla/5.0"
        context["page"] = {"url": f"https://shop.example/p?epik=E{n}"}
    if rng.random() < 0.2:
        context["os"] = {"name": pick(rng, ["iOS", "Android"]), "version": "17"}
        context["device"] = {
            "advertisingId": f"6D92078A-8246-4BA4-AE5B-{n:012d}",
            "manufacturer": "X" * rng.choice([5, 150]),
            "model": "M",
        }
        context["app"] = {"name": "Shop", "version": "1.0", "namespace": "com.shop"}
    if rng.random() < 0.1:
        context["opt_out_type"] = "LDP"
    products = [
        {
            "product_id": f"p{rng.randint(1, 50)}",
            "price": mostly(rng, [9.99, "5", 10], ["x"]),
            "quantity": mostly(rng, [1, 2, "3"], [1.5]),
            "name": "Mug",
            "category": "Home",
            "brand": "Acme",
        }
        for _ in range(rng.randint(0, 3))
    ]
    properties = {
        "order_id": f"o{n}",
        "revenue": mostly(rng, [19.99, "20.00", 0], ["lots"]),
        "currency": mostly(rng, ["usd", "EUR"], ["dollars"]),
        "products": products,
        "query": "red shoes",
        "note": "jane@example.com",
    }
    return {
        "type": pick(rng, ["track", "track", "track", "page", "screen", "identify"]),
        "event": pick(rng, EVENTS),
        "messageId": f"m{n}" if rng.random() < 0.7 else None,
        "timestamp": NOW - mostly(rng, [0, 3600, 6 * 86400], [8 * 86400]),
        "userId": f"U{n}" if rng.random() < 0.5 else None,
        "context": context,
        "properties": properties,
    }


def native(rng: random.Random, n: int) -> dict[str, object]:
    event: dict[str, object] = {
        "event_name": pick(rng, ["checkout", "lead", "purchase", "page_visit", "app_open"]),
        "action_source": pick(rng, ["web", "offline", "app_ios", "email"]),
        "event_time": NOW - rng.randint(0, 6 * 86400),
        "event_id": f"n{n}",
        "user_data": {
            "em": pick(rng, EMAILS),
            "ph": [pick(rng, PHONES)],
            "client_ip_address": "198.51.100.7",
            "client_user_agent": "UA",
        },
        "custom_data": {
            "value": pick(rng, [1.5, "2", None]),
            "currency": "usd",
            "contents": [{"id": "1", "item_price": 3, "quantity": 1}],
        },
    }
    if rng.random() < 0.3:
        event["device_info"] = {"os_family": pick(rng, ["ios", "plan9"]), "screen_width": 390}
    if rng.random() < 0.3:
        event["app_info"] = {"app_name": "Shop", "window_width": pick(rng, [390, 40000])}
    return event


def test_every_ok_event_is_accepted_by_the_official_schema():
    """Each event the transform marks ok validates against ConversionEvents."""
    validator = conversion_events_validator()
    rng = random.Random(20261122)
    transformer = Transformer(
        TransformOptions(checkout_default_value="1", checkout_default_currency="USD")
    )
    accepted: list[dict[str, object]] = []
    refused = 0
    for n in range(SAMPLE):
        message = segment(rng, n) if rng.random() < 0.75 else native(rng, n)
        result = transformer(message, now=NOW)
        if result.ok:
            accepted.extend(msgspec.to_builtins(result.events))
        else:
            refused += 1
    # The sample must exercise both sides, or the oracle proves nothing.
    assert len(accepted) > SAMPLE // 3 and refused > SAMPLE // 20
    for start in range(0, len(accepted), 1000):
        body = {"data": accepted[start : start + 1000]}
        errors = list(validator.iter_errors(body))
        assert errors == [], errors[0].message if errors else ""
