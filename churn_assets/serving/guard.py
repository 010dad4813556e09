"""What every request passes before the API reads it: the bearer token and a size limit.

Both are checked here, ahead of routing and JSON parsing, so a request without the token is
answered 401 whatever its body, and a body larger than any score request is refused (413) before
it is buffered whole.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# A score request with every feature is a few kilobytes.
MAX_BODY_BYTES = 64 * 1024
# Paths that need the token when one is set; health and the API description stay open.
PROTECTED_PREFIX = "/v1/"


class Guard:
    """Pure ASGI middleware: the token on ``/v1/``, and at most ``max_body_bytes`` of body."""

    def __init__(self, app: ASGIApp, token: str | None, max_body_bytes: int = MAX_BODY_BYTES):
        self.app = app
        self.token = token.encode() if token else None
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}
        protected = self.token and scope["path"].startswith(PROTECTED_PREFIX)
        if protected and not self._authorised(headers.get("authorization", b"")):
            await _answer(send, 401, "a valid bearer token is required", bearer=True)
            return
        declared = headers.get("content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await _answer(send, 413, f"request body over {self.max_body_bytes} bytes")
            return
        body = await self._read(receive)
        if body is None:
            await _answer(send, 413, f"request body over {self.max_body_bytes} bytes")
            return
        await self.app(scope, replay(body, receive), send)

    def _authorised(self, header: bytes) -> bool:
        scheme, _, given = header.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.token)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it passes the limit (a chunked body has no length)."""
        return await read_body(receive, self.max_body_bytes)


async def read_body(receive: Receive, limit: int | None = None) -> bytes | None:
    """The whole body, or None once it passes ``limit`` bytes (None: no limit)."""
    chunks: list[bytes] = []
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break  # disconnected: the app sees an empty body and the client is gone
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the buffered body once, then what the client sends next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _answer(send: Send, status: int, detail: str, bearer: bool = False) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send_json(send, status, body, [(b"www-authenticate", b"Bearer")] if bearer else [])


async def send_json(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """One whole JSON response: ``body`` already encoded, ``headers`` after the content's."""
    sent = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": sent + (headers or [])})
    await send({"type": "http.response.body", "body": body})
