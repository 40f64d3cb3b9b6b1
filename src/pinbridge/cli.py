"""The ``pinbridge`` command. Settings are built here, once, from flags, file and environment."""

from __future__ import annotations

import asyncio
import errno
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click
import msgspec
import structlog
import uvicorn
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from pinbridge import __version__
from pinbridge.cli_common import (
    check_destination,
    cli_settings,
    config_option,
    parse_since,
    require_database,
    run_with_store,
    store_unavailable,
)
from pinbridge.cli_diagnostics import COMMANDS as DIAGNOSTIC_COMMANDS
from pinbridge.config import (
    DEV_WRITE_KEY,
    Settings,
    require_tokens,
    require_write_keys,
    store_location,
    store_session,
)
from pinbridge.errors import ConfigError
from pinbridge.identity import CLICK_WINDOW_DAYS, person_keys
from pinbridge.importer import (
    IMPORT_DEDUP_WINDOW,
    ImportSummary,
    NotUtf8Error,
    count_rows,
    import_rows,
)
from pinbridge.offline import ColumnMap
from pinbridge.pinterest.emulator_cli import emulator
from pinbridge.problems import Problem
from pinbridge.report import AttributionRow, attribute
from pinbridge.service import (
    EMULATOR_MOUNT,
    Service,
    build_acceptor,
    build_service,
    effective_destinations,
)
from pinbridge.store import ForgetReport, StoreError, migrate_store
from pinbridge.transform import Transformer, TransformResult

__all__ = ["main"]


def _require_tokens(settings: Settings) -> None:
    """Every destination's token, for the commands that talk to Pinterest."""
    try:
        require_tokens(settings)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
@click.version_option(__version__, prog_name="pinbridge")
def main() -> None:
    """pinbridge: a self-hosted gateway to the Pinterest API for Conversions."""


@main.command()
@config_option
@click.option(
    "--now",
    type=int,
    default=None,
    help="Unix time to judge event times against (default: the clock); makes output repeatable.",
)
@click.option(
    "--source",
    type=click.Choice(["web", "app_ios", "app_android", "offline"]),
    default="web",
    show_default=True,
    help="action_source for events that neither give nor imply one.",
)
def transform(config_path: Path | None, now: int | None, source: str) -> None:
    """Transform JSON Lines events on stdin into Pinterest events on stdout.

    One output line per input line, in order: {"ok": true, "event": {...}, "warnings": [...]}
    (or "events": [...] when one input becomes several Pinterest events), or
    {"ok": false, "errors": [{"field": ..., "message": ...}]}. Blank lines are skipped.
    """
    settings = cli_settings(config_path)
    transformer = Transformer(settings.transform)
    run_transform(transformer, sys.stdin.buffer, sys.stdout.buffer, now=now, source=source)


def run_transform(
    transformer: Transformer, stdin: IO[bytes], stdout: IO[bytes], *, now: int | None, source: str
) -> None:
    """The loop behind ``pinbridge transform``, separate so that tests can drive it."""
    decode = msgspec.json.Decoder().decode
    encode = msgspec.json.Encoder().encode
    for line in stdin:
        if not line.strip():
            continue
        try:
            obj = decode(line)
        except msgspec.DecodeError as exc:
            result = TransformResult(ok=False, errors=[Problem("", f"not valid JSON: {exc}")])
        except UnicodeDecodeError as exc:
            message = f"not UTF-8 (byte {exc.start + 1} of the line); JSON must be UTF-8"
            result = TransformResult(ok=False, errors=[Problem("", message)])
        else:
            result = transformer(
                obj, now=int(time.time()) if now is None else now, default_source=source
            )
        stdout.write(encode(_line(result)))
        stdout.write(b"\n")
    stdout.flush()


def _line(result: TransformResult) -> dict[str, Any]:
    if not result.ok:
        return {"ok": False, "errors": result.errors, "warnings": result.warnings}
    if len(result.events) == 1:
        return {"ok": True, "event": result.events[0], "warnings": result.warnings}
    return {"ok": True, "events": result.events, "warnings": result.warnings}


