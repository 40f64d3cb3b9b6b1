"""pinbridge: a self-hosted gateway to the Pinterest API for Conversions."""

from __future__ import annotations

__version__ = "0.1.0"
