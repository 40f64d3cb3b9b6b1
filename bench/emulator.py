"""How many events per second the Pinterest emulator validates on one core.

Run: ``.venv/bin/python bench/emulator.py [--seconds S]``. Bounded to well under a minute.

Each figure is measured on the same 1,000-event body (realistic events: hashed email and
phone, IP, user agent, click id, custom_data with contents), beside two baselines measured in
the same run: bare ``msgspec.json.decode`` of the bytes (no schema) and ``json.loads``. Ratios
are events/s of the row divided by events/s of the bare msgspec decode.

Rows:
* ``emulator validate``: ``BodyValidator.decode`` + ``check`` (schema + per-event checks);
* ``emulator record``: the above plus dedup, recording and stats (``EmulatorState.record``);
* ``emulator ASGI``: a full ``POST`` through ``httpx2.ASGITransport`` (auth, rate limit,
  response encoding, httpx2's own overhead).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import time
from collections.abc import Callable

import httpx2
import msgspec

from pinbridge.pinterest.emulator import EmulatorConfig, create_emulator_app
from pinbridge.pinterest.emulator.state import EmulatorState
from pinbridge.pinterest.emulator.validation import BodyValidator

BATCH = 1000


def _hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def make_body(now: int, batch: int = BATCH, offset: int = 0) -> bytes:
    """A realistic body of ``batch`` distinct checkout events."""
    events = []
    for i in range(offset, offset + batch):
        events.append(
            {
                "event_name": "checkout",
                "action_source": "web",
                "event_time": now - 30,
                "event_id": f"order-{i}",
                "event_source_url": "https://shop.example/checkout/done",
                "user_data": {
                    "em": [_hex(f"user{i}@example.com")],
                    "ph": [_hex(f"1650555{i:04d}")],
                    "client_ip_address": "203.0.113.7",
                    "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
                    "click_id": "dj0yJnU9abcdef",
                },
                "custom_data": {
                    "currency": "USD",
                    "value": "72.39",
                    "order_id": f"order-{i}",
                    "content_ids": ["sku-1", "sku-2"],
                    "contents": [
                        {"id": "sku-1", "item_price": "30.00", "quantity": 1},
                        {"id": "sku-2", "item_price": "42.39", "quantity": 1},
                    ],
                    "num_items": 2,
                },
            }
        )
    return json.dumps({"data": events}).encode()


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``fn`` over about ``seconds`` (after one warm-up call)."""
    fn()
    calls = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        fn()
        calls += 1
    return calls / elapsed


async def asgi_rate(now: int, seconds: float) -> float:
    """Requests per second of full POSTs through ASGITransport (distinct ids each time)."""
    config = EmulatorConfig(rate_limit_per_minute=0, max_recorded_events=200_000)
    app = create_emulator_app(config, clock=lambda: float(now))
    bodies = [make_body(now, offset=k * BATCH) for k in range(8)]
    headers = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://emulator"
    ) as client:
        calls = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            response = await client.post(
                "/v5/ad_accounts/1/events", content=bodies[calls % 8], headers=headers
            )
            assert response.status_code == 200, response.text
            calls += 1
    return calls / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    seconds = parser.parse_args().seconds
    now = int(time.time())
    body = make_body(now)
    config = EmulatorConfig()
    validator = BodyValidator(config)
    state = EmulatorState(EmulatorConfig(max_recorded_events=100_000), clock=lambda: float(now))

    def validate() -> None:
        events, dropped = validator.decode(body)
        checks = validator.check(events.data, now, dropped)
        assert not any(c.reasons for c in checks)

    def record() -> None:
        events, dropped = validator.decode(body)
        state.record("1", events.data, validator.check(events.data, now, dropped), test=False)

    rows = {
        "json.loads (baseline)": rate(lambda: json.loads(body), seconds),
        "msgspec.json.decode, untyped (baseline)": rate(lambda: msgspec.json.decode(body), seconds),
        "emulator validate (decode + checks)": rate(validate, seconds),
        "emulator record (+ dedup, store, stats)": rate(record, seconds),
        "emulator ASGI (full POST, ASGITransport)": asyncio.run(asgi_rate(now, seconds)),
    }
    reference = rows["msgspec.json.decode, untyped (baseline)"] * BATCH
    print(f"body: {BATCH} events, {len(body) / 1024:.0f} KiB; {seconds:.1f} s per row, one core")
    print(f"{'measurement':45} {'events/s':>12} {'vs msgspec':>11}")
    for name, per_second in rows.items():
        events = per_second * BATCH
        print(f"{name:45} {events:12,.0f} {events / reference:10.2f}x")


if __name__ == "__main__":
    main()
