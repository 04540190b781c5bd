"""Bearer-token guards: the admin token for rules and replay, the optional ingest key for ingestion."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header

from api.deps import SettingsDep
from api.errors import field_error


def _bearer(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _check(expected: str, authorization: str | None, what: str) -> None:
    token = _bearer(authorization)
    if token is None:
        raise field_error(401, "authorization", f"missing 'Authorization: Bearer <{what}>' header")
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise field_error(401, "authorization", f"wrong {what}")


def require_admin(settings: SettingsDep, authorization: Annotated[str | None, Header()] = None) -> None:
    expected = settings.configured_admin_token()
    if expected is None:
        raise field_error(503, "authorization", "no admin token configured (LEADSCORE_ADMIN_TOKEN)")
    _check(expected, authorization, "admin token")


def require_ingest_key(settings: SettingsDep, authorization: Annotated[str | None, Header()] = None) -> None:
    if settings.ingest_key:
        _check(settings.ingest_key, authorization, "ingest key")


AdminDep = Depends(require_admin)
IngestKeyDep = Depends(require_ingest_key)
