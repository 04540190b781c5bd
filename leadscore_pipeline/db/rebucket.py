"""Keep the database split into as many lead buckets as LEADSCORE_LEAD_BUCKETS says.

A fresh database follows the setting at migration time. One with history is re-split only on request
(`leadscore rebucket`): every landed delivery gets its new bucket and every derived table is emptied, so the
pipeline rebuilds them from the deliveries, as a first import does (the bulk path, docs/scale-out.md).
"""

from __future__ import annotations

import psycopg

from leadscore_pipeline.buckets import lead_bucket_sql
from leadscore_pipeline.db.partitions import PARTITIONED, create_partitions, name_partition_indexes, partition_name
from leadscore_pipeline.db.watermarks import WATERMARKS

# Emptied by truncate, whose triggers reset the serving aggregates kept from them (migration 0005).
DERIVED = ("clean_events", "score_history", "lead_scores", "current_scores", "lead_event_stats", "daily_event_counts")


class BucketCountMismatch(RuntimeError):
    """The setting asks for another bucket count than the database's history is split by."""


def database_buckets(conn: psycopg.Connection) -> int:
    return conn.execute("select lead_buckets from pipeline_state").fetchone()[0]


def follow_setting(conn: psycopg.Connection, buckets: int) -> None:
    """Re-split a database with no deliveries yet to `buckets`; refuse, with what to do, for one with history."""
    current = database_buckets(conn)
    if current == buckets:
        return
    if conn.execute("select exists (select from raw_deliveries)").fetchone()[0]:
        raise BucketCountMismatch(
            f"LEADSCORE_LEAD_BUCKETS is {buckets}, but this database's history is split into {current} buckets: "
            f"set LEADSCORE_LEAD_BUCKETS={current}, or run `leadscore rebucket` to re-split it "
            "(the scores are then rebuilt from the raw events)"
        )
    rebucket(conn, buckets)


def rebucket(conn: psycopg.Connection, buckets: int) -> None:
    """Split every delivery into `buckets` buckets and empty the derived tables for the pipeline to rebuild."""
    with conn.transaction():
        # Every writer and reader waits: the tables change shape.
        conn.execute(f"lock table raw_deliveries, {', '.join(DERIVED)} in access exclusive mode")
        current = database_buckets(conn)
        conn.execute(f"truncate {', '.join(DERIVED)}")
        conn.execute(
            f"""alter table raw_deliveries drop column lead_bucket,
                add column lead_bucket smallint generated always as ({lead_bucket_sql(buckets)}) stored"""
        )
        for table in PARTITIONED:
            for bucket in range(current):
                conn.execute(f"drop table {partition_name(table, bucket)}")
            conn.execute(create_partitions(table, buckets))
            conn.execute(name_partition_indexes(table))
        conn.execute("delete from bucket_state")
        conn.execute("insert into bucket_state (lead_bucket) select generate_series(0, %s - 1)", (buckets,))
        conn.execute("delete from bulk_progress")
        conn.execute("truncate split_events")  # which events span buckets depends on the count
        conn.execute(
            f"""update pipeline_state set lead_buckets = %s, bulk_through = 0, split_through = 0,
                {", ".join(f"{w} = 0" for w in WATERMARKS)}""",
            (buckets,),
        )
