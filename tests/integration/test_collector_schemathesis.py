"""The collector's own OpenAPI description, fuzzed with schemathesis against the real app.

The app is the product's (``build_service`` with a SQLite file and the embedded emulator),
run in process. Every operation gets a bounded number of generated requests, with the write
key and without it; no answer may be a 5xx, and every answer must be one the description
lists, in the shape it gives.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.applications import Starlette

from pinbridge.accept import ItemResult
from pinbridge.config import ServerSettings, Settings, StoreSettings
from pinbridge.service import build_service

KEY = "wk-fuzz"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()}
CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
)


def _description() -> dict[str, object]:
    text = resources.files("pinbridge.web").joinpath("openapi.json").read_text()
    return json.loads(text)  # type: ignore[no-any-return]


@pytest.fixture(name="app")
def _app(tmp_path: Path) -> Iterator[Starlette]:
    """The product's app on a fresh SQLite file.

    schemathesis starts the app's lifespan on first use and ends it after each test, which
    closes the store: every test gets its own app.
    """
    service = build_service(
        Settings(
            server=ServerSettings(
                write_keys=(KEY,), max_body_bytes=64_000, max_events_per_request=20
            ),
            store=StoreSettings(url=f"sqlite:///{tmp_path / 'pb.db'}"),
            embedded_emulator=True,
        )
    )
    yield service.app
    asgi.shutdown_lifespans()


#: Loaded from the packaged file; ``test_served_as_shipped`` shows the app serves the same.
schema = schemathesis.openapi.from_path(str(resources.files("pinbridge.web") / "openapi.json"))


class TestDescription:
    def test_served_as_shipped(self, app: Starlette) -> None:
        """``GET /openapi.json`` serves the file shipped in the package."""
        with asgi.get_client(app) as client:
            answer = client.get("/openapi.json")
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/json"
        assert answer.json() == _description()

    def test_results_match_the_structs(self) -> None:
        """The published result schemas are what msgspec makes of the Structs that answer."""
        _, components = msgspec.json.schema_components(
            [ItemResult], ref_template="#/components/schemas/{name}"
        )
        published = _description()["components"]["schemas"]  # type: ignore[index]
        for name, generated in components.items():
            assert published[name] == generated, name


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=2_000,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors(app: Starlette, case: schemathesis.Case) -> None:
    """No generated request gets a 5xx, or an answer the description does not list."""
    case.call_and_validate(app=app, headers=AUTH, checks=list(CHECKS))
