"""Transform throughput on the reference mix, beside raw SHA-256 measured in the same run.

Reference mix: ``Order Completed`` with email, phone, first and last name, gender, birthday,
city, state, ZIP, country, user id, IP, user agent and 3 products; 100,000 events over 20,000
distinct people. Measured: the loop behind ``pinbridge transform`` (JSON line in → decode →
transform → encode → JSON line out), on one core, in this process.

Baselines measured in the same run: raw SHA-256 calls, and a floor: decoding each line,
encoding an object back, and the phone library reading each distinct number once, which is the
least any transform of this mix must do with the libraries DESIGN.md prescribes.

Usage: python bench/transform.py [--events N] [--people N]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import random
import time

import msgspec
import phonenumbers

from pinbridge.cli import run_transform
from pinbridge.transform import Transformer

NOW = 1_795_345_200
FIRST = ["Jane", "John", "Ana", "Zoë", "Li", "Mohammed", "Olga", "Pierre", "Siobhán", "Kenji"]
LAST = ["Doe", "Smith", "García", "Müller", "Wang", "O'Neil", "Nguyen", "Kowalski"]
CITIES = [
    ("San Francisco", "California", "941"),
    ("New York", "NY", "100"),
    ("St. Louis", "MO", "631"),
]


def person(rng: random.Random, index: int) -> dict[str, object]:
    city, state, zip3 = rng.choice(CITIES)
    return {
        "userId": f"user-{index}",
        "traits": {
            "email": f" Person.{index}@Example.com ",
            "phone": f"({rng.randint(201, 989)}) 555-{index % 10000:04d}",
            "firstName": rng.choice(FIRST),
            "lastName": rng.choice(LAST),
            "gender": rng.choice(["Female", "male", "F", "M", "non-binary"]),
            "birthday": f"19{rng.randint(50, 99)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
            "address": {
                "city": city,
                "state": state,
                "postalCode": f"{zip3}{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
                "country": "United States",
            },
        },
        "ip": f"203.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
    }


def make_lines(count: int, people: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    crowd = [person(rng, i) for i in range(people)]
    lines = []
    for n in range(count):
        who = crowd[rng.randrange(people)]
        message = {
            "type": "track",
            "event": "Order Completed",
            "messageId": f"msg-{n}",
            "timestamp": NOW - rng.randint(0, 86400),
            "userId": who["userId"],
            "context": {
                "ip": who["ip"],
                "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15",
                "traits": who["traits"],
                "page": {"url": f"https://shop.example/checkout/thanks?epik=dj0y{n % 997}"},
            },
            "properties": {
                "order_id": f"o-{n}",
                "revenue": round(rng.uniform(5, 500), 2),
                "currency": "USD",
                "products": [
                    {
                        "product_id": f"sku-{rng.randint(1, 5000)}",
                        "price": 19.99,
                        "quantity": 1,
                        "name": "Mug",
                        "category": "Kitchen",
                        "brand": "Acme",
                    }
                    for _ in range(3)
                ],
            },
        }
        lines.append(json.dumps(message).encode())
    return lines


def sha256_rate(samples: list[bytes], seconds: float = 1.0) -> float:
    """Raw hashlib.sha256(...).hexdigest() calls per second on short identifiers."""
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for sample in samples:
            hashlib.sha256(sample).hexdigest()
        done += len(samples)
    return done / (time.perf_counter() - start)


def floor_rate(lines: list[bytes], phones: list[str]) -> float:
    """Events/s of the least any transform of this mix must do: decode each line, encode one
    object back, and read each distinct phone number once with the phone library."""
    decode, encode = msgspec.json.Decoder().decode, msgspec.json.Encoder().encode
    start = time.perf_counter()
    for line in lines:
        encode(decode(line))
    for phone in phones:
        number = phonenumbers.parse(phone, "US")
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return len(lines) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--people", type=int, default=20_000)
    args = parser.parse_args()
    lines = make_lines(args.events, args.people)
    stdin = io.BytesIO(b"\n".join(lines) + b"\n")
    hashes = sha256_rate([f"person.{i}@example.com".encode() for i in range(1000)])
    phones = sorted({json.loads(line)["context"]["traits"]["phone"] for line in lines})
    floor = floor_rate(lines, phones)
    transformer = Transformer()
    out = io.BytesIO()
    start = time.perf_counter()
    run_transform(transformer, stdin, out, now=NOW, source="web")
    elapsed = time.perf_counter() - start
    results = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(results) == args.events and all(r["ok"] for r in results), "transform failed"
    per_event_hashes = 12  # em ph fn ln ge db ct st zp country external_id + one spare
    rate = args.events / elapsed
    print(f"events: {args.events:,} over {args.people:,} people")
    print(f"transform: {rate:,.0f} events/s ({elapsed * 1e6 / args.events:.1f} µs/event)")
    print(
        f"baseline raw sha256: {hashes:,.0f} hashes/s = {hashes / per_event_hashes:,.0f} events/s "
        f"at {per_event_hashes} hashes/event"
    )
    print(f"ratio transform / raw-sha256-events: {rate / (hashes / per_event_hashes):.3f}")
    print(
        f"floor (decode + encode each line, phone library once per distinct number): "
        f"{floor:,.0f} events/s; transform = {rate / floor:.3f}x the floor"
    )
    print(f"goal >= 50,000 events/s: {'met' if rate >= 50_000 else 'NOT met'}")


if __name__ == "__main__":
    main()
