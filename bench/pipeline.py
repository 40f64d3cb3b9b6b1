"""The whole pipeline on this machine: accepted → delivered, and a backlog of 1,000,000 drained.

Run: ``.venv/bin/python bench/pipeline.py [--quick]`` (see ``--help`` for the counts).

Both parts run real processes on loopback: ``pinbridge run`` on an SQLite file, and the
emulator in its fastest mode (no rate limit, no faults, no access log, any token) under
uvicorn, as a separate process.

(a) **End to end.** ``--events`` Segment ``Order Completed`` calls (email, IP, user agent,
order id, revenue, two products; ``--people`` distinct people, so most are seen again) are
encoded up front into ``/v1/batch`` bodies of ``--post-size`` and posted by ``--clients``
threads. Timed from the first post to the moment the emulator's ``/_emulator/stats`` counts
the last event processed. Baselines measured in the same run, on the same events as delivered:
the emulator alone absorbing them through direct POSTs of 1,000 (the ceiling of the delivery
side), and the store alone accepting them (``SqliteStore.accept`` in batches of
``--post-size``: group-committed SQLite inserts, the ceiling of the durable side).

(b) **Backlog.** ``--backlog`` events are written straight into a fresh database through the
store's ``accept`` (much faster than through HTTP), then ``pinbridge run`` is started on it and
timed until the emulator has processed them all. Peak RSS of the pinbridge process is read
from ``/proc/<pid>/status`` (``VmHWM``) before it is stopped.

(c) **Scale-out** (``--store postgresql``, instead of (a) and (b)): the same end-to-end
measurement on SQLite (one ``pinbridge run``), then on a throw-away PostgreSQL (durable
settings) with one ``pinbridge run --no-sender`` collector and ``--senders`` (default 1, 2, 4)
``pinbridge worker`` processes, each on a fresh database.

Goals (issue 4): ≥ 30,000 events/s end to end; the backlog drained in ≤ 60 s with RSS ≤ 300 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import msgspec

from pinbridge.store import PendingEvent, PendingInput, SqliteStore

ACCOUNT = "549755885175"
TOKEN = "bench-token"
WRITE_KEY = "bench-write-key"
DESTINATION = "pinterest"  # the destination built from PINTEREST_AD_ACCOUNT_ID
START_TIMEOUT = 30.0
EMULATOR = """
import logging, sys, uvicorn
from pinbridge.pinterest.emulator import EmulatorConfig, create_emulator_app
config = EmulatorConfig(rate_limit_per_minute=0, max_recorded_events=int(sys.argv[2]))
uvicorn.run(create_emulator_app(config), host="127.0.0.1", port=int(sys.argv[1]),
            log_level="warning", access_log=False, lifespan="off", ws="none")
"""
CONFIG = """
[server]
max_body_bytes = 4_000_000
max_events_per_request = 5000

[delivery]
rate_limit_per_minute = 1_000_000
poll_interval_seconds = 0.05
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_mb(pid: int) -> float:
    """``VmHWM`` of a live process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


class Processes:
    """Subprocesses of one measurement; all stopped on leaving."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[subprocess.Popen[bytes]] = []
        env = os.environ.items()
        self.env = {k: v for k, v in env if not k.startswith(("PINBRIDGE_", "PINTEREST_"))}

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Any:
        log = (self.folder / f"{name}.log").open("ab")
        popen = subprocess.Popen(args, cwd=self.folder, env=env or self.env, stdout=log, stderr=log)
        log.close()
        self.started.append(popen)
        return popen

    def emulator(self, port: int, max_recorded: int) -> Any:
        popen = self.spawn(
            "emulator", [sys.executable, "-c", EMULATOR, str(port), str(max_recorded)]
        )
        wait_ready(popen, f"http://127.0.0.1:{port}/_emulator/stats")
        return popen

    def pinbridge(
        self, port: int, emulator_port: int, database: Path | str, *flags: str, name: str = ""
    ) -> Any:
        """``pinbridge run`` (with ``flags``), or ``pinbridge worker`` when ``port`` is 0."""
        config = self.folder / "bench.toml"
        config.write_text(CONFIG)
        url = database if isinstance(database, str) else f"sqlite:///{database}"
        env = {
            **self.env,
            "PINBRIDGE_DATABASE_URL": url,
            "PINTEREST_AD_ACCOUNT_ID": ACCOUNT,
            "PINTEREST_ACCESS_TOKEN": TOKEN,
            "PINTEREST_API_BASE": f"http://127.0.0.1:{emulator_port}/v5",
            "PINBRIDGE_WRITE_KEYS": WRITE_KEY,
        }
        args = [sys.executable, "-m", "pinbridge", "run", "--port", str(port), *flags]
        if not port:
            args = [sys.executable, "-m", "pinbridge", "worker"]
        return self.spawn(name or "pinbridge", [*args, "--config", str(config)], env)

    def stop_all(self) -> None:
        for popen in self.started:
            if popen.poll() is None:
                popen.send_signal(signal.SIGTERM)
        for popen in self.started:
            try:
                popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()