# -- the running product -----------------------------------------------------------------------


def _serving_settings(config_path: Path | None) -> Settings:
    settings = cli_settings(config_path)
    configure_logging()
    return settings


@main.command()
@config_option
@click.option(
    "--host",
    default=None,
    help="Interface to listen on (default: PINBRIDGE_HOST, else [server] host, 127.0.0.1).",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port (default: PINBRIDGE_PORT, else [server] port, 8080).",
)
@click.option(
    "--no-sender",
    is_flag=True,
    help="Collector only: leave delivery to `pinbridge worker` processes (same store).",
)
def run(config_path: Path | None, host: str | None, port: int | None, no_sender: bool) -> None:
    """Run the collector and the sender in one process (or the collector alone).

    The address is --host/--port, else PINBRIDGE_HOST/PINBRIDGE_PORT, else [server] host and
    port (127.0.0.1:8080).
    """
    settings = _serving_settings(config_path)
    if no_sender and settings.embedded_emulator:
        raise click.BadParameter(
            "the embedded emulator is delivered to by this process's own sender only (a "
            "worker cannot reach it), so accepted events would never be sent: configure a "
            "destination ([[destinations]], or PINTEREST_AD_ACCOUNT_ID and "
            "PINTEREST_ACCESS_TOKEN) or leave --no-sender out",
            param_hint="--no-sender",
        )
    _require_tokens(settings)
    try:
        require_write_keys(settings)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    server = msgspec.structs.replace(
        settings.server, host=host or settings.server.host, port=port or settings.server.port
    )
    settings = msgspec.structs.replace(settings, server=server)
    _check_port(server.host, server.port)
    try:
        service = build_service(settings, with_sender=not no_sender)
    except StoreError as exc:
        raise store_unavailable(settings, exc) from None
    _print_banner(settings, service, sender=not no_sender)
    uvicorn.run(
        service.app,
        host=server.host,
        port=server.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        # Forwarded headers are pinbridge's to judge ([server] trusted_proxies): uvicorn's
        # own middleware would believe X-Forwarded-For from any loopback peer.
        proxy_headers=False,
    )


@main.command()
@config_option
def migrate(config_path: Path | None) -> None:
    """Bring the database's schema up to date (safe to run on a live deployment and from
    several nodes at once; PostgreSQL serialises migrators with an advisory lock)."""
    settings = cli_settings(config_path)
    try:
        version = migrate_store(settings.store.url)
    except StoreError as exc:
        raise store_unavailable(settings, exc) from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{store_location(settings)}: schema version {version}")


@main.command()
@config_option
def worker(config_path: Path | None) -> None:
    """Run the sender only (to scale delivery out beside `pinbridge run`). It serves no HTTP,
    so it needs the destinations' tokens but no write keys."""
    settings = _serving_settings(config_path)
    if settings.embedded_emulator:
        raise click.ClickException(
            "a worker needs a configured destination (PINTEREST_AD_ACCOUNT_ID and "
            "PINTEREST_ACCESS_TOKEN, or [[destinations]])"
        )
    _require_tokens(settings)
    try:
        service = build_service(settings, with_collector=False)
    except StoreError as exc:
        raise store_unavailable(settings, exc) from None
    destinations = ", ".join(
        f"{d.name} (ad account {d.ad_account_id} at {d.api_base}{', test mode' if d.test else ''})"
        for d in settings.destinations
    )
    click.echo(
        f"pinbridge {__version__} worker: sending to {destinations}; "
        f"store {store_location(settings)}",
        err=True,
    )
    asyncio.run(_serve_without_http(service))


async def _serve_without_http(service: Service) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with service.app.router.lifespan_context(service.app):
        await stop.wait()


