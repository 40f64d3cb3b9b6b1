"""The emulator's schema-level verdict agrees with Pinterest's official description.

Valid bodies are generated from the spec's own ``ConversionEvents`` schema (with a seeded
random generator), then mutated: required keys dropped, wrong types, extra keys at every
level, nulls, out-of-range integers, bad enums, 0 or 1001 events, ``anyOf`` violations. For
each body, "the emulator answers 400" must equal "``OAS30Validator`` rejects it".
"""

from __future__ import annotations

import copy
import functools
import random
from typing import Any

import httpx2
import pytest

from pinbridge.pinterest.emulator import EmulatorConfig, EmulatorTransport, create_emulator_app
from tests.integration.conftest import NOW
from tests.spec import conversion_events_validator, load_openapi

pytestmark = pytest.mark.anyio

SEED = 20260101
BODIES = 2400
HEX = "0123456789abcdef"


#: Edits on the first event that reach the rarer constraints: (path, value).
TARGETED: list[tuple[tuple[str, ...], Any]] = [
    (("device_info", "network_type"), "5g"),
    (("device_info", "network_type"), "wifi"),
    (("device_info", "form_factor"), "phone"),
    (("device_info", "os_family"), "Linux"),
    (("device_info", "battery_level"), 101),
    (("device_info", "battery_level"), 100),
    (("device_info", "cpu_cores"), -1),
    (("device_info", "screen_density"), 100001),
    (("device_info", "storage_size"), 1048577),
    (("device_info", "timezone_abbr"), "ABCDEF"),
    (("device_info", "languages"), ["en"] * 101),
    (("device_info", "languages"), ["en"] * 100),
    (("app_info", "window_width"), 40000),
    (("app_info", "window_width"), 30720),
    (("app_info", "install_time"), -1),
    (("app_info", "app_id"), "x" * 201),
    (("app_info", "app_id"), "x" * 200),
    (("app_info",), None),
    (("app_info", "extra"), 1),
    (("device_info", "extra"), "x"),
    (("device_info",), None),
    (("custom_data",), None),
    (("custom_data", "value"), 72.39),
    (("custom_data", "value"), None),
    (("custom_data", "num_items"), 2.0),
    (("custom_data", "contents"), [{"id": "1", "item_price": "1.5", "quantity": "1"}]),
    (("custom_data", "contents"), [{"id": "1", "item_brand_id": "b"}]),
    (("custom_data", "contents"), [None]),
    (("custom_data", "category_name"), "x"),
    (("event_time",), 1700000000.5),
    (("event_time",), True),
    (("event_time",), "1700000000"),
    (("opt_out",), "false"),
    (("wifi",), None),
    (("language",), None),
    (("advertiser_tracking_enabled",), True),
    (("user_data",), {"ph": ["a" * 64]}),
    (("user_data",), {"client_ip_address": "1.2.3.4"}),
    (("user_data",), {"client_ip_address": "1.2.3.4", "client_user_agent": "UA"}),
    (("user_data",), {"em": "a" * 64}),
    (("user_data",), {"em": [], "opt_out_type": "LDP"}),
    (("user_data",), {"hashed_maids": [None]}),
    (("user_data",), {"em": ["a"], "click_id": None}),
    (("user_data",), {"em": ["a"], "partner_id": 5}),
    (("user_data",), None),
    (("user_data",), []),
]


