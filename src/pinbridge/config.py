"""Settings: built once from ``pinbridge.toml`` and the environment, then passed down.

Only :mod:`pinbridge.cli` calls :func:`load_settings`; no module below it reads the
environment. The environment wins over the file. Unknown keys in the file are errors, so a
typo never silently falls back to a default. Every key is documented in
``docs/configuration.md``.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec

from pinbridge.backoff import LEASE_USE
from pinbridge.errors import ConfigError
from pinbridge.identity import CLICK_WINDOW_DAYS, DEFAULT_MAX_PER_KIND
from pinbridge.normalize import Normalizer
from pinbridge.pinterest.schema import API_BASE, EVENT_NAMES
from pinbridge.store import Store, open_store
from pinbridge.store.urls import display_url
from pinbridge.transform import Transformer, TransformOptions
from pinbridge.web.auth import (
    LOGIN_ATTEMPTS_PER_MINUTE,
    LOGIN_HASHES_IN_FLIGHT,
    MIN_PASSWORD_LENGTH,
    is_password_hash,
)

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "DEFAULT_DATABASE_URL",
    "DEV_WRITE_KEY",
    "EMULATOR_DESTINATION",
    "DashboardSettings",
    "DeliverySettings",
    "Destination",
    "IdentitySettings",
    "KeyLimitSettings",
    "ServerSettings",
    "Settings",
    "StoreSettings",
    "load_settings",
    "open_configured_store",
    "require_tokens",
    "require_write_keys",
    "sqlite_path",
    "store_location",
]

DEFAULT_CONFIG_FILE = Path("pinbridge.toml")
DEFAULT_DATABASE_URL = "sqlite:///var/pinbridge.db"
#: What ``[store] url`` (``PINBRIDGE_DATABASE_URL``) may start with.
STORE_URL_PREFIXES = ("sqlite:///", "memory:", "postgresql://", "postgres://")
#: The write key accepted when none is configured, so that `make run` works out of the box.
DEV_WRITE_KEY = "dev-write-key"
#: Name of the destination pointed at the embedded emulator when no credentials are set.
EMULATOR_DESTINATION = "emulator"
EMULATOR_AD_ACCOUNT = "549755885175"
_ACCOUNT = re.compile(r"\d{1,18}")
#: Pinterest refuses events older than 7 days: ``max_event_age_seconds`` may not exceed it.
MAX_EVENT_AGE_LIMIT = 7 * 86400
_ORIGIN = re.compile(r"https?://[^/?#\s]+", re.IGNORECASE)


class KeyLimitSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[server.key_limits."<write key>"]``: limits replacing the server-wide ones for a key."""

    requests_per_minute: int | None = None
    max_body_bytes: int | None = None
    max_events_per_request: int | None = None


class ServerSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[server]``: the collector's HTTP side."""

    host: str = "127.0.0.1"
    port: int = 8080
    write_keys: tuple[str, ...] = ()
    max_body_bytes: int = 512_000
    max_events_per_request: int = 2_500
    requests_per_minute_per_key: int = 30_000
    trusted_proxies: tuple[str, ...] = ()
    drop_bots: bool = True
    #: write key → site origins allowed to send with it from a browser (``/v1/collect``).
    cors_origins: dict[str, tuple[str, ...]] = {}
    #: write key → its own limits (request rate, body size, events per request).
    key_limits: dict[str, KeyLimitSettings] = {}

    def __repr__(self) -> str:
        keys = f"<{len(self.write_keys)} write keys>" if self.write_keys else "()"
        return (
            f"ServerSettings(host={self.host!r}, port={self.port!r}, write_keys={keys}, "
            f"max_body_bytes={self.max_body_bytes!r}, "
            f"max_events_per_request={self.max_events_per_request!r}, "
            f"requests_per_minute_per_key={self.requests_per_minute_per_key!r}, "
            f"trusted_proxies={self.trusted_proxies!r}, drop_bots={self.drop_bots!r}, "
            f"cors_origins=<{len(self.cors_origins)} write keys>, "
            f"key_limits=<{len(self.key_limits)} write keys>)"
        )


class StoreSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[store]``: where events are kept.

    ``url``: ``sqlite:///path`` (embedded) or ``postgresql://...`` (shared by several nodes).
    ``synchronous`` applies to SQLite; ``pool_size`` (connections per process) and
    ``migrate_on_start`` (apply missing migrations at start; otherwise ``pinbridge migrate``
    must have run) to PostgreSQL.
    """

    url: str = DEFAULT_DATABASE_URL
    synchronous: str = "NORMAL"
    dedup_window_seconds: float = 48 * 3600
    pool_size: int = 10
    migrate_on_start: bool = True

    @property
    def display_url(self) -> str:
        """``url`` with its password (and ``password``/``sslpassword`` parameters) hidden."""
        return display_url(self.url)

    def __repr__(self) -> str:
        return (
            f"StoreSettings(url={self.display_url!r}, synchronous={self.synchronous!r}, "
            f"dedup_window_seconds={self.dedup_window_seconds!r}, pool_size={self.pool_size!r}, "
            f"migrate_on_start={self.migrate_on_start!r})"
        )


class DeliverySettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[delivery]``: how the sender claims, sends and retries."""

    batch_size: int = 1000
    lease_seconds: float = 120.0
    poll_interval_seconds: float = 0.2
    backoff_base_seconds: float = 1.0
    backoff_cap_seconds: float = 600.0
    rate_limit_per_minute: int = 5000
    paused_probe_seconds: float = 300.0
    timeout_seconds: float = 30.0
    concurrency: int = 2
    linger_seconds: float = 0.1


class IdentitySettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[identity]``: stitching people and enriching their events.

    ``ignore_*`` list identifiers never used to stitch (a shop's test account, a kiosk);
    ``max_per_kind`` overrides the merge guard's limits (see ``pinbridge.identity``).
    """

    enabled: bool = True
    enhanced_match: bool = True
    retention_days: int = 90
    ignore_emails: tuple[str, ...] = ()
    ignore_phones: tuple[str, ...] = ()
    ignore_user_ids: tuple[str, ...] = ()
    ignore_anonymous_ids: tuple[str, ...] = ()
    max_per_kind: dict[str, int] = {}


class DashboardSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[dashboard]``: who may log in to ``/ui`` (nobody when no user is configured).

    ``users`` maps a user name to a password hash from ``pinbridge dashboard passwd``;
    ``PINBRIDGE_DASHBOARD_PASSWORD`` adds the user ``admin`` with that password (hashed at
    start, never stored). ``session_secret`` signs session cookies (default: random per
    process, so a restart logs everyone out); ``secure_cookie`` marks the cookie HTTPS-only
    (set it when a TLS proxy fronts pinbridge). ``login_attempts_per_minute`` (per client
    address, also the burst) and ``login_hashes_in_flight`` (passwords hashed at once, all
    addresses together) throttle logins.
    """

    users: dict[str, str] = {}
    password: str = ""
    session_secret: str = ""
    secure_cookie: bool = False
    login_attempts_per_minute: int = LOGIN_ATTEMPTS_PER_MINUTE
    login_hashes_in_flight: int = LOGIN_HASHES_IN_FLIGHT

    def __repr__(self) -> str:
        return (
            f"DashboardSettings(users=<{len(self.users)} users>, password='***', "
            f"session_secret='***', secure_cookie={self.secure_cookie!r}, "
            f"login_attempts_per_minute={self.login_attempts_per_minute!r}, "
            f"login_hashes_in_flight={self.login_hashes_in_flight!r})"
        )


class Destination(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[[destinations]]``: one Pinterest ad account.

    ``events`` filters by Pinterest event name (empty: all). ``token`` may instead come from
    the environment variable named by ``token_env``.
    """

    name: str
    ad_account_id: str
    token: str = ""
    token_env: str = ""
    api_base: str = API_BASE
    test: bool = False
    events: tuple[str, ...] = ()
    click_window_days: int = 30

    def __repr__(self) -> str:
        return (
            f"Destination(name={self.name!r}, ad_account_id={self.ad_account_id!r}, "
            f"token='***', api_base={self.api_base!r}, test={self.test!r})"
        )

    def wants(self, event_name: str) -> bool:
        """Whether this destination takes events of this name."""
        return not self.events or event_name in self.events


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Everything configurable, by section of ``pinbridge.toml``.

    ``embedded_emulator`` is true when no destination is configured: ``pinbridge run`` then
    serves the emulator itself and delivers to it.
    """

    server: ServerSettings = ServerSettings()
    store: StoreSettings = StoreSettings()
    delivery: DeliverySettings = DeliverySettings()
    transform: TransformOptions = TransformOptions()
    identity: IdentitySettings = IdentitySettings()
    dashboard: DashboardSettings = DashboardSettings()
    destinations: tuple[Destination, ...] = ()
    embedded_emulator: bool = False


def load_settings(path: Path | None, env: Mapping[str, str]) -> Settings:
    """Read the TOML file (when given, or ``./pinbridge.toml`` when it exists) and the environment.

    Environment variables: ``PINBRIDGE_DATABASE_URL``, ``PINBRIDGE_WRITE_KEYS`` (comma
    separated), ``PINTEREST_AD_ACCOUNT_ID`` + ``PINTEREST_ACCESS_TOKEN`` (a destination named
    ``pinterest``), ``PINTEREST_API_BASE``, ``PINBRIDGE_DEFAULT_REGION``,
    ``PINBRIDGE_DASHBOARD_PASSWORD`` (the dashboard user ``admin``), ``PINBRIDGE_HOST``,
    ``PINBRIDGE_PORT``.

    Tokens and write keys are not required here: only the commands that talk to Pinterest or
    serve the collector need them, and check them with :func:`require_tokens` and
    :func:`require_write_keys`.

    Raises:
        ConfigError: the file is missing, is not TOML, or has a wrong key or value.
    """
    data: dict[str, Any] = {}
    if path is None and DEFAULT_CONFIG_FILE.is_file():
        path = DEFAULT_CONFIG_FILE
    if path is not None:
        try:
            data = msgspec.toml.decode(path.read_bytes())
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
        except msgspec.DecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a TOML table")
    _apply_env(data, env)
    try:
        settings = msgspec.convert(data, Settings)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path or 'configuration'}: {exc}") from exc
    settings = _resolve_destinations(settings, env)
    _check(settings, env)
    return settings


def _section(data: dict[str, Any], name: str) -> dict[str, Any]:
    section = data.get(name)
    if section is None:
        section = data[name] = {}
    if not isinstance(section, dict):
        raise ConfigError(f"[{name}] must be a table")
    return section


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    if env.get("PINBRIDGE_DATABASE_URL"):
        _section(data, "store")["url"] = env["PINBRIDGE_DATABASE_URL"]
    if env.get("PINBRIDGE_WRITE_KEYS"):
        keys = [k.strip() for k in env["PINBRIDGE_WRITE_KEYS"].split(",") if k.strip()]
        if not keys:
            raise ConfigError(
                "PINBRIDGE_WRITE_KEYS holds no write key: give comma-separated keys, or unset it"
            )
        _section(data, "server")["write_keys"] = keys
    if env.get("PINBRIDGE_DASHBOARD_PASSWORD"):
        password = env["PINBRIDGE_DASHBOARD_PASSWORD"]
        _check_password("PINBRIDGE_DASHBOARD_PASSWORD", password)
        _section(data, "dashboard")["password"] = password
    if env.get("PINBRIDGE_DEFAULT_REGION"):
        _section(data, "transform")["default_region"] = env["PINBRIDGE_DEFAULT_REGION"]
    if env.get("PINBRIDGE_HOST", "").strip():  # blank: unset
        _section(data, "server")["host"] = env["PINBRIDGE_HOST"].strip()
    if env.get("PINBRIDGE_PORT"):
        port = env["PINBRIDGE_PORT"].strip()
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ConfigError(f"PINBRIDGE_PORT must be a port number (1 to 65535), not {port!r}")
        _section(data, "server")["port"] = int(port)
    account, token = env.get("PINTEREST_AD_ACCOUNT_ID"), env.get("PINTEREST_ACCESS_TOKEN")
    destinations = data.setdefault("destinations", [])
    if account and not destinations:
        if not _ACCOUNT.fullmatch(account):
            raise ConfigError("PINTEREST_AD_ACCOUNT_ID must be 1 to 18 digits")
        destinations.append({"name": "pinterest", "ad_account_id": account})
    for destination in destinations:
        if isinstance(destination, dict):
            if env.get("PINTEREST_API_BASE") and "api_base" not in destination:
                destination["api_base"] = env["PINTEREST_API_BASE"]
            if token and not destination.get("token") and not destination.get("token_env"):
                destination["token"] = token


def _resolve_destinations(settings: Settings, env: Mapping[str, str]) -> Settings:
    """Fill each destination's token from its ``token_env`` variable when that is set; a
    missing one is left empty, for :func:`require_tokens` to report where it matters."""
    resolved = []
    for destination in settings.destinations:
        if destination.token_env and not destination.token:
            destination = msgspec.structs.replace(
                destination, token=env.get(destination.token_env, "")
            )
        resolved.append(destination)
    if not resolved:
        return msgspec.structs.replace(settings, embedded_emulator=True)
    return msgspec.structs.replace(settings, destinations=tuple(resolved))


def require_tokens(settings: Settings) -> None:
    """Check that every destination has its token (commands that talk to Pinterest: ``run``,
    ``worker``, ``quality``'s Event Quality Score).

    Raises:
        ConfigError: naming the first destination without one, and where it was to come from.
    """
    for destination in settings.destinations:
        if destination.token:
            continue
        if destination.token_env:
            raise ConfigError(
                f"destination {destination.name!r}: environment variable "
                f"{destination.token_env} is not set"
            )
        raise ConfigError(
            f"destination {destination.name!r} has no token: set token, token_env or "
            "PINTEREST_ACCESS_TOKEN"
        )


def require_write_keys(settings: Settings) -> None:
    """Check that the collector has write keys of its own when it feeds Pinterest (``run``):
    the published development key works only with the embedded emulator.

    Raises:
        ConfigError: destinations are configured and no write key is.
    """
    if settings.destinations and not settings.server.write_keys:
        raise ConfigError(
            "write keys are required when sending to Pinterest: set PINBRIDGE_WRITE_KEYS or "
            "[server] write_keys (the development key works only with the embedded emulator)"
        )


def _check(settings: Settings, env: Mapping[str, str]) -> None:
    names = [d.name for d in settings.destinations]
    if len(set(names)) != len(names):
        raise ConfigError("destination names must be unique")
    for destination in settings.destinations:
        if not _ACCOUNT.fullmatch(destination.ad_account_id):
            raise ConfigError(
                f"destination {destination.name!r}: ad_account_id must be 1 to 18 digits"
            )
    for destination in settings.destinations:
        if destination.click_window_days not in CLICK_WINDOW_DAYS:
            raise ConfigError(
                f"destination {destination.name!r}: click_window_days must be one of "
                f"{', '.join(map(str, CLICK_WINDOW_DAYS))} (Pinterest's windows)"
            )
    unknown_kinds = set(settings.identity.max_per_kind) - set(DEFAULT_MAX_PER_KIND)
    if unknown_kinds:
        raise ConfigError(
            f"identity.max_per_kind: unknown kind {sorted(unknown_kinds)[0]!r}; "
            f"use {', '.join(DEFAULT_MAX_PER_KIND)}"
        )
    known = EVENT_NAMES | settings.transform.advertiser_event_names
    for destination in settings.destinations:
        unknown = sorted(set(destination.events) - known)
        if unknown:
            raise ConfigError(
                f"destination {destination.name!r}: {unknown[0]!r} is not a Pinterest event name"
            )
    _check_server(settings.server)
    if settings.dashboard.password:
        _check_password("dashboard.password", settings.dashboard.password)
    for user, stored in settings.dashboard.users.items():
        if not is_password_hash(stored):
            raise ConfigError(
                f"dashboard.users.{user}: not a password hash; make one with "
                "`pinbridge dashboard passwd`"
            )
    if not settings.store.url.startswith(STORE_URL_PREFIXES):
        raise ConfigError(
            f"store.url: unsupported database URL {settings.store.url.split(':', 1)[0]!r}; "
            "use sqlite:///path or postgresql://user:password@host/database"
        )
    if settings.store.synchronous.upper() not in ("NORMAL", "FULL"):
        raise ConfigError("store.synchronous must be NORMAL or FULL")
    _check_ranges(settings)
    delivery = settings.delivery
    if delivery.lease_seconds * LEASE_USE < delivery.timeout_seconds:
        raise ConfigError(
            f"delivery.lease_seconds must be at least "
            f"{math.ceil(delivery.timeout_seconds / LEASE_USE):g} "
            f"with delivery.timeout_seconds = {delivery.timeout_seconds:g}: a claim's lease "
            "must outlast a request, or another sender may send its events again"
        )
    if settings.delivery.backoff_cap_seconds < settings.delivery.backoff_base_seconds:
        raise ConfigError(
            "delivery.backoff_cap_seconds must be at least delivery.backoff_base_seconds"
        )
    options = settings.transform
    if options.unmapped not in ("custom", "drop"):
        raise ConfigError("transform.unmapped must be 'custom' or 'drop'")
    try:
        Normalizer(default_region=options.default_region, cache_size=0)
    except ValueError as exc:
        key = (
            "PINBRIDGE_DEFAULT_REGION"
            if env.get("PINBRIDGE_DEFAULT_REGION")
            else "transform.default_region"
        )
        raise ConfigError(
            f"{key}: {exc} (an ISO 3166 country code the phone library knows, such as US or GB)"
        ) from exc
    try:
        Transformer(options)
    except ValueError as exc:
        raise ConfigError(f"transform: {exc}") from exc


def _numbers(settings: Settings) -> list[tuple[str, float, float, float | None, bool]]:
    """Every numeric setting: (key, value, low, high or ``None``, whether ``low`` itself is
    allowed). 0 is allowed only where it is documented to mean "off"."""
    server, store, delivery = settings.server, settings.store, settings.delivery
    transform, identity, dashboard = settings.transform, settings.identity, settings.dashboard
    rows: list[tuple[str, float, float, float | None, bool]] = [
        ("server.port", server.port, 1, 65535, True),
        ("server.max_body_bytes", server.max_body_bytes, 1, None, True),
        ("server.max_events_per_request", server.max_events_per_request, 1, None, True),
        ("server.requests_per_minute_per_key", server.requests_per_minute_per_key, 0, None, True),
        ("store.dedup_window_seconds", store.dedup_window_seconds, 0, None, False),
        ("store.pool_size", store.pool_size, 2, None, True),
        ("delivery.batch_size", delivery.batch_size, 1, 1000, True),
        ("delivery.lease_seconds", delivery.lease_seconds, 0, None, False),
        ("delivery.poll_interval_seconds", delivery.poll_interval_seconds, 0, None, False),
        ("delivery.backoff_base_seconds", delivery.backoff_base_seconds, 0, None, False),
        ("delivery.backoff_cap_seconds", delivery.backoff_cap_seconds, 0, None, False),
        ("delivery.rate_limit_per_minute", delivery.rate_limit_per_minute, 1, None, True),
        ("delivery.paused_probe_seconds", delivery.paused_probe_seconds, 0, None, False),
        ("delivery.timeout_seconds", delivery.timeout_seconds, 0, None, False),
        ("delivery.concurrency", delivery.concurrency, 1, 64, True),
        ("delivery.linger_seconds", delivery.linger_seconds, 0, 10, True),
        (
            "transform.max_event_age_seconds",
            transform.max_event_age_seconds,
            1,
            MAX_EVENT_AGE_LIMIT,
            True,
        ),
        ("transform.future_skew_seconds", transform.future_skew_seconds, 0, None, True),
        ("identity.retention_days", identity.retention_days, 1, None, True),
        ("dashboard.login_attempts_per_minute", dashboard.login_attempts_per_minute, 1, 1000, True),
        ("dashboard.login_hashes_in_flight", dashboard.login_hashes_in_flight, 1, 64, True),
    ]
    for kind, most in identity.max_per_kind.items():
        rows.append((f"identity.max_per_kind.{kind}", most, 1, None, True))
    for number, limits in enumerate(server.key_limits.values(), start=1):
        for name in ("requests_per_minute", "max_body_bytes", "max_events_per_request"):
            value = getattr(limits, name)
            if value is not None:
                # The write key itself is never printed: its entry is named by position.
                key = f"server.key_limits.<entry {number}>.{name}"
                rows.append((key, value, 1, None, True))
    return rows


def _check_ranges(settings: Settings) -> None:
    for name, value, low, high, low_allowed in _numbers(settings):
        too_low = value < low if low_allowed else value <= low
        if not math.isfinite(value) or too_low or (high is not None and value > high):
            if high is None:
                bounds = f"at least {low:g}" if low_allowed else f"more than {low:g}"
            elif low_allowed:
                bounds = f"between {low:g} and {high:g}"
            else:
                bounds = f"more than {low:g} and at most {high:g}"
            raise ConfigError(f"{name} must be {bounds}")


def _check_password(name: str, password: str) -> None:
    """The rule of ``pinbridge dashboard passwd``; the message never shows the value."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigError(
            f"{name} is too short: use at least {MIN_PASSWORD_LENGTH} characters "
            "(the value is not shown)"
        )


def _check_server(server: ServerSettings) -> None:
    for cidr in server.trusted_proxies:
        try:
            ipaddress.ip_network(cidr.strip(), strict=False)
        except ValueError:
            raise ConfigError(f"server.trusted_proxies: {cidr!r} is not a network") from None
    for origins in server.cors_origins.values():
        for origin in origins:
            if origin != "*" and not _ORIGIN.fullmatch(origin.strip().rstrip("/")):
                raise ConfigError(
                    f"server.cors_origins: {origin!r} is not an origin (https://host[:port])"
                )


def sqlite_path(settings: Settings) -> Path | None:
    """The SQLite file ``[store] url`` names, made absolute against the working directory
    (which a relative ``sqlite:///var/pinbridge.db`` depends on); ``None`` for other stores."""
    url = settings.store.url
    if not url.startswith("sqlite:///"):
        return None
    return Path(url.removeprefix("sqlite:///")).absolute()


def store_location(settings: Settings) -> str:
    """The store as a person should read it: an SQLite file's absolute path, otherwise the URL
    with its secrets masked."""
    path = sqlite_path(settings)
    return f"{path} (SQLite)" if path is not None else settings.store.display_url


@asynccontextmanager
async def store_session(settings: Settings) -> AsyncIterator[Store]:
    """The configured store for one command, closed when the command ends. A command is run
    by hand: it does not wait for a PostgreSQL that refuses connections, it says so.

    Raises:
        StoreError: the database cannot be opened.
    """
    store = open_configured_store(settings, connect_wait=0.0)
    try:
        yield store
    finally:
        await store.aclose()


def open_configured_store(settings: Settings, *, connect_wait: float = 30.0) -> Store:
    """The store ``[store]`` names, opened with its settings; a server waits up to
    ``connect_wait`` seconds for a PostgreSQL that refuses connections (starting beside it)."""
    store = settings.store
    return open_store(
        store.url,
        synchronous=store.synchronous,
        pool_size=store.pool_size,
        migrate=store.migrate_on_start,
        connect_wait=connect_wait,
    )