def _check_port(host: str, port: int) -> None:
    """Refuse, before anything is opened or printed, an address that cannot be listened on.

    Bound as uvicorn binds (``SO_REUSEADDR``), so that only a socket that is listening
    there, not one closing, makes the port busy.
    """
    where = f"{host}:{port}"
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise click.ClickException(f"cannot listen on {where}: {exc.strerror}") from None
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise click.ClickException(
                        f"port {port} is in use ({where}): use --port, PINBRIDGE_PORT or "
                        "[server] port"
                    ) from None
                raise click.ClickException(f"cannot listen on {where}: {exc.strerror}") from None


def _print_banner(settings: Settings, service: Service, *, sender: bool = True) -> None:
    base = f"http://{settings.server.host}:{settings.server.port}"
    console = Console(stderr=True, soft_wrap=True)
    console.print(f"[bold]pinbridge {__version__}[/bold] on {base}")
    console.print(f"  collector    {base}/v1/track, /v1/batch, /v1/pinterest/events")
    if settings.server.write_keys:
        console.print("  write keys   from configuration (not shown)")
    else:
        console.print(
            f"  write key    {DEV_WRITE_KEY} (development default; set PINBRIDGE_WRITE_KEYS)"
        )
    console.print(f"  health       {base}/healthz")
    console.print(f"  store        {escape(store_location(settings))}")
    if not sender:
        console.print("  sender       off (--no-sender): `pinbridge worker` processes deliver")
    for destination in effective_destinations(settings):
        if service.embedded_emulator is not None:
            console.print(
                f"  destination  {destination.name}: the embedded emulator, ad account "
                f"{destination.ad_account_id}"
            )
            console.print(
                f"  delivered    {base}{EMULATOR_MOUNT}/_emulator/events"
                f"?ad_account_id={destination.ad_account_id}"
            )
        else:
            mode = " (test mode)" if destination.test else ""
            console.print(
                f"  destination  {destination.name}: ad account {destination.ad_account_id} "
                f"at {destination.api_base}{mode}"
            )


@main.command()
@config_option
@click.option("--reason", default=None, help="Only dead letters whose reason contains TEXT.")
@click.option(
    "--since", default=None, help="Only those dead since TIME (ISO-8601, epoch, or 2h, 3d)."
)
@click.option("--destination", default=None, help="Only this destination.")
def replay(
    config_path: Path | None, reason: str | None, since: str | None, destination: str | None
) -> None:
    """Send dead letters again (after the cause was fixed)."""
    settings = cli_settings(config_path)
    try:
        since_time = parse_since(since, now=time.time()) if since else None
    except ValueError:
        raise click.BadParameter(_since_forms(since), param_hint="--since") from None
    check_destination(settings, destination)
    require_database(settings)
    count = run_with_store(settings, _replay(settings, reason, since_time, destination))
    click.echo(f"{count:,} dead letters queued again.")


async def _replay(
    settings: Settings, reason: str | None, since: float | None, destination: str | None
) -> int:
    async with store_session(settings) as store:
        letters = await store.dead_letters(
            destination=destination, since=since, reason=reason, limit=10_000_000
        )
        done = 0
        with Progress(console=Console(stderr=True), transient=False) as progress:
            task = progress.add_task("replaying", total=len(letters))
            for start in range(0, len(letters), 1000):
                chunk = [letter.id for letter in letters[start : start + 1000]]
                done += await store.replay(chunk, now=time.time())
                progress.advance(task, len(chunk))
        return done


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(value: str) -> int | None:
    """Seconds of ``2h``, ``7d`` (s, m, h, d); ``None`` for anything else."""
    text = value.strip().lower()
    if text[:-1].isdigit() and text[-1:] in _UNITS:
        return int(text[:-1]) * _UNITS[text[-1]]
    return None


def _since_forms(value: object) -> str:
    """What ``--since`` takes, for its usage error."""
    return (
        "takes a time: ISO-8601 (2026-01-31 or 2026-01-31T12:00:00Z), an epoch number, "
        f"or a time ago (2h, 7d), not {value!r}"
    )


