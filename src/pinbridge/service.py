"""The running product, composed: store, accept path, collector, sender, embedded emulator.

:func:`build_service` turns :class:`~pinbridge.config.Settings` into a :class:`Service`
whose Starlette app serves the collector and, when no destination has credentials, the
emulator under ``/emulator`` (the sender then delivers to that same emulator in process).
The app's lifespan starts the sender and, on shutdown, stops it and closes the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount

from pinbridge.accept import Acceptor, DestinationRoute
from pinbridge.backoff import RetryPolicy
from pinbridge.config import (
    DEV_WRITE_KEY,
    EMULATOR_AD_ACCOUNT,
    EMULATOR_DESTINATION,
    Destination,
    Settings,
    open_configured_store,
)
from pinbridge.delivery import DestinationRuntime, Sender
from pinbridge.diagnostics import DEAD_LETTER_WINDOW, EqsFetcher
from pinbridge.filters import TrafficFilter
from pinbridge.identity import DEFAULT_MAX_PER_KIND
from pinbridge.importer import IMPORT_DEDUP_WINDOW
from pinbridge.metrics import Metrics
from pinbridge.normalize import Normalizer
from pinbridge.pinterest.client import PinterestClient
from pinbridge.pinterest.emulator import EmulatorConfig, EmulatorTransport, create_emulator_app
from pinbridge.pinterest.schema import TEST_REQUESTS_PER_SECOND
from pinbridge.ratelimit import AllLimits, RateLimit
from pinbridge.signals import identifier_key
from pinbridge.store import DestinationStats, IdentityPolicy, Store, rate_limit
from pinbridge.transform import Transformer
from pinbridge.web.auth import LoginThrottle, Sessions, hash_password, stable_salt
from pinbridge.web.browser import BrowserCollector, CorsPolicy, browser_routes, tag_event_map
from pinbridge.web.collector import Collector, KeyLimits, collector_routes
from pinbridge.web.dashboard import Dashboard, dashboard_routes
from pinbridge.web.proxies import TrustedProxies

__all__ = [
    "EMULATOR_MOUNT",
    "Service",
    "build_acceptor",
    "build_service",
    "dedup_keep_seconds",
    "effective_destinations",
]

EMULATOR_MOUNT = "/emulator"
_EMULATOR_TOKEN = "embedded-emulator"
_PRUNE_EVERY = 3600.0
_FLUSH_COUNTS_EVERY = 5.0
log = structlog.get_logger("pinbridge.service")


@dataclass
class Service:
    """Everything ``pinbridge run`` serves; ``app`` is the ASGI application."""

    settings: Settings
    store: Store
    sender: Sender
    app: Starlette
    write_keys: tuple[str, ...]
    embedded_emulator: Starlette | None = None
    clients: list[PinterestClient] = field(default_factory=list)
    metrics: Metrics = field(default_factory=Metrics)


def effective_destinations(settings: Settings) -> tuple[Destination, ...]:
    """The configured destinations, or the embedded emulator when there are none."""
    if settings.destinations:
        return settings.destinations
    return (
        Destination(
            name=EMULATOR_DESTINATION,
            ad_account_id=EMULATOR_AD_ACCOUNT,
            token=_EMULATOR_TOKEN,
            api_base="http://emulator.invalid/v5",
        ),
    )


def _limits(test: bool, account: RateLimit, test_requests: RateLimit) -> RateLimit:
    """What one request of a destination takes: a token of its ad account, and in test mode
    one of the test requests' budget too."""
    return AllLimits(account, test_requests) if test else account


