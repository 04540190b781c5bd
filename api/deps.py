"""Request dependencies: settings, pooled database connections (a transaction for writers, autocommit for
readers), the live score stream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import psycopg
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Connection

from api.errors import field_error
from api.stream import ScoreStream
from leadscore_pipeline.db.engine import get_engine
from leadscore_pipeline.db.urls import libpq_url
from leadscore_pipeline.settings import Settings, get_settings

POOL_BUSY_RETRY_AFTER_SECONDS = 1
DOWN_PROBE_TIMEOUT_SECONDS = 2
READ_POOL_KEPT_OPEN = 2  # connections the read pool opens at start and keeps; more are opened under load


def get_connection() -> Iterator[Connection]:
    # One transaction per request; committed when the handler returns, before the response is sent.
    with get_engine().begin() as conn:
        yield conn


def read_pool(url: str) -> AsyncConnectionPool:
    """The pool reads are served from: autocommit, so a read is one round trip (no BEGIN/COMMIT), and async, so a
    read never waits for a worker thread. Bounded like the writers' pool; opened in the app's lifespan."""
    settings = get_settings()
    most = settings.db_pool_size + settings.db_max_overflow
    return AsyncConnectionPool(
        libpq_url(url),
        min_size=min(READ_POOL_KEPT_OPEN, most),
        max_size=most,
        timeout=settings.db_pool_timeout_seconds,
        kwargs={"autocommit": True},
        configure=_plan_for_the_values_at_hand,
        open=False,
    )


async def _plan_for_the_values_at_hand(conn: AsyncConnection) -> None:
    # psycopg prepares a statement run often; a generic plan of it could not use the trigram index for a search.
    await conn.execute("set plan_cache_mode = force_custom_plan")


async def get_reader(request: Request) -> AsyncIterator[AsyncConnection]:
    async with request.app.state.read_pool.connection() as conn:
        yield conn


async def reject_unstorable_parameters(request: Request) -> None:
    """For every route: a path or query parameter holding NUL is a 422 naming it. Postgres text cannot hold
    NUL, so no stored value can match it, and psycopg refuses to send it."""
    named = [("path", request.path_params.items()), ("query", request.query_params.multi_items())]
    for where, parameters in named:
        for name, value in parameters:
            if isinstance(value, str) and "\x00" in value:
                raise field_error(422, f"{where}.{name}", "must not contain NUL (\\u0000)")


# The same rule, as the OpenAPI document states it for a parameter that is a string of no stricter pattern.
NO_NUL_PATTERN = "^[^\\u0000]*$"


def document_unstorable_parameters(app: FastAPI) -> None:
    """Have the app's OpenAPI document say what reject_unstorable_parameters enforces."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        built = app.openapi_schema is not None
        document = build()
        if not built:  # once: FastAPI keeps the document it built
            for operations in document["paths"].values():
                for operation in operations.values():
                    for parameter in operation.get("parameters", []):
                        if parameter["in"] in ("path", "query"):
                            schema = parameter["schema"]
                            for option in schema.get("anyOf", [schema]):
                                if option.get("type") == "string" and not {"pattern", "enum"} & option.keys():
                                    option["pattern"] = NO_NUL_PATTERN
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def get_score_stream(request: Request) -> ScoreStream:
    return request.app.state.score_stream  # created in the app's lifespan, one per process


async def _reachable(conninfo: str) -> bool:
    try:
        probe = await AsyncConnection.connect(conninfo, connect_timeout=DOWN_PROBE_TIMEOUT_SECONDS)
    except psycopg.OperationalError:
        return False
    await probe.close()
    return True


async def database_busy(_request: Request, _exc: Exception) -> JSONResponse:
    """No pooled connection came free within the pool timeout: a 503 the client may retry, not a 500."""
    settings = get_settings()
    limit = settings.db_pool_size + settings.db_max_overflow
    return _unavailable(
        f"all {limit} database connections of this API process are busy "
        f"(waited {settings.db_pool_timeout_seconds:g} s); retry shortly"
    )


async def read_pool_timeout(request: Request, exc: Exception) -> JSONResponse:
    """The read pool's wait ended: busy like any pool, unless no connection can be opened at all (one probe)."""
    if await _reachable(request.app.state.read_pool.conninfo):
        return await database_busy(request, exc)
    return _unavailable("the database is unavailable (no connection could be opened); retry later")


def _unavailable(error: str) -> JSONResponse:
    return JSONResponse(
        status_code=503,
        content={"detail": [{"field": "database", "error": error}]},
        headers={"Retry-After": str(POOL_BUSY_RETRY_AFTER_SECONDS)},
    )


ConnDep = Annotated[Connection, Depends(get_connection)]
ReaderDep = Annotated[AsyncConnection, Depends(get_reader)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ScoreStreamDep = Annotated[ScoreStream, Depends(get_score_stream)]
# Postgres OFFSET is a bigint: a larger number is the client's mistake (422), not a database error (500).
OffsetQuery = Annotated[int, Query(ge=0, le=2**63 - 1)]
