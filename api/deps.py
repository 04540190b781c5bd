"""Request dependencies: settings, a pooled database connection per request, the live score stream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Connection
from sqlalchemy.exc import TimeoutError as PoolTimeout

from api.errors import field_error
from api.stream import ScoreStream
from leadscore_pipeline.db.engine import get_engine
from leadscore_pipeline.settings import Settings, get_settings

POOL_BUSY_RETRY_AFTER_SECONDS = 1


def get_connection() -> Iterator[Connection]:
    # One transaction per request; committed when the handler returns, before the response is sent.
    with get_engine().begin() as conn:
        yield conn


def reject_unstorable_parameters(request: Request) -> None:
    """For every route: a path or query parameter holding NUL is a 422 naming it. Postgres text cannot hold
    NUL, so no stored value can match it, and psycopg refuses to send it."""
    named = [("path", request.path_params.items()), ("query", request.query_params.multi_items())]
    for where, parameters in named:
        for name, value in parameters:
            if isinstance(value, str) and "\x00" in value:
                raise field_error(422, f"{where}.{name}", "must not contain NUL (\\u0000)")


def get_score_stream(request: Request) -> ScoreStream:
    return request.app.state.score_stream  # created in the app's lifespan, one per process


async def database_busy(_request: Request, _exc: PoolTimeout) -> JSONResponse:
    """Every pooled connection stayed busy past the pool timeout: a 503 the client may retry, not a 500."""
    settings = get_settings()
    limit = settings.db_pool_size + settings.db_max_overflow
    error = (
        f"all {limit} database connections of this API process are busy "
        f"(waited {settings.db_pool_timeout_seconds:g} s); retry shortly"
    )
    return JSONResponse(
        status_code=503,
        content={"detail": [{"field": "database", "error": error}]},
        headers={"Retry-After": str(POOL_BUSY_RETRY_AFTER_SECONDS)},
    )


ConnDep = Annotated[Connection, Depends(get_connection)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ScoreStreamDep = Annotated[ScoreStream, Depends(get_score_stream)]
# Postgres OFFSET is a bigint: a larger number is the client's mistake (422), not a database error (500).
OffsetQuery = Annotated[int, Query(ge=0, le=2**63 - 1)]
