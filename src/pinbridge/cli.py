"""The ``pinbridge`` command. Settings are built here, once, from flags, file and environment."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import IO, Any

import click
import msgspec

from pinbridge import __version__
from pinbridge.config import Settings, load_settings
from pinbridge.errors import ConfigError
from pinbridge.problems import Problem
from pinbridge.transform import Transformer, TransformResult

__all__ = ["main"]

_config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="PINBRIDGE_CONFIG",
    help="pinbridge.toml to read (env: PINBRIDGE_CONFIG; default ./pinbridge.toml if present).",
)


def _settings(config_path: Path | None) -> Settings:
    try:
        return load_settings(config_path, os.environ)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
@click.version_option(__version__, prog_name="pinbridge")
def main() -> None:
    """pinbridge: a self-hosted gateway to the Pinterest API for Conversions."""


@main.command()
@_config_option
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
    settings = _settings(config_path)
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
