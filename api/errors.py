"""Client errors in one shape: `{"detail": [{"field", "error"}...]}`, never a 500 for bad input."""

from __future__ import annotations

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

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


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ClientError)
    async def _client_error(_: Request, exc: ClientError) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content={"detail": exc.errors}, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _location(e["loc"]), "error": e["msg"]} for e in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": errors})

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        body = {"detail": [{"field": _FIELD_OF_STATUS.get(exc.status_code, "request"), "error": exc.detail}]}
        return JSONResponse(status_code=exc.status_code, content=body, headers=exc.headers)

    @app.exception_handler(OperationalError)
    @app.exception_handler(psycopg.OperationalError)
    async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
        if not database_unavailable(exc):
            raise exc  # psycopg files a limit the data broke under OperationalError too: a server error here
        body = {"detail": [{"field": "database", "error": "the database is unavailable; retry later"}]}
        return JSONResponse(status_code=503, content=body)