def configure_logging() -> None:
    """Key=value logs on stderr; no PII is ever logged (counts and reasons only)."""
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.format_exc_info,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


main.add_command(emulator)
for _command in DIAGNOSTIC_COMMANDS:  # status, quality, catalog, dashboard
    main.add_command(_command)


@main.command("import")
@config_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["csv", "jsonl"]),
    default=None,
    help="File format (default: from the extension).",
)
@click.option(
    "--map",
    "mappings",
    multiple=True,
    metavar="FIELD=COLUMN",
    help="Which column holds a field, e.g. --map email=Email --map value=Total.",
)
@click.option(
    "--event",
    "default_event",
    default="Order Completed",
    show_default=True,
    help="Input event name for rows without an event column.",
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the per-row report (default: FILE.report.csv).",
)
def import_(
    config_path: Path | None,
    file: Path,
    file_format: str | None,
    mappings: tuple[str, ...],
    default_event: str,
    report: Path | None,
) -> None:
    """Import offline conversions (CRM, point of sale) from a CSV or JSON Lines FILE.

    Exit status: 0 every row was accepted, already imported, dropped or ignored; 1 a row was
    rejected (the report says why, and the first ones are listed on stderr) or the file
    cannot be imported; 4 the database cannot be reached, or does not exist yet.
    """
    settings = cli_settings(config_path)
    file_format = file_format or (
        "jsonl" if file.suffix.lower() in (".jsonl", ".ndjson") else "csv"
    )
    try:
        columns = ColumnMap(dict(_pair(m) for m in mappings))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--map") from None
    report = report or file.with_name(file.name + ".report.csv")
    require_database(settings)
    try:
        total = count_rows(file, file_format)
    except NotUtf8Error as exc:
        raise click.ClickException(str(exc)) from None
    summary = run_with_store(
        settings, _import(settings, file, file_format, columns, default_event, report, total)
    )
    click.echo(
        f"{summary.rows:,} rows: {summary.accepted:,} accepted, {summary.duplicate:,} already "
        f"imported, {summary.rejected:,} rejected, {summary.dropped:,} dropped, "
        f"{summary.ignored:,} ignored; report: {report}"
    )
    where = store_location(settings)
    if summary.accepted:
        click.echo(
            f"Accepted events wait in {where} for `pinbridge run` (or a worker) on that "
            "store to deliver them."
        )
    else:
        click.echo(f"Store: {where}.")
    if summary.rejected:
        for number, reasons in summary.rejections:
            click.echo(f"row {number}: {reasons}", err=True)
        if summary.rejected > len(summary.rejections):
            click.echo(f"… and {summary.rejected - len(summary.rejections):,} more", err=True)
        raise click.ClickException(
            f"{summary.rejected:,} of {summary.rows:,} rows rejected (see {report}); fix them "
            "and import the file again: rows already imported are not sent twice"
        )


def _pair(mapping: str) -> tuple[str, str]:
    field, sep, column = mapping.partition("=")
    if not sep or not field.strip() or not column.strip():
        raise click.BadParameter(f"{mapping!r} is not FIELD=COLUMN", param_hint="--map")
    return field.strip(), column.strip()


async def _import(
    settings: Settings,
    file: Path,
    file_format: str,
    columns: ColumnMap,
    default_event: str,
    report_path: Path,
    total: int,
) -> ImportSummary:
    async with store_session(settings) as store:
        acceptor = build_acceptor(settings, store, dedup_window=IMPORT_DEDUP_WINDOW)
        with (
            file.open(encoding="utf-8-sig", newline="") as stream,
            report_path.open("w", encoding="utf-8", newline="") as report,
            Progress(console=Console(stderr=True)) as progress,
        ):
            task = progress.add_task("importing", total=total)
            summary = await import_rows(
                stream,
                file_format=file_format,
                columns=columns,
                acceptor=acceptor,
                report=report,
                now=time.time,
                default_event=default_event,
                progress=lambda n: progress.advance(task, n),
            )
        await store.add_accept_counts(acceptor.metrics.tally.drain())
        return summary