def build_service(
    settings: Settings,
    *,
    with_collector: bool = True,
    with_sender: bool = True,
    clock: Callable[[], float] = time.time,
) -> Service:
    """Compose the service; nothing runs until the app's lifespan starts."""
    store = open_configured_store(settings)
    emulator = create_emulator_app(EmulatorConfig()) if settings.embedded_emulator else None
    destinations = effective_destinations(settings)
    runtimes, clients = [], []
    # Pinterest limits calls per ad account: destinations sharing one share its bucket.
    buckets: dict[str, RateLimit] = {}
    # Test requests have their own, lower limit per app, taken by every test destination.
    test_requests = rate_limit(
        store, "test-mode", TEST_REQUESTS_PER_SECOND * 60, burst=TEST_REQUESTS_PER_SECOND
    )
    for destination in destinations:
        transport = EmulatorTransport(app=emulator) if emulator is not None else None
        account = buckets.setdefault(
            destination.ad_account_id,
            rate_limit(store, destination.ad_account_id, settings.delivery.rate_limit_per_minute),
        )
        client = PinterestClient(
            token=destination.token,
            base_url=destination.api_base,
            test=destination.test,
            timeout=settings.delivery.timeout_seconds,
            transport=transport,
        )
        clients.append(client)
        runtimes.append(
            DestinationRuntime(
                name=destination.name,
                ad_account_id=destination.ad_account_id,
                client=client,
                test=destination.test,
                bucket=_limits(destination.test, account, test_requests),
            )
        )
    delivery = settings.delivery
    metrics = Metrics()
    metrics.source = lambda: _queue_figures(store, clock())
    sender = Sender(
        store=store,
        destinations=runtimes,
        policy=RetryPolicy(delivery.backoff_base_seconds, delivery.backoff_cap_seconds),
        clock=clock,
        batch_size=delivery.batch_size,
        lease_seconds=delivery.lease_seconds,
        poll_interval=delivery.poll_interval_seconds,
        paused_probe_seconds=delivery.paused_probe_seconds,
        concurrency=delivery.concurrency,
        linger=delivery.linger_seconds,
        rng=random.Random(),
        metrics=metrics,
    )
    write_keys = settings.server.write_keys or (DEV_WRITE_KEY,)
    routes: list[BaseRoute] = []
    if with_collector:
        acceptor = build_acceptor(settings, store, metrics=metrics)
        collector = Collector(
            acceptor,
            write_keys=write_keys,
            max_body_bytes=settings.server.max_body_bytes,
            max_events=settings.server.max_events_per_request,
            on_accept=sender.wake,
            clock=clock,
            requests_per_minute=settings.server.requests_per_minute_per_key,
            key_limits={
                key: KeyLimits(
                    requests_per_minute=limits.requests_per_minute,
                    max_body_bytes=limits.max_body_bytes,
                    max_events=limits.max_events_per_request,
                )
                for key, limits in settings.server.key_limits.items()
            },
            metrics=metrics,
        )
        routes.extend(collector_routes(collector))
        routes.extend(browser_routes(_browser(settings, collector)))
    if with_collector:
        routes.extend(dashboard_routes(_dashboard(settings, store, runtimes, clock)))
    if emulator is not None:
        routes.append(Mount(EMULATOR_MOUNT, app=emulator))
    service = Service(settings, store, sender, Starlette(), write_keys, emulator, clients)
    service.metrics = metrics
    service.app = Starlette(
        routes=routes, lifespan=lambda app: _lifespan(service, with_sender, clock)
    )
    return service


def build_acceptor(
    settings: Settings,
    store: Store,
    *,
    metrics: Metrics | None = None,
    dedup_window: float | None = None,
) -> Acceptor:
    """The accept path for these settings (the collector's, or an import's)."""
    destinations = effective_destinations(settings)
    identity = identity_policy(settings, destinations)
    return Acceptor(
        Transformer(settings.transform, defer_identifier_rule=identity is not None),
        store,
        [DestinationRoute(d.name, frozenset(d.events)) for d in destinations],
        dedup_window=dedup_window or settings.store.dedup_window_seconds,
        traffic_filter=TrafficFilter(drop_bots=settings.server.drop_bots),
        metrics=metrics,
        identity=identity,
    )


def identity_policy(
    settings: Settings, destinations: Sequence[Destination]
) -> IdentityPolicy | None:
    """The accept path's identity policy, or ``None`` when identity is switched off."""
    identity = settings.identity
    if not identity.enabled:
        return None
    normalizer = Normalizer(default_region=settings.transform.default_region, cache_size=0)
    ignore = {identifier_key("uid", v) for v in identity.ignore_user_ids}
    ignore |= {identifier_key("aid", v) for v in identity.ignore_anonymous_ids}
    for kind, values in (("em", identity.ignore_emails), ("ph", identity.ignore_phones)):
        digests, _ = normalizer.hash_values(kind, values)
        ignore |= {identifier_key(kind, d) for d in digests}
    return IdentityPolicy(
        click_windows={d.name: d.click_window_days * 86400.0 for d in destinations},
        ignore=frozenset(ignore),
        max_per_kind={**DEFAULT_MAX_PER_KIND, **identity.max_per_kind},
        enhanced_match=identity.enhanced_match,
    )


