"""A local emulator of Pinterest's ``POST /v5/ad_accounts/{ad_account_id}/events``.

It checks requests as Pinterest does (auth, path, ``test`` flag, schema, then each event), and
answers with Pinterest's bodies. On top: a per-account rate limit, Pinterest-side dedup,
fault injection, ``conversion_eqs``, and an inspection API under ``/_emulator``.

Modules: ``config`` (settings), ``validation`` and ``schema_errors`` (checks and their
messages), ``state`` (records, dedup, rate limit, stats), ``quality`` (EQS), ``drops``
(dropped connections), ``app`` (the Starlette app).
"""

from __future__ import annotations

from pinbridge.pinterest.emulator.app import create_emulator_app
from pinbridge.pinterest.emulator.config import EmulatorConfig, FaultSettings
from pinbridge.pinterest.emulator.drops import ConnectionDropped, DropLogFilter, EmulatorTransport

__all__ = [
    "ConnectionDropped",
    "DropLogFilter",
    "EmulatorConfig",
    "EmulatorTransport",
    "FaultSettings",
    "create_emulator_app",
]
