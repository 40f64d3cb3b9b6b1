"""Diagnostic commands: ``status``, ``dead``, ``quality``, ``catalog load``, ``dashboard passwd``.

Registered on the ``pinbridge`` group by :mod:`pinbridge.cli`. Each command parses its
options, calls :mod:`pinbridge.diagnostics` (the same code the dashboard uses) and prints
with rich, or JSON with ``--json``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import click
import msgspec
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from pinbridge.catalog import EmptyFeedError, FeedReport, check_replacement, read_feed
from pinbridge.config import Settings, load_settings, store_session
from pinbridge.diagnostics import (
    DEAD_LETTER_WINDOW,
    EqsFetcher,
    QualityReport,
    StatusReport,
    quality_report,
    status_report,
)
from pinbridge.errors import ConfigError
from pinbridge.inputs.fields import parse_time
from pinbridge.pinterest.client import PinterestClient
from pinbridge.quality import EVENT_DATA, IDENTIFIERS
from pinbridge.service import EMULATOR_MOUNT, effective_destinations
from pinbridge.store import DeadLetter, Store, StoreError
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

#: Exit status of a command whose database cannot be opened or used (``status`` uses 2 and 3
#: for its findings, click 1 for other errors and 2 for bad usage).
EXIT_STORE: Final = 4
_T = TypeVar("_T")

#: A width no table reaches: measuring with it gives a table's natural width.
_UNBOUNDED: Final = 1_000_000
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="PINBRIDGE_CONFIG",
    help="pinbridge.toml to read (env: PINBRIDGE_CONFIG; default ./pinbridge.toml if present).",
)


def parse_period(value: str) -> float:
    """``30m``, ``24h``, ``7d`` → seconds.

    Raises:
        ValueError: not a number followed by s, m, h or d.
    """
    text = value.strip().lower()
    if text[:-1].isdigit() and text[-1:] in _UNITS and int(text[:-1]) > 0:
        return float(int(text[:-1]) * _UNITS[text[-1]])
    raise ValueError(f"{value!r} is not a period like 30m, 24h or 7d")


def _settings(config_path: Path | None) -> Settings:
    try:
        return load_settings(config_path, os.environ)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


class StoreUnavailable(click.ClickException):
    """The database cannot be opened or used: one line naming it (password masked) and the
    reason, exit status :data:`EXIT_STORE`."""

    exit_code = EXIT_STORE


def run_with_store(settings: Settings, command: Coroutine[Any, Any, _T]) -> _T:
    """``asyncio.run(command)``, a failing database reported as :class:`StoreUnavailable`."""
    try:
        return asyncio.run(command)
    except StoreError as exc:
        raise store_unavailable(settings, exc) from None


def store_unavailable(settings: Settings, exc: Exception) -> StoreUnavailable:
    """The one-line error for ``exc``, naming the database unless the message already does."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    where = settings.store.display_url
    return StoreUnavailable(message if where in message else f"{where}: {message}")


def _require_database(settings: Settings) -> None:
    url = settings.store.url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise click.ClickException(f"no database at {url} yet: start `pinbridge run` first")


# -- status -------------------------------------------------------------------------------------


@click.command()
@_config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def status(config_path: Path | None, as_json: bool) -> None:
    """Queue, dead letters, last hour's outcomes and latencies, per destination.

    Exit status: 0 healthy; 2 a destination is stopped (Pinterest refused its credentials);
    3 dead letters were added in the last hour; 4 the database cannot be reached or used.
    Usable as a health check.
    """
    settings = _settings(config_path)
    _require_database(settings)
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
    elif _fits(table, console):
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


def _fits(table: Table, console: Console) -> bool:
    """Whether ``table`` fits the console without wrapping or cutting a cell."""
    unbounded = console.options.update_width(_UNBOUNDED)
    return console.measure(table, options=unbounded).maximum <= console.width


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


# -- dead letters -------------------------------------------------------------------------------

