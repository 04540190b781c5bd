"""The lead buckets: the unit of work of every rebuild, and the Dagster partitions of the scoring assets.

A lead's bucket is `lead_bucket_sql(n)` of its key, computed by Postgres as raw_deliveries' generated column. The
count is LEADSCORE_LEAD_BUCKETS, read once per process; the database records the count its rows were split by,
and `leadscore rebucket` re-splits them when the setting changes (db/rebucket.py).
"""

from __future__ import annotations

from leadscore_pipeline.settings import get_settings

LEAD_BUCKETS = get_settings().lead_buckets
ALL_BUCKETS = tuple(range(LEAD_BUCKETS))


def lead_bucket_sql(buckets: int, key: str = "lead_key") -> str:
    """The bucket of `key` (a column or a query parameter) among `buckets`. For 16 it equals migration 0001's
    `hashtext(lead_key) & 15`."""
    return f"mod(hashtext({key}) & 2147483647, {int(buckets)})::smallint"  # mod(), not %: a placeholder to psycopg


def bucket_groups(per_run: int, buckets: int = LEAD_BUCKETS) -> list[tuple[int, ...]]:
    """The buckets in ranges of `per_run` (the last may be shorter): what one replay run covers."""
    return [tuple(range(first, min(first + per_run, buckets))) for first in range(0, buckets, per_run)]