class BodyGenerator:
    """Builds instances of the spec's schemas and mutates them."""

    def __init__(self, spec: dict[str, Any], rng: random.Random) -> None:
        self.spec = spec
        self.rng = rng

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            extra = {k: v for k, v in schema.items() if k != "$ref"}
            target = self.spec
            for part in schema["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            schema = {**target, **extra}
        return schema

    def valid(self, schema: dict[str, Any], depth: int = 0) -> Any:
        """A random instance of ``schema``."""
        schema = self.resolve(schema)
        rng = self.rng
        if "anyOf" in schema:
            branch = self.resolve(rng.choice(schema["anyOf"]))
            return self.valid(branch, depth)
        if schema.get("nullable") and rng.random() < 0.1:
            return None
        kind = schema.get("type")
        if "enum" in schema:
            return rng.choice(schema["enum"])
        if kind == "object":
            required = set(schema.get("required", ()))
            out = {}
            for name, sub in schema.get("properties", {}).items():
                if name in required or rng.random() < 0.3:
                    out[name] = self.valid(sub, depth + 1)
            return out
        if kind == "array":
            low = schema.get("minItems", 0)
            high = min(schema.get("maxItems", 3), 3)
            return [self.valid(schema["items"], depth + 1) for _ in range(rng.randint(low, high))]
        if kind == "string":
            size = min(schema.get("maxLength", 64), rng.choice([0, 1, 5, 64]))
            return "".join(rng.choice(HEX) for _ in range(size))
        if kind == "integer":
            low = schema.get("minimum", 0)
            high = schema.get("maximum", NOW)
            return rng.choice([low, high, rng.randint(low, high)])
        if kind == "boolean":
            return rng.random() < 0.5
        return "x"

    def wrong_value(self, current: Any) -> Any:
        """A value of another JSON type, an edge value, or an out-of-range one."""
        options: list[Any] = [
            None, True, 0, -1, 1.5, 2.0, 10**20, "", "1", "5g", [], ["a"], [1], {}, {"k": 1},
            30721, 1048577, 101, 100001, 1153, -5, "x" * 201, "x" * 36,
        ]  # fmt: skip
        if isinstance(current, int) and not isinstance(current, bool):
            options += [current + 1, current - 1, float(current), str(current)]
        if isinstance(current, str):
            options += [current + "x" * 100, current.upper(), [current]]
        return self.rng.choice(options)

    def mutate(self, body: Any) -> Any:
        """``body`` with one to three random changes."""
        body = copy.deepcopy(body)
        for _ in range(self.rng.choice([1, 1, 1, 2, 3])):
            body = self._mutate_once(body)
        return body

    def _mutate_once(self, body: Any) -> Any:
        rng = self.rng
        roll = rng.random()
        events = body.get("data") if isinstance(body, dict) else None
        if roll < 0.2 and isinstance(events, list) and events and isinstance(events[0], dict):
            path, value = rng.choice(TARGETED)
            holder = events[0]
            for key in path[:-1]:
                holder = holder.setdefault(key, {}) if isinstance(holder, dict) else {}
            if isinstance(holder, dict):
                holder[path[-1]] = copy.deepcopy(value)
            return body
        if roll < 0.03:
            return rng.choice([{}, {"data": []}, [], None, "x", {"data": {}}, {"data": None}])
        if roll < 0.01 and isinstance(body, dict) and isinstance(body.get("data"), list):
            events = body["data"] or [{}]
            body["data"] = [events[0]] * rng.choice([1000, 1001])
            return body
        containers = list(_containers(body))
        if not containers:
            return body
        holder = rng.choice(containers)
        if isinstance(holder, dict):
            action = rng.random()
            if action < 0.25 or not holder:
                holder[rng.choice(["extra", "test", "category_name", "em", "opt_out_type",
                                   "hashed_maids", "client_user_agent", "value"])] = (
                    self.wrong_value("x") if rng.random() < 0.7 else ["a" * 64]
                )  # fmt: skip
            elif action < 0.5:
                del holder[rng.choice(list(holder))]
            else:
                key = rng.choice(list(holder))
                holder[key] = self.wrong_value(holder[key])
        elif holder:
            index = rng.randrange(len(holder))
            if rng.random() < 0.3:
                del holder[index]
            else:
                holder[index] = self.wrong_value(holder[index])
        else:
            holder.append(self.wrong_value(None))
        return body


def _containers(value: Any) -> Any:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _containers(item)
    elif isinstance(value, list):
        yield value
        for item in value:
            yield from _containers(item)


@functools.cache
def generate() -> list[Any]:
    """The seeded corpus: a third valid bodies, two thirds mutated ones."""
    spec = load_openapi()
    generator = BodyGenerator(spec, random.Random(SEED))
    schema = spec["components"]["schemas"]["ConversionEvents"]
    bodies = []
    for index in range(BODIES):
        body = generator.valid(schema)
        bodies.append(body if index % 3 == 0 else generator.mutate(body))
    event = generator.valid(schema)["data"][0]
    bodies += [{"data": [event] * 1000}, {"data": [event] * 1001}, {"data": [event], "test": True}]
    return bodies


async def test_schema_verdicts_match_the_official_description() -> None:
    """For every generated body, the emulator answers 400 exactly when OAS30Validator rejects."""
    validator = conversion_events_validator()
    app = create_emulator_app(EmulatorConfig(rate_limit_per_minute=0), clock=lambda: NOW)
    bodies = generate()
    # Bodies are built once and shared; nothing below mutates them.
    mismatches = []
    verdicts = {True: 0, False: 0}
    async with httpx2.AsyncClient(
        transport=EmulatorTransport(app=app), base_url="http://emulator"
    ) as client:
        for body in bodies:
            response = await client.post(
                "/v5/ad_accounts/1/events", json=body, headers={"Authorization": "Bearer t"}
            )
            emulator_rejects = response.status_code == 400
            spec_rejects = not validator.is_valid(body)
            verdicts[spec_rejects] += 1
            if emulator_rejects != spec_rejects:
                mismatches.append((body, response.status_code, response.text[:200]))
    assert not mismatches, f"{len(mismatches)} disagreements, first: {mismatches[0]!r:.2000}"
    assert verdicts[True] >= 600 and verdicts[False] >= 600, verdicts


def test_corpus_covers_every_closed_level() -> None:
    """The mutated corpus puts unknown keys into each closed object at least once."""
    levels = {"top": 0, "event": 0, "custom_data": 0, "contents": 0, "app_info": 0,
              "device_info": 0}  # fmt: skip
    spec = load_openapi()
    schemas = spec["components"]["schemas"]
    event_keys = set(schemas["ConversionEvents"]["properties"]["data"]["items"]["properties"])
    custom = schemas["ConversionEvents"]["properties"]["data"]["items"]["properties"]["custom_data"]
    content_keys = set(custom["properties"]["contents"]["items"]["properties"])
    app_keys = set(schemas["ConversionEventAppInfo"]["properties"])
    device_keys = set(schemas["ConversionEventDeviceInfo"]["properties"])
    for body in generate():
        if not isinstance(body, dict):
            continue
        levels["top"] += bool(set(body) - {"data"})
        events = body.get("data")
        for ev in events if isinstance(events, list) else []:
            if not isinstance(ev, dict):
                continue
            levels["event"] += bool(set(ev) - event_keys)
            cd = ev.get("custom_data")
            if isinstance(cd, dict):
                levels["custom_data"] += bool(set(cd) - set(custom["properties"]))
                contents = cd.get("contents")
                for item in contents if isinstance(contents, list) else []:
                    if isinstance(item, dict):
                        levels["contents"] += bool(set(item) - content_keys)
            if isinstance(ev.get("app_info"), dict):
                levels["app_info"] += bool(set(ev["app_info"]) - app_keys)
            if isinstance(ev.get("device_info"), dict):
                levels["device_info"] += bool(set(ev["device_info"]) - device_keys)
    assert all(count > 0 for count in levels.values()), levels
