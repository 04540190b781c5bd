"""Request dependencies: settings and a pooled database connection per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy import Connection

from leadscore_pipeline.db.engine import get_engine
from leadscore_pipeline.settings import Settings, get_settings


def get_connection() -> Iterator[Connection]:
    # One transaction per request; committed when the handler returns, before the response is sent.
    with get_engine().begin() as conn:
        yield conn


ConnDep = Annotated[Connection, Depends(get_connection)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