#: How many dead letters ``pinbridge dead`` lists unless told (``--limit``).
DEFAULT_DEAD_LIMIT: Final = 50
#: Read every matching dead letter (the store's ``limit``), as ``replay`` does.
_EVERY: Final = 10_000_000


class DeadRow(msgspec.Struct, frozen=True):
    """One dead letter as ``pinbridge dead --json`` prints it (``attempts``: ``None`` when the
    store does not report it)."""

    id: int
    destination: str
    event_id: str
    event_name: str
    event_time: int
    http_status: int | None
    reason: str
    attempts: int | None
    dead_at: float


class DeadList(msgspec.Struct, frozen=True):
    """``pinbridge dead --json``: the newest matching dead letters, and how many match."""

    total: int
    dead_letters: list[DeadRow]


class ReasonCount(msgspec.Struct, frozen=True):
    """How many matching dead letters have one reason, where, and the newest one's time."""

    reason: str
    count: int
    destinations: list[str]
    last_dead_at: float


class ReasonSummary(msgspec.Struct, frozen=True):
    """``pinbridge dead --by-reason --json``: one entry per reason (see :func:`reason_counts`)."""

    total: int
    by_reason: list[ReasonCount]


def parse_since(value: str, *, now: float) -> float:
    """``--since`` as ``replay`` takes it: a time ago (``30m``, ``2h``, ``3d``), an ISO-8601
    time (naive is UTC) or epoch seconds or milliseconds → Unix time.

    Raises:
        ValueError: none of these.
    """
    try:
        return now - parse_period(value)
    except ValueError:
        pass
    try:
        return float(parse_time(value))
    except ValueError:
        raise ValueError(
            f"{value!r} is not a time (ISO-8601, epoch) or a time ago (30m, 2h, 3d)"
        ) from None


def dead_rows(letters: Sequence[DeadLetter], *, limit: int) -> list[DeadRow]:
    """The ``limit`` most recently dead of ``letters``, newest first."""
    newest = sorted(letters, key=lambda letter: (letter.dead_at, letter.id), reverse=True)
    return [
        DeadRow(
            id=letter.id,
            destination=letter.destination,
            event_id=letter.event_id,
            event_name=letter.event_name,
            event_time=letter.event_time,
            http_status=letter.http_status,
            reason=letter.reason,
            # Not in the store's DeadLetter yet: shown as soon as the store reports it.
            attempts=letter.attempts,
            dead_at=letter.dead_at,
        )
        for letter in newest[:limit]
    ]


def reason_counts(letters: Sequence[DeadLetter]) -> list[ReasonCount]:
    """``letters`` grouped by their exact reason, the most frequent first, then the one that
    died last."""
    groups: dict[str, list[DeadLetter]] = {}
    for letter in letters:
        groups.setdefault(letter.reason, []).append(letter)
    counts = [
        ReasonCount(
            reason=reason,
            count=len(group),
            destinations=sorted({letter.destination for letter in group}),
            last_dead_at=max(letter.dead_at for letter in group),
        )
        for reason, group in groups.items()
    ]
    return sorted(counts, key=lambda c: (-c.count, -c.last_dead_at, c.reason))


@click.command()
@_config_option
@click.option("--destination", default=None, help="Only this destination.")
@click.option("--reason", default=None, help="Only dead letters whose reason contains TEXT.")
@click.option("--since", default=None, help="Only those dead since TIME (ISO-8601, or 2h, 3d).")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=DEFAULT_DEAD_LIMIT,
    show_default=True,
    help="List at most N, the newest (the count and --by-reason cover all).",
)
@click.option("--by-reason", is_flag=True, help="Count them per reason instead of listing them.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def dead(
    config_path: Path | None,
    destination: str | None,
    reason: str | None,
    since: str | None,
    limit: int,
    by_reason: bool,
    as_json: bool,
) -> None:
    """Dead letters, newest first, with why Pinterest refused them.

    Filters combine, as `pinbridge replay`'s do (same --destination, --reason, --since), so
    what is listed here is what that replay would send again. Exit status: 0; 4 the
    database cannot be reached or used.
    """
    settings = _settings(config_path)
    try:
        since_time = parse_since(since, now=time.time()) if since else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    names = [d.name for d in effective_destinations(settings)]
    if destination is not None and destination not in names:
        raise click.BadParameter(
            f"no destination {destination!r} is configured; the destinations are: "
            + ", ".join(names),
            param_hint="--destination",
        )
    _require_database(settings)
    letters = run_with_store(settings, _dead(settings, destination, reason, since_time))
    report: DeadList | ReasonSummary
    if by_reason:
        report = ReasonSummary(total=len(letters), by_reason=reason_counts(letters))
    else:
        report = DeadList(total=len(letters), dead_letters=dead_rows(letters, limit=limit))
    if as_json:
        click.echo(msgspec.json.encode(report).decode())
    elif isinstance(report, ReasonSummary):
        print_reasons(report, Console())
    else:
        print_dead(report, Console())