@main.command()
@config_option
@click.option("--email", "emails", multiple=True, help="The person's email address.")
@click.option("--phone", "phones", multiple=True, help="The person's phone number.")
@click.option("--user-id", "user_ids", multiple=True, help="The person's user id in your shop.")
@click.option("--anonymous-id", "anonymous_ids", multiple=True, help="An anonymous id of theirs.")
def forget(
    config_path: Path | None,
    emails: tuple[str, ...],
    phones: tuple[str, ...],
    user_ids: tuple[str, ...],
    anonymous_ids: tuple[str, ...],
) -> None:
    """Remove a person: identifiers, clicks, and every event of theirs (sent or not)."""
    if not (emails or phones or user_ids or anonymous_ids):
        raise click.UsageError("name the person: --email, --phone, --user-id or --anonymous-id")
    settings = cli_settings(config_path)
    keys, needles = person_keys(
        settings.transform.default_region,
        emails=emails,
        phones=phones,
        user_ids=user_ids,
        anonymous_ids=anonymous_ids,
    )
    require_database(settings)
    report = run_with_store(settings, _forget(settings, keys, needles))
    click.echo(
        f"Removed {report.persons} person(s), {report.identifiers} identifier(s), "
        f"{report.clicks} click(s) and {report.events} event(s), "
        f"{report.undelivered} of them not yet delivered."
    )


async def _forget(settings: Settings, keys: list[str], needles: list[str]) -> ForgetReport:
    async with store_session(settings) as store:
        return await store.forget(keys, needles)


@main.group()
def report() -> None:
    """Reports over what pinbridge has accepted."""


@report.command()
@config_option
@click.option(
    "--window",
    default="30d",
    show_default=True,
    help="Click attribution window (1d, 7d, 14d or 30d).",
)
@click.option(
    "--since",
    default="30d",
    show_default=True,
    help="Conversions accepted since TIME (ISO-8601, epoch, or 2h, 7d).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for the dashboard, scripts).")
def attribution(config_path: Path | None, window: str, since: str, as_json: bool) -> None:
    """Conversions and their value per campaign, by last Pinterest click."""
    settings = cli_settings(config_path)
    now = time.time()
    window_seconds = _duration(window)
    if window_seconds is None or round(window_seconds / 86400) not in CLICK_WINDOW_DAYS:
        raise click.BadParameter(
            f"takes a click attribution window: 1d, 7d, 14d or 30d, not {window!r}",
            param_hint="--window",
        )
    try:
        since_time = parse_since(since, now=now)
    except ValueError:
        raise click.BadParameter(_since_forms(since), param_hint="--since") from None
    require_database(settings)
    rows = run_with_store(
        settings, _attribution(settings, since_time, window_seconds, quiet=as_json)
    )
    if as_json:
        click.echo(msgspec.json.encode(rows).decode())
        return
    table = Table(title=f"Conversions by campaign (last click within {window})")
    for column in ("campaign", "event", "conversions", "value", "currency", "click → conversion"):
        table.add_column(column, justify="right" if column in ("conversions", "value") else "left")
    for row in rows:
        delays = ", ".join(f"{k}: {v}" for k, v in sorted(row.by_delay.items()))
        table.add_row(
            row.campaign, row.event_name, f"{row.conversions:,}", row.value, row.currency, delays
        )
    Console().print(table if rows else "No conversions in that period.")


async def _attribution(
    settings: Settings, since: float, window: float, *, quiet: bool
) -> list[AttributionRow]:
    async with store_session(settings) as store:
        rows = await store.attribution_rows(since=since, window=window)
    with Progress(console=Console(stderr=True), disable=quiet, transient=True) as progress:
        task = progress.add_task("attributing", total=len(rows))

        def counted() -> Iterator[tuple[Any, ...]]:
            for number, row in enumerate(rows, start=1):
                if number % 1000 == 0:
                    progress.advance(task, 1000)
                yield row

        return attribute(counted())
