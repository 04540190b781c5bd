"""The SQLAlchemy engine and raw psycopg connections for the configured database."""

from __future__ import annotations

from functools import lru_cache

import psycopg
from sqlalchemy import Engine, create_engine

from leadscore_pipeline.db.urls import libpq_url, sqlalchemy_url
from leadscore_pipeline.settings import get_settings


def database_url() -> str:
    url = get_settings().database_url
    if not url:
        raise RuntimeError(
            "LEADSCORE_DATABASE_URL is not set. Start everything with `make up` "
            "(it runs an embedded PostgreSQL), or point LEADSCORE_DATABASE_URL at a server."
        )
    return url


@lru_cache(maxsize=4)
def engine_for(url: str) -> Engine:
    """One bounded pool per process: past pool_size + max_overflow, a caller waits pool_timeout, then TimeoutError."""
    settings = get_settings()
    return create_engine(
        sqlalchemy_url(url),
        pool_pre_ping=True,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
    )


def get_engine() -> Engine:
    return engine_for(database_url())


def connect(url: str | None = None, **kwargs) -> psycopg.Connection:
    """A plain psycopg connection, for COPY and for the pipeline's bulk reads and writes."""
    return psycopg.connect(libpq_url(url or database_url()), **kwargs)
