"""Diagnostic commands: ``status``, ``quality``, ``catalog load``, ``dashboard passwd`` (and
``dead``, from :mod:`pinbridge.cli_dead`).

Registered on the ``pinbridge`` group by :mod:`pinbridge.cli`. Each command parses its
options, calls :mod:`pinbridge.diagnostics` (the same code the dashboard uses) and prints
with rich, or JSON with ``--json``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import msgspec
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pinbridge.catalog import EmptyFeedError, FeedReport, check_replacement, read_feed
from pinbridge.cli_common import (
    EXIT_STORE,
    StoreUnavailable,
    cli_settings,
    config_option,
    fits,
    parse_period,
    parse_since,
    require_database,
    run_with_store,
    store_unavailable,
)
from pinbridge.cli_dead import dead
from pinbridge.config import Settings, require_tokens, store_session
from pinbridge.diagnostics import (
    DEAD_LETTER_WINDOW,
    EqsFetcher,
    QualityReport,
    StatusReport,
    quality_report,
    status_report,
)
from pinbridge.errors import ConfigError
from pinbridge.pinterest.client import PinterestClient
from pinbridge.quality import EVENT_DATA, IDENTIFIERS
from pinbridge.service import EMULATOR_MOUNT, effective_destinations
from pinbridge.store import Store
from pinbridge.web.auth import MIN_PASSWORD_LENGTH, hash_password

__all__ = [
    "COMMANDS",
    "EXIT_STORE",
    "StoreUnavailable",
    "parse_period",
    "parse_since",
    "run_with_store",
    "store_unavailable",
]

# -- status -------------------------------------------------------------------------------------


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def status(config_path: Path | None, as_json: bool) -> None:
    """Queue, dead letters, last hour's outcomes and latencies, per destination.

    Exit status: 0 healthy; 2 a destination is stopped (Pinterest refused its credentials);
    3 dead letters were added in the last hour; 4 the database cannot be reached or used.
    Usable as a health check.
    """
    settings = cli_settings(config_path)
    require_database(settings)
    report = run_with_store(settings, _status(settings))
    if as_json:
        click.echo(msgspec.json.encode(report).decode())
    else:
        print_status(report, Console())
    sys.exit(report.exit_code)


async def _status(settings: Settings) -> StatusReport:
    async with store_session(settings) as store:
        return await status_report(store, now=time.time())


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def print_status(report: StatusReport, console: Console) -> None:
    """The tables of ``pinbridge status``.

    Names, figures and a stopped destination's reason are never cut: when the table does not
    fit the console (80 columns, or a pipe), each destination is printed as a block instead.
    """
    table = Table(title="pinbridge delivery")
    columns = ("destination", "queued", "in flight", "retrying", "delivered 1h", "dead letters")
    for column in (*columns, "dead 1h", "state"):
        left = column in ("destination", "state")
        table.add_column(column, justify="left" if left else "right", no_wrap=True)
    for row in report.destinations:
        recent = report.dead_last_hour.get(row.destination, 0)
        table.add_row(
            escape(row.destination),
            f"{row.queued:,}",
            f"{row.in_flight:,}",
            f"{row.retrying:,}",
            f"{row.delivered:,}",
            f"{row.dead:,}",
            f"[yellow]{recent:,}[/yellow]" if recent else "0",
            _state(row.paused_reason),
        )
    if not report.destinations:
        console.print("No events yet.")
    elif fits(table, console):
        console.print(table)
    else:
        _print_destination_blocks(report, console)
    hour = Table(title="last hour")
    hour.add_column("input outcome")
    hour.add_column("count", justify="right")
    for key, count in sorted(report.outcomes_last_hour.items()):
        hour.add_row(key, f"{count:,}")
    for key, count in sorted(report.dropped_last_hour.items()):
        hour.add_row(f"  dropped: {key}", f"{count:,}")
    for key, count in sorted(report.answers_last_hour.items()):
        hour.add_row(f"answer {key}", f"{count:,}")
    if hour.row_count:
        console.print(hour)
    console.print(
        f"event → delivery p50 {_seconds(report.event_to_delivery_p50)}, "
        f"p95 {_seconds(report.event_to_delivery_p95)}\n"
        f"acceptance → delivery p50 {_seconds(report.accept_to_delivery_p50)}, "
        f"p95 {_seconds(report.accept_to_delivery_p95)}"
    )
    if report.exit_code == 3:
        minutes = int(DEAD_LETTER_WINDOW // 60)
        console.print(f"[yellow]dead letters added in the last {minutes} min[/yellow]")


def _state(paused_reason: str | None) -> str:
    if paused_reason:
        return f"[red]stopped: {escape(paused_reason)}[/red]"
    return "[green]ok[/green]"


def _print_destination_blocks(report: StatusReport, console: Console) -> None:
    """The delivery table as one block per destination, for a narrow console: the name and
    state on one line (wrapped, never cut), the figures on the next two."""
    console.print("[bold]pinbridge delivery[/bold]")
    for row in report.destinations:
        recent = report.dead_last_hour.get(row.destination, 0)
        console.print(f"[bold]{escape(row.destination)}[/bold]: {_state(row.paused_reason)}")
        console.print(
            f"  queued {row.queued:,}, in flight {row.in_flight:,}, retrying {row.retrying:,}"
        )
        last_hour = f"[yellow]{recent:,}[/yellow]" if recent else "0"
        console.print(
            f"  delivered in the last hour {row.delivered:,}, dead letters {row.dead:,} "
            f"({last_hour} in the last hour)"
        )


# -- quality ------------------------------------------------------------------------------------


@click.command()
@config_option
@click.option("--since", default="24h", show_default=True, help="Period: 1h, 24h, 7d, ...")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the dashboard's figures).")
@click.option("--no-eqs", is_flag=True, help="Do not ask Pinterest for its Event Quality Score.")
@click.option(
    "--server",
    default=None,
    help="URL of the running `pinbridge run`, whose embedded emulator answers the EQS "
    "when no destination is configured (default: [server] host and port).",
)
def quality(
    config_path: Path | None, since: str, as_json: bool, no_eqs: bool, server: str | None
) -> None:
    """Signal quality: coverage, resilience level, EQS, dedup rate, freshness, catalog."""
    settings = cli_settings(config_path)
    if not no_eqs:
        try:
            require_tokens(settings)
        except ConfigError as exc:
            raise click.ClickException(
                f"{exc} (needed to ask Pinterest for the Event Quality Score; --no-eqs does "
                "without)"
            ) from exc
    require_database(settings)
    try:
        period = parse_period(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    report = run_with_store(
        settings, _quality(settings, period, with_eqs=not no_eqs, server=server)
    )
    if as_json:
        click.echo(msgspec.json.encode(report).decode())
        return
    print_quality(report, Console())


async def _quality(
    settings: Settings, period: float, *, with_eqs: bool, server: str | None
) -> QualityReport:
    clients: list[PinterestClient] = []
    eqs: dict[str, EqsFetcher] = {}
    if with_eqs:
        running = server or f"http://{settings.server.host}:{settings.server.port}"
        for destination in effective_destinations(settings):
            base = destination.api_base
            if settings.embedded_emulator:  # the emulator lives in `pinbridge run`
                base = f"{running.rstrip('/')}{EMULATOR_MOUNT}/v5"
            client = PinterestClient(token=destination.token, base_url=base, timeout=10.0)
            clients.append(client)
            eqs[destination.name] = _fetcher(client, destination.ad_account_id)
    try:
        async with store_session(settings) as store:
            now = time.time()
            return await quality_report(store, since=now - period, now=now, eqs=eqs)
    finally:
        for client in clients:
            await client.aclose()


def _fetcher(client: PinterestClient, account: str) -> EqsFetcher:
    async def fetch(lookback: str) -> Any:
        return await client.conversion_eqs(account, lookback_period=lookback)

    return fetch


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def print_quality(report: QualityReport, console: Console) -> None:
    """The tables of ``pinbridge quality``."""
    dedup = report.dedup
    console.print(
        f"Local dedup rate {_pct(dedup.rate)} ({dedup.duplicate:,} duplicates, "
        f"{dedup.accepted:,} accepted; 5 to 20 % is typical with the Tag and the API)"
    )
    for d in report.destinations:
        colour = {"Poor": "red", "Good": "yellow", "Great": "green"}[d.resilience.level]
        console.print(
            f"\n[bold]{d.destination}[/bold]: {d.events:,} events, resilience "
            f"[{colour}]{d.resilience.level}[/{colour}]; {_pct(d.freshness.offline_share)} "
            f"delivered over 1 h late (offline)"
        )
        for reason in d.resilience.reasons:
            console.print(f"  - {reason}")
        for step in d.resilience.next_steps:
            console.print(f"  → {step}")
        if d.eqs_error:
            console.print(f"  Pinterest EQS: unavailable ({d.eqs_error})")
        elif d.eqs is not None:
            statuses = ", ".join(f"{k} {v}" for k, v in sorted(d.eqs_status.items()))
            console.print(f"  Pinterest EQS: {statuses or 'no scores yet'}")
            for key, value in sorted(d.eqs_dedup.items()):
                console.print(f"  Pinterest overlap (dedup) {key}: {_pct(value)}")
    # One column per destination and event, one row per signal: fits a terminal.
    table = Table(title="coverage (% of events)")
    table.add_column("signal")
    for c in report.coverage:
        table.add_column(f"{c.destination}\n{c.event_name}\n({c.events:,})", justify="right")
    for key in IDENTIFIERS:
        table.add_row(key, *(f"{100 * c.identifiers[key]:.0f}" for c in report.coverage))
    for key in EVENT_DATA:
        table.add_row(key, *(f"{100 * c.event_data[key]:.0f}" for c in report.coverage))
    console.print(table if report.coverage else "Nothing sent in this period.")
    if report.catalog_products:
        catalog = Table(title=f"product ids not in the catalog ({report.catalog_products:,})")
        for column in ("event", "product ids", "unknown", "share", "examples"):
            catalog.add_column(column)
        for m in report.catalog:
            catalog.add_row(
                m.event_name,
                f"{m.product_ids:,}",
                f"{m.unknown:,}",
                _pct(m.share_unknown),
                ", ".join(m.examples),
            )
        console.print(catalog)


# -- catalog ------------------------------------------------------------------------------------


@click.group()
def catalog() -> None:
    """The product catalog: load a feed, so that product ids can be checked against it."""


@catalog.command("load")
@config_option
@click.argument("feed", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "feed_format",
    type=click.Choice(["csv", "tsv", "xml"]),
    default=None,
    help="Feed format (default: from the extension).",
)
@click.option("--append", is_flag=True, help="Add to the kept catalog instead of replacing it.")
@click.option(
    "--allow-empty",
    is_flag=True,
    help="Let a feed without a good product empty the kept catalog (refused otherwise).",
)
@click.option("--dry-run", is_flag=True, help="Check the feed only; keep nothing.")
def catalog_load(
    config_path: Path | None,
    feed: Path,
    feed_format: str | None,
    append: bool,
    allow_empty: bool,
    dry_run: bool,
) -> None:
    """Check a Pinterest product FEED (CSV, TSV, XML/RSS) and keep its product ids.

    Bad rows are listed (row, id, field, why) and skipped; the good ones are kept. Exits 1
    when any row was bad, or when a feed without a good product would replace a non-empty
    catalog (nothing is changed then, unless --allow-empty). A feed with under half the kept
    catalog's products is kept with a warning.
    """
    settings = cli_settings(config_path)
    try:
        report = read_feed(feed, feed_format=feed_format)
    except (ValueError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{feed}: {exc}") from None
    if not dry_run:
        require_database(settings)
    console = Console()
    try:
        kept, warning = (
            (0, None)
            if dry_run
            else run_with_store(settings, _load(settings, report, append, allow_empty))
        )
    except EmptyFeedError as exc:
        _print_feed(report, None, dry_run, console)
        raise click.ClickException(f"{feed}: {exc}") from None
    _print_feed(report, kept, dry_run, console)
    if warning:
        click.echo(f"Warning: {warning}.", err=True)
    if report.problems:
        sys.exit(1)


async def _load(
    settings: Settings, report: FeedReport, append: bool, allow_empty: bool
) -> tuple[int, str | None]:
    async with store_session(settings) as store:
        return await _keep(store, report, append, allow_empty)


async def _keep(
    store: Store, report: FeedReport, append: bool, allow_empty: bool
) -> tuple[int, str | None]:
    """Keep the feed's products; a replacing feed is first judged against the kept catalog.

    Raises:
        EmptyFeedError: an empty feed would replace a non-empty catalog (nothing changed).
    """
    warning = None
    if not append:
        current, _ = await store.catalog_size()
        warning = check_replacement(current, len(report.products), allow_empty=allow_empty)
    kept = await store.catalog_load(report.products, now=time.time(), replace=not append)
    return kept, warning


def _print_feed(report: FeedReport, kept: int | None, dry_run: bool, console: Console) -> None:
    if report.problems:
        table = Table(title=f"{report.bad_rows:,} bad rows (first 50 problems)")
        for column in ("row", "id", "field", "problem"):
            table.add_column(column)
        for problem in report.problems[:50]:
            table.add_row(str(problem.row), problem.id, problem.field, problem.message)
        console.print(table)
    if dry_run:
        action = "checked (nothing kept)"
    else:
        action = "nothing kept" if kept is None else f"{kept:,} products kept"
    console.print(
        f"{report.rows:,} rows: {len(report.products):,} good, {report.bad_rows:,} bad; {action}."
    )


# -- dashboard ----------------------------------------------------------------------------------


@click.group()
def dashboard() -> None:
    """The dashboard's users."""


@dashboard.command("passwd")
@click.argument("user")
@click.password_option("--password", prompt="Password", help="Read from a prompt when absent.")
def dashboard_passwd(user: str, password: str) -> None:
    """Hash a password for USER; prints the line to put under [dashboard] in pinbridge.toml."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise click.BadParameter(
            f"use at least {MIN_PASSWORD_LENGTH} characters", param_hint="password"
        )
    hashed = hash_password(password)
    click.echo("[dashboard]")
    click.echo(f'users = {{ "{_toml_key(user)}" = "{hashed}" }}')


def _toml_key(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _commands() -> Iterator[click.Command]:
    yield from (status, dead, quality, catalog, dashboard)


#: The commands :mod:`pinbridge.cli` adds to the ``pinbridge`` group.
COMMANDS = tuple(_commands())
