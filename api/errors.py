"""Client errors in one shape: `{"detail": [{"field", "error"}...]}`, never a 500 for bad input."""

from __future__ import annotations

from http import HTTPStatus

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException
from starlette.routing import compile_path

from api.database_errors import database_unavailable

# The part of the request a framework-level error is about: a 404 is about the path, a 413 about the body.
_FIELD_OF_STATUS = {400: "body", 404: "path", 405: "method", 413: "body", 415: "body"}


class ClientError(Exception):
    def __init__(self, status_code: int, errors: list[dict[str, object]], headers: dict[str, str] | None = None):
        super().__init__(errors)
        self.status_code = status_code
        self.errors = errors
        self.headers = headers


def field_error(status_code: int, field: str, error: str, headers: dict[str, str] | None = None) -> ClientError:
    return ClientError(status_code, [{"field": field, "error": error}], headers)


def _location(loc: tuple) -> str:
    return ".".join(str(part) for part in loc)


def _allowed_methods(request: Request) -> list[str]:
    """The methods the OpenAPI document gives this path (HEAD with GET). Starlette's own Allow names only the
    first route's: GET alone for a rule, whose PUT and DELETE are routes of their own. As OpenAPI matches, a
    concrete path (/api/events/batch) wins over a templated one (/api/events/{event_id})."""
    matching = [
        (template.count("{"), operations)
        for template, operations in request.app.openapi()["paths"].items()
        if compile_path(template)[0].match(request.scope["path"])
    ]
    fewest = min((parameters for parameters, _ in matching), default=0)
    methods = {method.upper() for parameters, operations in matching if parameters == fewest for method in operations}
    return sorted(methods | {"HEAD"} if "GET" in methods else methods)


def _framework_error(request: Request, exc: HTTPException) -> tuple[str, dict[str, str] | None]:
    """The message and headers of an error the framework raised: a reason instead of its bare status phrase."""
    if exc.status_code == 400 and exc.__cause__ is not None:  # a body FastAPI could not parse, and why
        return f"could not be read: {exc.__cause__}", exc.headers
    if exc.detail != HTTPStatus(exc.status_code).phrase:  # a message of its own
        return exc.detail, exc.headers
    if exc.status_code == 404:
        return f"no resource at {request.url.path}", exc.headers
    if exc.status_code == 405:
        # Routes left out of the document (the dashboard, /docs) keep the framework's Allow.
        allowed = _allowed_methods(request) or (exc.headers or {}).get("Allow", "").split(", ")
        headers = {**(exc.headers or {}), "Allow": ", ".join(allowed)}
        return f"{request.method} is not allowed on {request.url.path}; allowed: {', '.join(allowed)}", headers
    return exc.detail, exc.headers


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ClientError)
    async def _client_error(_: Request, exc: ClientError) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content={"detail": exc.errors}, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _location(e["loc"]), "error": e["msg"]} for e in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": errors})

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        error, headers = _framework_error(request, exc)
        body = {"detail": [{"field": _FIELD_OF_STATUS.get(exc.status_code, "request"), "error": error}]}
        return JSONResponse(status_code=exc.status_code, content=body, headers=headers)

    @app.exception_handler(OperationalError)
    @app.exception_handler(psycopg.OperationalError)
    async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
        if not database_unavailable(exc):
            raise exc  # psycopg files a limit the data broke under OperationalError too: a server error here
        body = {"detail": [{"field": "database", "error": "the database is unavailable; retry later"}]}
        return JSONResponse(status_code=503, content=body)
