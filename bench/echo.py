"""The baseline for ``bench/ingest.sh``: a bare Starlette app that decodes a JSON body and answers.

It does what every JSON endpoint must (read the body, decode it with msgspec, encode an
answer) and nothing pinbridge adds (auth, transform, hashing, the durable store), so the ratio
of pinbridge's requests/s to this app's is the cost of pinbridge's own work. Run under uvicorn
with the options ``pinbridge run`` uses (uvloop, httptools, no access log).
"""

from __future__ import annotations

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


async def echo(request: Request) -> Response:
    """Decode the body and answer ``{"success": true, "received": <top-level keys>}``."""
    body = _decode(await request.body())
    answer = {"success": True, "received": len(body) if isinstance(body, dict) else 0}
    return Response(_encode(answer), media_type="application/json")


app = Starlette(routes=[Route("/{path:path}", echo, methods=["POST"])])