async def _dead(
    settings: Settings, destination: str | None, reason: str | None, since: float | None
) -> list[DeadLetter]:
    # The store lists oldest first under its limit: every match is read, as replay does,
    # so that the newest can be shown and every one counted.
    async with store_session(settings) as store:
        return await store.dead_letters(
            destination=destination, since=since, reason=reason, limit=_EVERY
        )


def _when(value: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(value)) + " UTC"


def print_dead(report: DeadList, console: Console) -> None:
    """The list of ``pinbridge dead``: a table, or one block per dead letter when the table
    does not fit (nothing is ever cut)."""
    rows = report.dead_letters
    if not rows:
        console.print("No dead letters.")
        return
    known = any(row.attempts is not None for row in rows)
    table = Table(title=f"dead letters, newest first ({len(rows):,} of {report.total:,})")
    headers = ("dead at", "destination", "event", "event id", "HTTP", "attempts", "reason")
    for header in headers:
        if header != "attempts" or known:
            table.add_column(
                header, no_wrap=True, justify="right" if header in ("HTTP", "attempts") else "left"
            )
    for row in rows:
        cells = [_when(row.dead_at), row.destination, row.event_name, row.event_id, _http(row)]
        cells += [str(row.attempts) if row.attempts is not None else "-"] if known else []
        table.add_row(*(escape(cell) for cell in (*cells, row.reason)))
    if _fits(table, console):
        console.print(table)
    else:
        console.print(f"[bold]{table.title}[/bold]")
        for row in rows:
            tried = f", {row.attempts} attempts" if row.attempts is not None else ""
            console.print(
                f"{_when(row.dead_at)}  [bold]{escape(row.destination)}[/bold]  "
                f"{escape(row.event_name)}  {escape(row.event_id)}  HTTP {_http(row)}{tried}"
            )
            console.print(Padding(Text(row.reason), (0, 0, 0, 2), expand=False))
    if report.total > len(rows):
        console.print(
            f"{report.total - len(rows):,} older not shown: --limit to list more, "
            "--by-reason to count them per reason."
        )


def _http(row: DeadRow) -> str:
    return "-" if row.http_status is None else str(row.http_status)


def print_reasons(report: ReasonSummary, console: Console) -> None:
    """``pinbridge dead --by-reason``: count per reason, most frequent first."""
    if not report.by_reason:
        console.print("No dead letters.")
        return
    table = Table(title=f"dead letters by reason ({report.total:,})")
    table.add_column("count", justify="right", no_wrap=True)
    table.add_column("reason", overflow="fold")
    table.add_column("destinations", overflow="fold")
    for entry in report.by_reason:
        table.add_row(
            f"{entry.count:,}", escape(entry.reason), escape(", ".join(entry.destinations))
        )
    console.print(table)
    console.print(
        'After fixing the cause: pinbridge replay --reason "TEXT" (reason contains TEXT).'
    )


# -- quality ------------------------------------------------------------------------------------


@click.command()
@_config_option
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
    settings = _settings(config_path)
    _require_database(settings)
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
@_config_option
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
    settings = _settings(config_path)
    try:
        report = read_feed(feed, feed_format=feed_format)
    except (ValueError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{feed}: {exc}") from None
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
