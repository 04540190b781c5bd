"""Whose fault a database error is: rows the validator passed but Postgres refused are the client's (a 422 naming
the row and field); the database being unreachable, busy or shutting down is nobody's (a 503 to retry)."""

from __future__ import annotations

import re

import psycopg
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from leadscore_pipeline.db.errors import data_error
from leadscore_pipeline.ingest.records import FieldError

_COPY_CONTEXT = re.compile(r"COPY raw_deliveries, line (\d+)(?:, column (\w+))?")
# raw_deliveries columns under the names a client sent them as.
_REQUEST_FIELDS = {"external_id": "lead_id", "event_time": "timestamp", "lead_key": "email"}


def database_unavailable(exc: BaseException) -> bool:
    """The database cannot be reached, refuses work or has no free connection for now: not the request's fault.

    psycopg counts class 54 (program limit exceeded) as an OperationalError too; that one blames the data."""
    unavailable = isinstance(exc, (OperationalError, psycopg.OperationalError, PoolTimeout))
    return unavailable and data_error(exc) is None


def landing_problem(exc: BaseException) -> FieldError | None:
    """The FieldError of a landing that failed on the data of one of its rows, None for any other failure.

    `index` is the row's position in the COPY (the landed rows in request order); `field` is the column
    Postgres names, else `event`."""
    cause = data_error(exc)
    if cause is None:
        return None
    diag = cause.diag
    where = _COPY_CONTEXT.search(diag.context or "")
    column = where[2] if where and where[2] else None
    reason = diag.message_primary or str(cause)
    if diag.message_detail:
        reason += f" ({diag.message_detail})"
    return FieldError(
        index=int(where[1]) - 1 if where else 0,
        field=_REQUEST_FIELDS.get(column, column) if column else "event",
        error=f"the database cannot store it: {reason}",
    )
