"""Whose fault a database error is: the data's (the pipeline sets such a delivery aside, the API answers 422), or
the database's (a lost connection, a shutdown: retried, or a 503)."""

from __future__ import annotations

import psycopg

# SQLSTATE classes the data causes: 22 data exception, 23 integrity constraint, 54 program limit exceeded (an
# index row too large; psycopg files it under OperationalError). Connection, resource and server errors are others.
DATA_ERROR_CLASSES = ("22", "23", "54")


def data_error(error: BaseException) -> psycopg.Error | None:
    """The driver's error when the data caused it (SQLAlchemy's wrapper taken off), else None."""
    cause = getattr(error, "orig", None) or error
    # psycopg refuses text with NUL itself, with a DataError that has no SQLSTATE.
    if isinstance(cause, psycopg.DataError | psycopg.IntegrityError):
        return cause
    if isinstance(cause, psycopg.Error) and (cause.sqlstate or "")[:2] in DATA_ERROR_CLASSES:
        return cause
    return None


def is_data_error(error: BaseException) -> bool:
    return data_error(error) is not None
