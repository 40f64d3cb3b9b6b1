"""pinbridge's exceptions, one tree:

    PinbridgeError
     ├── ConfigError       a configuration file, flag or environment variable is wrong
     └── StoreError        the database failed (cannot be opened or reached, a commit failed)

Exceptions of libraries underneath are translated where they are caught, with the original
kept as ``__cause__``. Pinterest's side (``pinbridge.pinterest``) has its own tree, because
that layer imports nothing of ours.
"""

from __future__ import annotations

__all__ = ["ConfigError", "PinbridgeError", "StoreError"]


class PinbridgeError(Exception):
    """Base of pinbridge's errors; the class docstring is the default message."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigError(PinbridgeError):
    """The configuration is invalid."""


class StoreError(PinbridgeError):
    """The database failed; the original error is ``__cause__``."""
