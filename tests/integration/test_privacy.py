"""What the store keeps of an input with URL-encoded personal data: none of it."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator

import pytest

from tests.integration.test_collector import Harness, track

pytestmark = pytest.mark.anyio
URL = "https://shop.example/thanks?email=zelda.raw%40example.org&epik=EPIK1&utm_source=pin"


@pytest.fixture(name="h")
async def _harness(tmp_path) -> AsyncIterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    await harness.http.aclose()
    await harness.store.aclose()


class TestEncodedPersonalData:
    async def test_kept_input_holds_no_encoded_email(self, h):
        """A page URL and a property with ``%40`` for ``@`` are redacted in the kept input."""
        message = track(
            context={"ip": "203.0.113.9", "userAgent": "UA", "page": {"url": URL}},
            properties={
                "order_id": "1234567890",
                "revenue": 5,
                "customer_email_enc": "zelda.raw%40example.org",
                "fullName": "Zelda Raw",
                "note": "call me 4155550199",
            },
        )
        response = await h.post("/v1/track", message)
        assert response.status_code == 200, response.text
        db = sqlite3.connect(h.store.path)
        [(kept,)] = db.execute("SELECT input FROM events").fetchall()
        text = bytes(kept).decode() if not isinstance(kept, str) else kept
        assert "zelda" not in text.lower() and "4155550199" not in text
        assert '"order_id":"1234567890"' in text
