"""``pinbridge dead``: dead letters, newest first, with why Pinterest refused them."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import click
import msgspec
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from pinbridge.cli_common import (
    check_destination,
    cli_settings,
    config_option,
    fits,
    parse_since,
    require_database,
    run_with_store,
)
from pinbridge.config import Settings, store_session
from pinbridge.store import DeadLetter

__all__ = [
    "DeadList",
    "ReasonCount",
    "ReasonSummary",
    "dead",
    "dead_rows",
    "print_dead",
    "print_reasons",
    "reason_counts",
]

#: How many dead letters ``pinbridge dead`` lists unless told (``--limit``).
DEFAULT_DEAD_LIMIT: Final = 50
#: Read every matching dead letter (the store's ``limit``), as ``replay`` does.
_EVERY: Final = 10_000_000


class DeadList(msgspec.Struct, frozen=True):
    """``pinbridge dead --json``: the newest matching dead letters, and how many match."""

    total: int
    dead_letters: list[DeadLetter]


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


def dead_rows(letters: Sequence[DeadLetter], *, limit: int) -> list[DeadLetter]:
    """The ``limit`` most recently dead of ``letters``, newest first."""
    newest = sorted(letters, key=lambda letter: (letter.dead_at, letter.id), reverse=True)
    return newest[:limit]


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
@config_option
@click.option("--destination", default=None, help="Only this destination.")
@click.option("--reason", default=None, help="Only dead letters whose reason contains TEXT.")
@click.option(
    "--since", default=None, help="Only those dead since TIME (ISO-8601, epoch, or 2h, 3d)."
)
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
    settings = cli_settings(config_path)
    try:
        since_time = parse_since(since, now=time.time()) if since else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    check_destination(settings, destination)
    require_database(settings)
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
    table = Table(title=f"dead letters, newest first ({len(rows):,} of {report.total:,})")
    for header in ("dead at", "destination", "event", "event id", "HTTP", "attempts", "reason"):
        numeric = header in ("HTTP", "attempts")
        table.add_column(header, no_wrap=True, justify="right" if numeric else "left")
    for row in rows:
        cells = [_when(row.dead_at), row.destination, row.event_name, row.event_id, _http(row)]
        table.add_row(*(escape(cell) for cell in (*cells, str(row.attempts), row.reason)))
    if fits(table, console):
        console.print(table)
    else:
        console.print(f"[bold]{table.title}[/bold]")
        for row in rows:
            tried = f", {row.attempts} attempts"
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


def _http(row: DeadLetter) -> str:
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
