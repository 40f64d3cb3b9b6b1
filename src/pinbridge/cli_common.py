"""What the command modules share: the ``--config`` option, settings, the store's exit status.

:mod:`pinbridge.cli`, :mod:`pinbridge.cli_diagnostics` and :mod:`pinbridge.cli_dead` use it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, Final, TypeVar

import click
from rich.console import Console
from rich.table import Table

from pinbridge.config import Settings, load_settings, sqlite_path
from pinbridge.errors import ConfigError, StoreError
from pinbridge.inputs.fields import parse_time
from pinbridge.service import effective_destinations

__all__ = [
    "EXIT_STORE",
    "StoreUnavailable",
    "check_destination",
    "cli_settings",
    "config_option",
    "fits",
    "parse_period",
    "parse_since",
    "require_database",
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
config_option = click.option(
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


def cli_settings(config_path: Path | None) -> Settings:
    """The settings of a command's ``--config``, a bad one a one-line click error."""
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


def require_database(settings: Settings) -> None:
    """Refuse to go on without the SQLite file: only ``run``, ``worker`` and ``migrate``
    create one, so that a command run from another directory never fills a new, empty
    database that no server reads (exit status 4, as for a store that cannot be reached)."""
    path = sqlite_path(settings)
    if path is not None and not path.exists():
        raise StoreUnavailable(
            f"no database at {path} yet: start `pinbridge run` first (a relative "
            "sqlite:/// path is read from the working directory; PINBRIDGE_DATABASE_URL or "
            "[store] url names another)"
        )


def fits(table: Table, console: Console) -> bool:
    """Whether ``table`` fits the console without wrapping or cutting a cell."""
    unbounded = console.options.update_width(_UNBOUNDED)
    return console.measure(table, options=unbounded).maximum <= console.width


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


def check_destination(settings: Settings, destination: str | None) -> None:
    """A ``--destination`` that is configured, else a usage error listing those that are."""
    names = [d.name for d in effective_destinations(settings)]
    if destination is not None and destination not in names:
        raise click.BadParameter(
            f"no destination {destination!r} is configured; the destinations are: "
            + ", ".join(names),
            param_hint="--destination",
        )
