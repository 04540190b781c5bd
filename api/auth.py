"""Bearer-token guards: the admin token for rules and replay, the optional ingest key for ingestion, the optional
read key for every read. Each is an HTTPBearer security scheme, so OpenAPI says which route needs which."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import SettingsDep
from api.errors import field_error
from api.rate_limits import ReadRateLimitDep

Credentials = HTTPAuthorizationCredentials | None

# auto_error=False: a missing or malformed header is ours to answer, in the API's error shape.
admin_scheme = HTTPBearer(
    scheme_name="AdminToken",
    description="LEADSCORE_ADMIN_TOKEN (or the token `leadscore up` keeps in $LEADSCORE_HOME/admin_token): "
    "rule changes and replay; it also reads",
    auto_error=False,
)
ingest_scheme = HTTPBearer(
    scheme_name="IngestKey", description="LEADSCORE_INGEST_KEY: ingestion, when one is set", auto_error=False
)
read_scheme = HTTPBearer(
    scheme_name="ReadKey", description="LEADSCORE_READ_KEY: every read, when one is set", auto_error=False
)
ASK_FOR_BEARER = {"WWW-Authenticate": "Bearer"}


def _matches(credentials: Credentials, expected: str | None) -> bool:
    return (
        credentials is not None
        and expected is not None
        and hmac.compare_digest(credentials.credentials.encode(), expected.encode())
    )


def _refuse(credentials: Credentials, what: str) -> None:
    if credentials is None:
        raise field_error(401, "authorization", f"missing 'Authorization: Bearer <{what}>' header", ASK_FOR_BEARER)
    raise field_error(401, "authorization", f"wrong {what}", ASK_FOR_BEARER)


def require_admin(settings: SettingsDep, credentials: Annotated[Credentials, Depends(admin_scheme)]) -> None:
    expected = settings.configured_admin_token()
    if expected is None:
        raise field_error(503, "authorization", "no admin token configured (LEADSCORE_ADMIN_TOKEN)")
    if not _matches(credentials, expected):
        _refuse(credentials, "admin token")


def require_ingest_key(settings: SettingsDep, credentials: Annotated[Credentials, Depends(ingest_scheme)]) -> None:
    if settings.ingest_key and not _matches(credentials, settings.ingest_key):
        _refuse(credentials, "ingest key")


def require_read_access(
    settings: SettingsDep,
    credentials: Annotated[Credentials, Depends(read_scheme)],
    # The same header again, declared so OpenAPI offers the admin token as the alternative it is.
    _admin: Annotated[Credentials, Depends(admin_scheme)],
) -> None:
    if not settings.read_key or _matches(credentials, settings.read_key):
        return
    if not _matches(credentials, settings.configured_admin_token()):
        _refuse(credentials, "read key")


AdminDep = Depends(require_admin)
IngestKeyDep = Depends(require_ingest_key)
ReadAccessDep = Depends(require_read_access)
# A read's guards, in order: counted first, so guessing keys uses up the guesser's allowance too.
READ_GUARDS = [ReadRateLimitDep, ReadAccessDep]
