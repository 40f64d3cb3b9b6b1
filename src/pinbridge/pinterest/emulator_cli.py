"""``pinbridge emulator``: run the local Pinterest emulator under uvicorn.

The main CLI group registers ``emulator`` from here. Tokens given with ``--token`` are never
printed: the start-up summary shows ``***`` in their place.
"""

from __future__ import annotations

import logging
import re

import click
import uvicorn

from pinbridge.pinterest.emulator import (
    DropLogFilter,
    EmulatorConfig,
    FaultSettings,
    create_emulator_app,
)

__all__ = ["emulator", "parse_rate_limit", "parse_tokens"]

_RATE: re.Pattern[str] = re.compile(r"\s*(\d+)\s*(?:/\s*min(?:ute)?)?\s*")


def parse_tokens(values: tuple[str, ...]) -> dict[str, frozenset[str]] | None:
    """``("TOKEN=1,2", ...)`` -> ``{"TOKEN": {"1", "2"}}``; no values -> ``None`` (any token).

    Raises:
        click.BadParameter: without ``=``, with an empty token or without accounts. The
            message never repeats the token.
    """
    if not values:
        return None
    tokens: dict[str, set[str]] = {}
    for value in values:
        token, sep, accounts = value.partition("=")
        ids = {a.strip() for a in accounts.split(",") if a.strip()}
        if not sep or not token.strip() or not ids:
            raise click.BadParameter("expected TOKEN=ACCOUNT[,ACCOUNT...]", param_hint="--token")
        tokens.setdefault(token.strip(), set()).update(ids)
    return {token: frozenset(ids) for token, ids in tokens.items()}


def parse_rate_limit(value: str) -> int:
    """``"5000"`` or ``"5000/min"`` -> 5000 calls per minute (0 disables the limit)."""
    match = _RATE.fullmatch(value)
    if match is None:
        raise click.BadParameter("expected N or N/min", param_hint="--rate-limit")
    return int(match.group(1))


@click.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8090, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--token",
    "tokens",
    multiple=True,
    metavar="TOKEN=ACCOUNT[,ACCOUNT...]",
    help="Accept TOKEN for these ad accounts (repeatable). Without it, any token works.",
)
@click.option(
    "--rate-limit", default="5000/min", show_default=True, help="Calls per minute per account."
)
@click.option(
    "--test-rate-limit",
    default=10,
    show_default=True,
    type=click.IntRange(min=0),
    help="?test=true calls per second per token (Pinterest: 10 per app); 0 disables it.",
)
@click.option(
    "--strict/--lenient",
    default=True,
    show_default=True,
    help="Lenient accepts unknown keys inside events, with a warning.",
)
@click.option(
    "--advertiser-event",
    "advertiser_events",
    multiple=True,
    metavar="NAME",
    help="An advertiser-defined event name to accept (repeatable).",
)
@click.option("--error-rate", default=0.0, show_default=True, type=click.FloatRange(0, 1))
@click.option(
    "--error-status",
    "error_statuses",
    multiple=True,
    type=click.IntRange(500, 599),
    metavar="STATUS",
    help="A status (500-599) injected errors pick from (repeatable). Default: 500 and 503.",
)
@click.option("--latency-ms", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--drop-rate", default=0.0, show_default=True, type=click.FloatRange(0, 1))
@click.option("--burst-429", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--seed", default=None, type=int, help="Seed of the fault-injection randomness.")
def emulator(
    host: str,
    port: int,
    tokens: tuple[str, ...],
    rate_limit: str,
    test_rate_limit: int,
    strict: bool,
    advertiser_events: tuple[str, ...],
    error_rate: float,
    error_statuses: tuple[int, ...],
    latency_ms: int,
    drop_rate: float,
    burst_429: int,
    seed: int | None,
) -> None:
    """Run a local emulator of Pinterest's Conversions API (POST /v5/ad_accounts/{id}/events)."""
    config = EmulatorConfig(
        tokens=parse_tokens(tokens),
        rate_limit_per_minute=parse_rate_limit(rate_limit),
        test_requests_per_second=test_rate_limit,
        strict=strict,
        advertiser_defined_event_names=frozenset(advertiser_events),
        faults=FaultSettings(
            error_rate=error_rate,
            error_statuses=error_statuses or FaultSettings().error_statuses,
            latency_ms=latency_ms,
            drop_rate=drop_rate,
            burst_429=burst_429,
        ),
        seed=seed,
    )
    click.echo(f"Pinterest emulator on http://{host}:{port}/v5 ({_describe(config)})")
    server_config = uvicorn.Config(
        create_emulator_app(config), host=host, port=port, lifespan="off", ws="none"
    )
    # After uvicorn.Config, which configures its loggers: hide tracebacks of injected drops.
    logging.getLogger("uvicorn.error").addFilter(DropLogFilter())
    uvicorn.Server(server_config).run()


def _describe(config: EmulatorConfig) -> str:
    if config.tokens is None:
        who = "any bearer token"
    else:
        who = "; ".join(f"*** -> {','.join(sorted(ids))}" for ids in config.tokens.values())
    faults = config.faults
    rate = config.rate_limit_per_minute
    test_rate = config.test_requests_per_second
    return (
        f"tokens: {who}; {'strict' if config.strict else 'lenient'}; "
        f"{f'rate limit {rate}/min' if rate else 'no rate limit'}, "
        f"{f'{test_rate}/s in test mode' if test_rate else 'no test-mode limit'}; "
        f"error rate {faults.error_rate}, "
        f"latency {faults.latency_ms} ms, drop rate {faults.drop_rate}, "
        f"burst 429 {faults.burst_429}"
    )
