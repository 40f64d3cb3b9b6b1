"""Dropped connections: how the emulator fakes them, on a real socket and in process.

ASGI has no "close the connection now" message. The emulator sends the response head
(``200``, ``content-length: 2``) and then raises ``ConnectionDropped``:

* under uvicorn, an exception after the head makes it close the socket at once, so the client
  reads a head and then end-of-file: httpx2 raises ``RemoteProtocolError`` ("peer closed
  connection without sending complete message body"), exactly as for a real drop. Without the
  head, uvicorn would answer 500 instead. ``DropLogFilter`` keeps uvicorn from logging a
  traceback for each of these.
* through ``httpx2.ASGITransport`` the exception reaches the caller as is.
  ``EmulatorTransport`` (an ``ASGITransport``) turns it into ``httpx2.RemoteProtocolError``,
  so a client under test sees the same exception as over a socket.
"""

from __future__ import annotations

import logging

import httpx2

__all__ = ["ConnectionDropped", "DropLogFilter", "EmulatorTransport"]


class ConnectionDropped(Exception):
    """Raised by the emulator app to drop the connection without a complete response."""


class DropLogFilter(logging.Filter):
    """Hides uvicorn's "Exception in ASGI application" records caused by injected drops."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ConnectionDropped)


class EmulatorTransport(httpx2.ASGITransport):
    """An in-process transport to the emulator where injected drops look like real ones."""

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            return await super().handle_async_request(request)
        except ConnectionDropped:
            raise httpx2.RemoteProtocolError(
                "Server disconnected without sending a complete response.", request=request
            ) from None
