"""Suite-wide fixtures: a clean environment and the anyio backend."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PINBRIDGE_* or PINTEREST_* variable of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith(("PINBRIDGE_", "PINTEREST_")) and name not in (
            "PINTEREST_OPENAPI",
            "PINBRIDGE_REQUIRE_SPEC",
        ):
            monkeypatch.delenv(name)


@pytest.fixture(name="anyio_backend")
def _anyio_backend() -> str:
    return "asyncio"
