"""Pinterest's official OpenAPI description, read from outside the repository.

The file is never copied here: it is read from ``$PINTEREST_OPENAPI`` or, by default, from
``../shared/pinterest-api/openapi.json`` beside the checkout. A missing file fails the test
that needs it (never a skip), whether or not ``PINBRIDGE_REQUIRE_SPEC=1`` is set.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator

__all__ = ["conversion_events_validator", "load_openapi", "schema_validator", "spec_path"]

_DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "pinterest-api" / "openapi.json"


def spec_path() -> Path:
    """Where the description is read from."""
    return Path(os.environ.get("PINTEREST_OPENAPI", str(_DEFAULT)))


@functools.cache
def _load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as file:
        spec: dict[str, Any] = json.load(file)
    return spec


def load_openapi() -> dict[str, Any]:
    """The parsed description; fails the calling test when the file is missing."""
    path = spec_path()
    if not path.is_file():
        required = os.environ.get("PINBRIDGE_REQUIRE_SPEC") == "1"
        pytest.fail(
            f"Pinterest's OpenAPI description is missing at {path} "
            f"(PINBRIDGE_REQUIRE_SPEC={'1' if required else 'unset'}); set PINTEREST_OPENAPI.",
            pytrace=False,
        )
    return _load(path)


def schema_validator(name: str) -> OAS30Validator:
    """An OAS 3.0 validator for ``#/components/schemas/<name>``, ``$ref``s resolved in the spec."""
    spec = load_openapi()
    return OAS30Validator(
        {"components": spec["components"], "$ref": f"#/components/schemas/{name}"}
    )


def conversion_events_validator() -> OAS30Validator:
    """The validator of the request body of ``POST /v5/ad_accounts/{id}/events``."""
    return schema_validator("ConversionEvents")
