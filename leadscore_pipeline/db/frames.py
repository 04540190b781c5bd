"""Move Polars frames in and out of Postgres through COPY (CSV), the fastest path psycopg offers."""

from __future__ import annotations

import io
from collections.abc import Mapping

import polars as pl
import psycopg

_PG_TIMESTAMP = "%Y-%m-%d %H:%M:%S%.f%#z"
COPY_CHUNK_ROWS = 200_000


def read_frame(
    conn: psycopg.Connection,
    query: str,
    schema: Mapping[str, pl.DataType],
    params: Mapping[str, object] | None = None,
) -> pl.DataFrame:
    """Run `query` (columns in `schema` order) and return its rows as a frame with that schema."""
    conn.execute("set timezone = 'UTC'")
    statement = psycopg.sql.SQL("copy ({}) to stdout (format csv)").format(
        psycopg.sql.SQL(query).format(**{k: psycopg.sql.Literal(v) for k, v in (params or {}).items()})
    )
    buffer = io.BytesIO()
    with conn.cursor().copy(statement) as copy:
        for block in copy:
            buffer.write(block)
    if not buffer.getbuffer().nbytes:
        return pl.DataFrame(schema=schema)
    # Postgres writes timestamps and booleans ('t'/'f') in its own text forms: read those as text first.
    as_text = {name for name, dtype in schema.items() if dtype == pl.Datetime or dtype == pl.Boolean}
    text_schema = {name: pl.String if name in as_text else dtype for name, dtype in schema.items()}
    frame = pl.read_csv(buffer.getvalue(), has_header=False, new_columns=list(schema), schema=text_schema)
    return frame.with_columns(
        pl.col(name).str.to_datetime(_PG_TIMESTAMP, time_zone="UTC", time_unit="us")
        if schema[name] == pl.Datetime
        else pl.col(name) == "t"
        for name in as_text
    )


def copy_frame(conn: psycopg.Connection, table: str, frame: pl.DataFrame) -> int:
    """Append `frame` to `table` (columns by name) in chunks; returns the number of rows written."""
    columns = psycopg.sql.SQL(", ").join(map(psycopg.sql.Identifier, frame.columns))
    statement = psycopg.sql.SQL("copy {} ({}) from stdin (format csv)").format(psycopg.sql.Identifier(table), columns)
    with conn.cursor().copy(statement) as copy:
        for chunk in frame.iter_slices(COPY_CHUNK_ROWS):
            copy.write(chunk.write_csv(include_header=False))
    return frame.height
