"""Settings: built once from ``pinbridge.toml`` and the environment, then passed down.

Only :mod:`pinbridge.cli` calls :func:`load_settings`; no module below it reads the
environment. The environment wins over the file. Unknown keys in the file are errors, so a
typo never silently falls back to a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import msgspec

from pinbridge.errors import ConfigError
from pinbridge.transform import Transformer, TransformOptions

__all__ = ["DEFAULT_CONFIG_FILE", "Settings", "load_settings"]

DEFAULT_CONFIG_FILE = Path("pinbridge.toml")


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Everything configurable, by section of ``pinbridge.toml``."""

    transform: TransformOptions = TransformOptions()


def load_settings(path: Path | None, env: Mapping[str, str]) -> Settings:
    """Read the TOML file (when given, or ``./pinbridge.toml`` when it exists) and the environment.

    Raises:
        ConfigError: the file is missing, is not TOML, or has a wrong key or value.
    """
    data: dict[str, object] = {}
    if path is None and DEFAULT_CONFIG_FILE.is_file():
        path = DEFAULT_CONFIG_FILE
    if path is not None:
        try:
            data = msgspec.toml.decode(path.read_bytes())
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
        except msgspec.DecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    region = env.get("PINBRIDGE_DEFAULT_REGION")
    if region:
        transform = dict(data.get("transform", {}) or {})  # type: ignore[call-overload]
        transform["default_region"] = region
        data["transform"] = transform
    try:
        settings = msgspec.convert(data, Settings)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path or 'configuration'}: {exc}") from exc
    _check(settings)
    return settings


def _check(settings: Settings) -> None:
    options = settings.transform
    if options.unmapped not in ("custom", "drop"):
        raise ConfigError("transform.unmapped must be 'custom' or 'drop'")
    try:
        Transformer(options)
    except ValueError as exc:
        raise ConfigError(f"transform: {exc}") from exc
