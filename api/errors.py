"""Client errors in one shape: `{"detail": [{"field", "error"}...]}`, never a 500 for bad input."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


class ClientError(Exception):
    def __init__(self, status_code: int, errors: list[dict[str, object]]):
        super().__init__(errors)
        self.status_code = status_code
        self.errors = errors


def field_error(status_code: int, field: str, error: str) -> ClientError:
    return ClientError(status_code, [{"field": field, "error": error}])


def _location(loc: tuple) -> str:
    return ".".join(str(part) for part in loc)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ClientError)
    async def _client_error(_: Request, exc: ClientError) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content={"detail": exc.errors})

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _location(e["loc"]), "error": e["msg"]} for e in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": errors})
