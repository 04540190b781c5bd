"""Refusing what another web site can make a browser send: a Host name not on the allow-list (DNS rebinding), a
state-changing request from a foreign Origin, and a body a plain HTML form can send (text/plain, multipart, url-encoded)
where the route takes JSON."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request
from fastapi.params import Form
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import field_error

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Signed server-to-server bodies: the signature proves the sender, so a sender that names no content type is heard.
SIGNED_BODY_PATHS = ("/api/webhook",)
DEFAULT_PORTS = {"http": 80, "https": 443}


def _host_name(host: str) -> str | None:
    try:
        name = urlsplit(f"//{host}").hostname
    except ValueError:
        return None
    return name.rstrip(".") if name else None


def _host_and_port(netloc: str, scheme: str) -> tuple[str | None, int | None]:
    try:
        parts = urlsplit(f"//{netloc}")
        return parts.hostname, parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None, None


def same_origin(origin: str, host: str) -> bool:
    """Whether `origin` names the host and port the request was sent to. The scheme is left out on purpose: behind
    a TLS proxy the API sees http, the browser says https, and one host and port serve one site either way."""
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    if parts.scheme not in DEFAULT_PORTS or not parts.netloc:
        return False  # "null" (a sandboxed frame, a file) or anything unparseable is no origin of ours
    return _host_and_port(parts.netloc, parts.scheme) == _host_and_port(host, parts.scheme)


class CrossSiteGuard:
    """Pure ASGI, outermost: a refused request is answered before any of its body is read."""

    def __init__(self, app: ASGIApp, allowed_hosts: list[str]) -> None:
        self.app = app
        self.allowed_hosts = [host.lower() for host in allowed_hosts]

    def _host_allowed(self, name: str | None) -> bool:
        if "*" in self.allowed_hosts:
            return True
        if name is None:
            return False
        return any(
            name == pattern or (pattern.startswith("*.") and name.endswith(pattern[1:]))
            for pattern in self.allowed_hosts
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if not self._host_allowed(_host_name(host)):
            error = f"{host!r} is not a host name this API answers to (LEADSCORE_ALLOWED_HOSTS)"
            await _refuse(400, "host", error)(scope, receive, send)
            return
        origin = headers.get("origin")
        if scope.get("method") in STATE_CHANGING and origin is not None and not same_origin(origin, host):
            error = f"a request from another site ({origin!r}) may not change anything here"
            await _refuse(403, "origin", error)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _refuse(status_code: int, field: str, error: str) -> JSONResponse:
    return JSONResponse(status_code=status_code, content={"detail": [{"field": field, "error": error}]})


def _media_type(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


def _has_body(request: Request) -> bool:
    return request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers


async def require_json_or_form(request: Request) -> None:
    """For every route: a state-changing request's body is JSON, or multipart/form-data where the route takes a form
    (the CSV upload). What an HTML form on another site can post as a "simple request" is refused with a 415."""
    if request.method not in STATE_CHANGING:
        return
    route = request.scope.get("route")
    takes_form = isinstance(route, APIRoute) and isinstance(getattr(route.body_field, "field_info", None), Form)
    expected = "multipart/form-data" if takes_form else "application/json"
    declared = request.headers.get("content-type")
    if declared is None:
        signed = isinstance(route, APIRoute) and route.path.startswith(SIGNED_BODY_PATHS)
        if _has_body(request) and not signed:
            raise field_error(415, "content-type", f"missing; this body must be sent as {expected}")
        return
    if _media_type(declared) != expected:
        raise field_error(415, "content-type", f"must be {expected}, got {declared!r}")
