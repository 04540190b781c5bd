"""Rate limits on ingestion and on reads (LEADSCORE_RATE_LIMIT_INGEST / _READ), through slowapi: per client key
(a configured bearer token), else per client address; over the limit a 429 with Retry-After."""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Awaitable, Callable

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security.utils import get_authorization_scheme_param
from slowapi import Limiter
from slowapi.errors import RateLimitExceeded
from slowapi.util import get_remote_address

from leadscore_pipeline.settings import Settings


class RateLimits:
    """slowapi's limiter (in memory: limits count per API process) and one shared limit per kind of request."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.limiter = Limiter(key_func=self.client_key, storage_uri="memory://")
        self._checks = {
            "ingest": self._shared_check(settings.rate_limit_ingest, "ingest"),
            "read": self._shared_check(settings.rate_limit_read, "read"),
        }

    def _shared_check(self, limit: str | None, scope: str) -> Callable[..., Awaitable[None]] | None:
        if not limit:
            return None

        async def check(request: Request) -> None:
            """Nothing to do: slowapi's wrapper counts the request, and raises once over the limit."""

        check.__name__ = f"{scope}_rate_limit"  # slowapi files a decorated function's limits under its name
        return self.limiter.shared_limit(limit, scope=scope)(check)

    def client_key(self, request: Request) -> str:
        """A configured key, hashed (clients sharing it share its allowance), else the address: a made-up token
        gets no allowance of its own."""
        scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
        if scheme.lower() == "bearer" and token:
            known = (self.settings.read_key, self.settings.ingest_key, self.settings.configured_admin_token())
            if any(key and hmac.compare_digest(token.encode(), key.encode()) for key in known):
                return "key:" + hashlib.sha256(token.encode()).hexdigest()[:32]
        return "address:" + get_remote_address(request)

    async def count(self, request: Request, scope: str) -> None:
        check = self._checks[scope]
        if check is not None:
            await check(request=request)


async def limit_ingestion(request: Request) -> None:
    await request.app.state.rate_limits.count(request, "ingest")


async def limit_reads(request: Request) -> None:
    await request.app.state.rate_limits.count(request, "read")


async def rate_limited(request: Request, exc: RateLimitExceeded) -> JSONResponse:
    """Over the limit: the API's error shape, and when the window the client used up ends."""
    limit, key = request.state.view_rate_limit  # what slowapi counted the request against
    reset_at, _ = request.app.state.rate_limits.limiter.limiter.get_window_stats(limit, *key)
    retry_after = max(1, math.ceil(reset_at - time.time()))
    error = f"more than {exc.detail} from this client; retry in {retry_after} s"
    return JSONResponse(
        status_code=429,
        content={"detail": [{"field": "rate_limit", "error": error}]},
        headers={"Retry-After": str(retry_after)},
    )


IngestRateLimitDep = Depends(limit_ingestion)
ReadRateLimitDep = Depends(limit_reads)
