"""One Postgres URL, spelled for each client that needs it (SQLAlchemy+psycopg, Dagster's psycopg2, libpq)."""

from __future__ import annotations

from sqlalchemy.engine import make_url


def _with_driver(url: str, driver: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername=f"postgresql+{driver}").render_as_string(hide_password=False)


def sqlalchemy_url(url: str) -> str:
    return _with_driver(url, "psycopg")


def dagster_url(url: str) -> str:
    # dagster-postgres needs psycopg2; with SQLAlchemy 2.1 a bare postgresql:// would pick psycopg 3.
    return _with_driver(url, "psycopg2")


def libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def with_database(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)