def _browser(settings: Settings, collector: Collector) -> BrowserCollector:
    """pb.js and its endpoint; the development key takes any origin (local testing)."""
    server = settings.server
    return BrowserCollector(
        collector,
        cors=CorsPolicy(server.cors_origins, () if server.write_keys else (DEV_WRITE_KEY,)),
        trusted_proxies=TrustedProxies(server.trusted_proxies),
        event_map=tag_event_map(settings.transform),
    )


@contextlib.asynccontextmanager
async def _lifespan(
    service: Service, with_sender: bool, clock: Callable[[], float]
) -> AsyncIterator[None]:
    stop = asyncio.Event()
    tasks = []
    if with_sender:
        tasks.append(asyncio.create_task(service.sender.run(stop), name="pinbridge-sender"))
    tasks.append(asyncio.create_task(_prune(service, stop, clock), name="pinbridge-prune"))
    tasks.append(asyncio.create_task(_flush_counts(service, stop), name="pinbridge-counts"))
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await service.store.add_accept_counts(service.metrics.tally.drain())
        for client in service.clients:
            await client.aclose()
        await service.store.aclose()


def dedup_keep_seconds(settings: Settings) -> float:
    """How long dedup keys are kept: the longest window of any accept path, that is the
    configured one or an import's (:data:`pinbridge.importer.IMPORT_DEDUP_WINDOW`, 8 days),
    so that pruning never clears a key an import still relies on."""
    return max(settings.store.dedup_window_seconds, IMPORT_DEDUP_WINDOW)


async def _prune(service: Service, stop: asyncio.Event, clock: Callable[[], float]) -> None:
    window = dedup_keep_seconds(service.settings)
    identity = service.settings.identity
    retention = identity.retention_days * 86400.0 if identity.enabled else None
    while not stop.is_set():
        await service.store.prune(now=clock(), dedup_window=window, identity_retention=retention)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), _PRUNE_EVERY)


async def _flush_counts(service: Service, stop: asyncio.Event) -> None:
    """Write the accept path's outcome counts to the store every few seconds."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), _FLUSH_COUNTS_EVERY)
        try:
            await service.store.add_accept_counts(service.metrics.tally.drain())
        except Exception:  # diagnostics must never stop the service
            log.exception("could not keep the accept counts")


async def _queue_figures(store: Store, now: float) -> tuple[list[DestinationStats], dict[str, int]]:
    stats = await store.stats(now=now)
    return stats, await store.dead_letters_since(since=now - DEAD_LETTER_WINDOW)


def _dashboard(
    settings: Settings,
    store: Store,
    runtimes: Sequence[DestinationRuntime],
    clock: Callable[[], float],
) -> Dashboard:
    """The dashboard, its users (``PINBRIDGE_DASHBOARD_PASSWORD`` hashed here, once) and the
    Event Quality Score fetchers of every destination."""
    config = settings.dashboard
    users = dict(config.users)
    if config.password:
        users["admin"] = hash_password(config.password, salt=stable_salt(config.session_secret))
    secret = config.session_secret.encode() or None
    eqs = {r.name: _eqs_fetcher(r) for r in runtimes}
    return Dashboard(
        store,
        Sessions(users, secret=secret, clock=clock),
        eqs=eqs,
        default_region=settings.transform.default_region,
        secure_cookie=config.secure_cookie,
        clock=clock,
        throttle=LoginThrottle(
            per_minute=config.login_attempts_per_minute, in_flight=config.login_hashes_in_flight
        ),
        trusted_proxies=TrustedProxies(settings.server.trusted_proxies),
    )


def _eqs_fetcher(runtime: DestinationRuntime) -> EqsFetcher:
    async def fetch(lookback: str) -> Any:
        return await runtime.client.conversion_eqs(runtime.ad_account_id, lookback_period=lookback)

    return fetch