@contextlib.contextmanager
def processes(folder: Path) -> Iterator[Processes]:
    group = Processes(folder)
    try:
        yield group
    finally:
        group.stop_all()


def wait_ready(popen: Any, url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"{popen.args[:4]} exited with {popen.returncode}")
        with contextlib.suppress(httpx2.TransportError):
            if httpx2.get(url, timeout=1.0).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {START_TIMEOUT} s")


def processed(client: httpx2.Client) -> int:
    return int(client.get("/_emulator/stats").json()["processed"])


def wait_processed(client: httpx2.Client, count: int, timeout: float) -> float:
    """Poll the emulator until ``count`` events were processed; the monotonic time then."""
    deadline = time.monotonic() + timeout
    while (done := processed(client)) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done:,} of {count:,} events delivered in {timeout} s")
        time.sleep(0.02)
    return time.monotonic()


# -- (a) end to end --------------------------------------------------------------------------


def segment_calls(count: int, people: int, now: float) -> list[dict[str, Any]]:
    calls = []
    for n in range(count):
        who = n % people
        calls.append(
            {
                "type": "track",
                "event": "Order Completed",
                "messageId": f"bench-{n}",
                "userId": f"user-{who}",
                "timestamp": now - 60,
                "context": {
                    "ip": f"203.0.{who % 250}.{who % 199 + 1}",
                    "userAgent": "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Firefox/140.0",
                    "traits": {"email": f"Person.{who}@Example.com"},
                },
                "properties": {
                    "order_id": f"order-{n}",
                    "revenue": 72.39,
                    "currency": "USD",
                    "products": [
                        {"product_id": "sku-1", "price": 30, "quantity": 1},
                        {"product_id": "sku-2", "price": 42.39, "quantity": 1},
                    ],
                },
            }
        )
    return calls


def post_all(url: str, bodies: list[bytes], clients: int) -> tuple[float, float, int]:
    """Post the bodies from ``clients`` threads; first post, last answer, events accepted."""
    accepted = [0] * clients
    errors: list[BaseException] = []
    start = threading.Barrier(clients + 1)
    headers = {"Content-Type": "application/json"}

    def work(k: int) -> None:
        try:
            with httpx2.Client(base_url=url, auth=(WRITE_KEY, ""), timeout=60) as client:
                start.wait()
                for body in bodies[k::clients]:
                    answer = client.post("/v1/batch", content=body, headers=headers)
                    answer.raise_for_status()
                    results = msgspec.json.decode(answer.content)["results"]
                    accepted[k] += sum(1 for r in results if r["status"] == "accepted")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    first = time.monotonic()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return first, time.monotonic(), sum(accepted)


