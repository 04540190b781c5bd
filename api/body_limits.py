"""Request bodies are capped while they stream in: a declared Content-Length past the cap is refused before any
body is read, and a body that grows past it stops the request at that chunk (multipart uploads included, which
the framework parses before a route runs). Both are a 413 in the usual error shape."""

from __future__ import annotations

import re
from collections.abc import Mapping

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_DIGITS = re.compile(r"[0-9]+")
_MAX_PLAUSIBLE_DIGITS = 18  # more digits than any cap; spares int() a client's absurdly long header


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int):
        super().__init__(status_code=413, detail=f"larger than {limit} bytes")


def declared_larger(headers: Headers, limit: int) -> bool:
    """Whether the request's Content-Length announces more than `limit` bytes."""
    declared = headers.get("content-length", "")
    return bool(_DIGITS.fullmatch(declared)) and (len(declared) > _MAX_PLAUSIBLE_DIGITS or int(declared) > limit)


class BodyLimits:
    """ASGI middleware: at most `per_path[path]` body bytes for those paths, `default` for every other."""

    def __init__(self, app: ASGIApp, *, default: int, per_path: Mapping[str, int]):
        self.app = app
        self.default = default
        self.per_path = per_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope["path"], self.default)
        if declared_larger(Headers(scope=scope), limit):
            error = BodyTooLarge(limit)
            body = {"detail": [{"field": "body", "error": error.detail}]}
            await JSONResponse(status_code=error.status_code, content=body)(scope, receive, send)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)  # the exception handlers answer it like any client error
            return message

        await self.app(scope, counted_receive, send)