def emulator_alone(url: str, events: list[msgspec.Raw], clients: int) -> float:
    """Events/s the emulator absorbs through direct POSTs of 1,000 (after a reset)."""
    httpx2.post(f"{url}/_emulator/reset").raise_for_status()
    bodies = [
        b'{"data":[' + b",".join(bytes(e) for e in events[i : i + 1000]) + b"]}"
        for i in range(0, len(events), 1000)
    ]
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            with httpx2.Client(base_url=url, headers=headers, timeout=60) as client:
                for body in bodies[k::clients]:
                    answer = client.post(f"/v5/ad_accounts/{ACCOUNT}/events", content=body)
                    answer.raise_for_status()
        except BaseException as exc:
            errors.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=work, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    if errors:
        raise errors[0]
    return len(events) / elapsed


def items_from(events: list[msgspec.Raw]) -> list[PendingInput]:
    decode = msgspec.json.Decoder().decode
    items = []
    for raw in events:
        event = decode(raw)
        pending = PendingEvent(
            event_id=event["event_id"],
            event_name=event["event_name"],
            event_time=event["event_time"],
            payload=bytes(raw),
            destinations=(DESTINATION,),
        )
        items.append(
            PendingInput(input=b'{"type":"track","event":"Order Completed"}', events=(pending,))
        )
    return items


async def store_alone(folder: Path, items: list[PendingInput], batch: int) -> float:
    """Events/s ``SqliteStore.accept`` keeps, in concurrent batches of ``batch`` (group commit)."""
    store = SqliteStore(folder / "store-alone.db")
    now = time.time()
    try:
        started = time.monotonic()
        await asyncio.gather(
            *(
                store.accept(items[i : i + batch], now=now, dedup_window=48 * 3600)
                for i in range(0, len(items), batch)
            )
        )
        return len(items) / (time.monotonic() - started)
    finally:
        await store.aclose()


def end_to_end(folder: Path, args: argparse.Namespace) -> None:
    now = time.time()
    calls = segment_calls(args.events, args.people, now)
    encode = msgspec.json.Encoder().encode
    bodies = [
        encode({"batch": calls[i : i + args.post_size]})
        for i in range(0, len(calls), args.post_size)
    ]
    emulator_port, port = free_port(), free_port()
    with processes(folder) as group:
        group.emulator(emulator_port, max(args.events, 1000))
        emulator_url = f"http://127.0.0.1:{emulator_port}"
        pinbridge = group.pinbridge(port, emulator_port, folder / "e2e.db")
        wait_ready(pinbridge, f"http://127.0.0.1:{port}/healthz")
        with httpx2.Client(base_url=emulator_url, timeout=60) as emulator:
            first, last_answer, accepted = post_all(
                f"http://127.0.0.1:{port}", bodies, args.clients
            )
            delivered_at = wait_processed(emulator, accepted, timeout=600)
            rss = peak_rss_mb(pinbridge.pid)
            answer = emulator.get("/_emulator/events", params={"ad_account_id": ACCOUNT})
            delivered = msgspec.json.decode(answer.content)["events"]
        events = [msgspec.Raw(msgspec.json.encode(r["event"])) for r in delivered]
        baseline_emulator = emulator_alone(emulator_url, events, args.clients)
    baseline_store = asyncio.run(store_alone(folder, items_from(events), args.post_size))
    accept_rate = accepted / (last_answer - first)
    e2e_rate = accepted / (delivered_at - first)
    print(
        f"(a) end to end: {accepted:,} of {args.events:,} events accepted "
        f"({args.post_size} per post, {args.clients} clients, {args.people:,} people)"
    )
    print(f"    accepted          {accept_rate:12,.0f} events/s  ({last_answer - first:.2f} s)")
    print(
        f"    accepted→delivered{e2e_rate:12,.0f} events/s  ({delivered_at - first:.2f} s)  "
        f"goal ≥ 30,000: {'met' if e2e_rate >= 30_000 else 'NOT met'}"
    )
    print(f"    pinbridge peak RSS {rss:11,.0f} MiB")
    print(
        f"    baseline: emulator alone, POSTs of 1,000 {baseline_emulator:12,.0f} events/s"
        f"  (e2e = {e2e_rate / baseline_emulator:.2f}x)"
    )
    print(
        f"    baseline: store alone, accept() of {args.post_size}  {baseline_store:12,.0f} "
        f"events/s  (e2e = {e2e_rate / baseline_store:.2f}x)"
    )


# -- (c) scale-out on PostgreSQL ---------------------------------------------------------------


def one_run(
    folder: Path, bodies: list[bytes], args: argparse.Namespace, url: str, senders: int
) -> float:
    """End-to-end events/s: ``senders`` 0 is one ``pinbridge run`` (SQLite's way); N > 0 is one
    ``pinbridge run --no-sender`` collector and N ``pinbridge worker`` processes."""
    emulator_port, port = free_port(), free_port()
    with processes(folder) as group:
        group.emulator(emulator_port, 1000)
        flags = ("--no-sender",) if senders else ()
        collector = group.pinbridge(port, emulator_port, url, *flags)
        wait_ready(collector, f"http://127.0.0.1:{port}/healthz")
        for n in range(senders):
            group.pinbridge(0, emulator_port, url, name=f"worker-{n}")
        with httpx2.Client(base_url=f"http://127.0.0.1:{emulator_port}", timeout=60) as emulator:
            first, _, accepted = post_all(f"http://127.0.0.1:{port}", bodies, args.clients)
            delivered_at = wait_processed(emulator, accepted, timeout=600)
    return accepted / (delivered_at - first)


def scale_out(folder: Path, args: argparse.Namespace) -> None:
    """``--store postgresql``: SQLite's end-to-end figure, then PostgreSQL's with 1, 2, 4
    senders, on the same events, in one run. PostgreSQL is a throw-away cluster from the
    system's binaries with durable settings (fsync and synchronous_commit on)."""
    from pinbridge.testing import ThrowawayCluster

    calls = segment_calls(args.events, args.people, time.time())
    encode = msgspec.json.Encoder().encode
    bodies = [
        encode({"batch": calls[i : i + args.post_size]})
        for i in range(0, len(calls), args.post_size)
    ]
    print(
        f"(c) scale-out: {args.events:,} events, {args.post_size} per post, {args.clients} clients"
    )
    sqlite_rate = one_run(folder, bodies, args, f"sqlite:///{folder / 'scale.db'}", 0)
    print(f"    SQLite, pinbridge run            {sqlite_rate:10,.0f} events/s")
    with ThrowawayCluster(durable=True) as cluster:
        import psycopg

        for senders in args.senders:
            with psycopg.connect(cluster.url(), autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE bench_{senders}".encode())
            rate = one_run(folder, bodies, args, cluster.url(f"bench_{senders}"), senders)
            print(
                f"    PostgreSQL, 1 collector + {senders} sender{'s' if senders > 1 else ' '} "
                f"{rate:10,.0f} events/s  ({rate / sqlite_rate:.2f}x SQLite)"
            )


# -- (b) backlog -----------------------------------------------------------------------------


def backlog_items(start: int, count: int, now: float) -> list[PendingInput]:
    """Realistic delivered payloads (hashed email, IP, UA, custom_data), kept inputs redacted."""
    encode = msgspec.json.encode
    items = []
    for n in range(start, start + count):
        digest = hashlib.sha256(f"person{n % 50_000}@example.com".encode()).hexdigest()
        event_id = f"backlog-{n}"
        payload = encode(
            {
                "event_name": "checkout",
                "action_source": "web",
                "event_time": int(now) - 300,
                "event_id": event_id,
                "event_source_url": "https://shop.example/checkout/done",
                "user_data": {
                    "em": [digest],
                    "external_id": [digest[::-1]],
                    "client_ip_address": "203.0.113.7",
                    "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
                },
                "custom_data": {
                    "currency": "USD",
                    "value": "72.39",
                    "order_id": f"order-{n}",
                    "content_ids": ["sku-1", "sku-2"],
                    "num_items": 2,
                },
            }
        )
        pending = PendingEvent(
            event_id=event_id,
            event_name="checkout",
            event_time=int(now) - 300,
            payload=payload,
            destinations=(DESTINATION,),
        )
        kept = {
            "type": "track",
            "event": "Order Completed",
            "messageId": event_id,
            "context": {"traits": {"email": "[redacted]"}},
        }
        items.append(PendingInput(input=encode(kept), events=(pending,)))
    return items


async def prefill(database: Path, count: int) -> float:
    """Fill the outbox through ``SqliteStore.accept``; returns events/s."""
    store = SqliteStore(database)
    now = time.time()
    chunk = 5000
    try:
        started = time.monotonic()
        pending: set[asyncio.Task[Any]] = set()
        for start in range(0, count, chunk):
            items = backlog_items(start, min(chunk, count - start), now)
            pending.add(asyncio.ensure_future(store.accept(items, now=now, dedup_window=172800)))
            if len(pending) >= 4:
                _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        await asyncio.gather(*pending)
        return count / (time.monotonic() - started)
    finally:
        await store.aclose()


def backlog(folder: Path, args: argparse.Namespace) -> None:
    database = folder / "backlog.db"
    fill_rate = asyncio.run(prefill(database, args.backlog))
    size = sum(p.stat().st_size for p in folder.glob("backlog.db*")) / 2**20
    emulator_port, port = free_port(), free_port()
    with processes(folder) as group:
        group.emulator(emulator_port, args.backlog)
        with httpx2.Client(base_url=f"http://127.0.0.1:{emulator_port}", timeout=60) as emulator:
            started = time.monotonic()
            pinbridge = group.pinbridge(port, emulator_port, database)
            wait_ready(pinbridge, f"http://127.0.0.1:{port}/healthz")
            ready = time.monotonic()
            done = wait_processed(emulator, args.backlog, timeout=args.backlog_timeout)
            rss = peak_rss_mb(pinbridge.pid)
    seconds = done - started
    met = seconds <= 60 and rss <= 300
    print(
        f"(b) backlog: {args.backlog:,} events pre-filled at {fill_rate:,.0f} events/s "
        f"(store accept, the baseline; database {size:,.0f} MiB)"
    )
    print(
        f"    drained in {seconds:.1f} s from process start ({done - ready:.1f} s after "
        f"/healthz answered): {args.backlog / seconds:,.0f} events/s"
    )
    print(
        f"    pinbridge peak RSS {rss:,.0f} MiB; goal ≤ 60 s and ≤ 300 MiB: "
        f"{'met' if met else 'NOT met'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="(a) events posted")
    parser.add_argument("--post-size", type=int, default=500, help="(a) events per post")
    parser.add_argument("--clients", type=int, default=4, help="(a) posting threads")
    parser.add_argument("--people", type=int, default=20_000, help="(a) distinct people")
    parser.add_argument("--backlog", type=int, default=1_000_000, help="(b) events queued")
    parser.add_argument("--backlog-timeout", type=float, default=900.0, help="(b) give up after")
    parser.add_argument("--quick", action="store_true", help="10,000 and 50,000 events")
    parser.add_argument("--only", choices=["e2e", "backlog"], help="run one part")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and logs")
    parser.add_argument(
        "--store",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="postgresql: (c) end to end on PostgreSQL beside SQLite, instead of (a) and (b)",
    )
    parser.add_argument(
        "--senders",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 2, 4],
        help="(c) sender processes per PostgreSQL measurement (default 1,2,4)",
    )
    args = parser.parse_args()
    if args.quick:
        args.events, args.backlog = 10_000, 50_000
    folder = Path(tempfile.mkdtemp(prefix="pinbridge-bench-"))
    print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}; work folder {folder}")
    try:
        if args.store == "postgresql":
            scale_out(folder, args)
            return
        if args.only != "backlog":
            end_to_end(folder, args)
        if args.only != "e2e":
            backlog(folder, args)
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
