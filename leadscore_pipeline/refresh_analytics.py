"""Analytics steps against Postgres: events per day (from clean events) and per-lead type stats (from the
score history), incremental for micro-batches and per bucket for replays, with the same locks as refresh.

Neither can fail on an event's data (their keys cannot overflow an index, migration 0004), so unlike dedup
and scoring they never need to set a delivery aside after other steps have used it."""

from __future__ import annotations

import polars as pl
import psycopg

from leadscore_pipeline.buckets import ALL_BUCKETS
from leadscore_pipeline.db.frames import copy_frame, read_frame
from leadscore_pipeline.db.locks import DEDUP_LOCK, SCORE_LOCK, STATS_LOCK, buckets_sql, lock, lock_buckets
from leadscore_pipeline.db.partitions import bucket_rows
from leadscore_pipeline.refresh import TIMESTAMP, Scope, StepResult, analyze, bucket_chunks, finish_catch_up_step
from leadscore_pipeline.scoring.analytics import daily_counts, lead_type_stats

_EVENT_SCHEMA = {"lead_bucket": pl.Int16, "event_time": TIMESTAMP, "event_type": pl.String}
_HISTORY_SCHEMA = {
    "lead_key": pl.String,
    "lead_bucket": pl.Int16,
    "event_id": pl.String,
    "event_type": pl.String,
    "event_time": TIMESTAMP,
    "points": pl.Int64,
}


def count_daily_events(conn: psycopg.Connection, scope: Scope) -> StepResult:
    """Add new clean events to the per-day counts, or recount whole buckets."""
    if not scope.incremental:
        return _recount_buckets(conn, scope)
    with conn.transaction():
        lock(conn, [DEDUP_LOCK])
        lock_buckets(conn, ALL_BUCKETS)
        start, through = conn.execute("select counted_through, deduped_through from pipeline_state").fetchone()
        events = read_frame(
            conn,
            f"select lead_bucket, event_time, event_type from clean_events where seq > {start} and seq <= {through}",
            _EVENT_SCHEMA,
        )
        counts = daily_counts(events.lazy()).collect()
        conn.execute("create temp table new_counts (like daily_event_counts) on commit drop")
        copy_frame(conn, "new_counts", counts)
        conn.execute(
            """insert into daily_event_counts select * from new_counts
               on conflict (lead_bucket, day, md5(event_type))
               do update set events = daily_event_counts.events + excluded.events"""
        )
        conn.execute("update pipeline_state set counted_through = %s", (through,))
    return StepResult(counts.height, through, {"events": events.height})


def _recount_buckets(conn: psycopg.Connection, scope: Scope) -> StepResult:
    rows, events_counted = 0, 0
    with conn.transaction():
        lock_buckets(conn, scope.buckets)
        # Events past counted_through are added by the next micro-batch: count each exactly once. A catch-up
        # counts through its fence, where the micro-batches will start.
        (counted_through,) = conn.execute("select counted_through from pipeline_state").fetchone()
        through = scope.through_seq if scope.catch_up else counted_through
        for chunk in bucket_chunks(conn, scope.buckets):
            events = read_frame(
                conn,
                f"""select lead_bucket, event_time, event_type from {bucket_rows("clean_events", chunk)}
                    where seq <= {through}""",
                _EVENT_SCHEMA,
            )
            counts = daily_counts(events.lazy()).collect()
            conn.execute(f"delete from daily_event_counts where lead_bucket in {buckets_sql(chunk)}")
            copy_frame(conn, "daily_event_counts", counts)
            rows, events_counted = rows + counts.height, events_counted + events.height
        finish_catch_up_step(conn, scope, "counted_through")
    return StepResult(rows, through, {"events": events_counted})


def refresh_lead_stats(conn: psycopg.Connection, scope: Scope) -> StepResult:
    """Recompute per-lead type stats for leads rescored since last time, or for whole buckets."""
    if not scope.incremental:
        return _restat_buckets(conn, scope)
    with conn.transaction():
        # Hold off scorers and every bucket: what we read is exactly what we replace.
        lock(conn, [SCORE_LOCK, STATS_LOCK])
        lock_buckets(conn, ALL_BUCKETS)
        start, through = conn.execute("select stats_through, scored_through from pipeline_state").fetchone()
        # Leads rescored since, and those rescored for a merge or split (whose seq is no newer, restaged_leads).
        # A union, not an `or`, as an array: each partition is probed by its key index, where an `or` or a
        # subquery scans every lead.
        leads = f"""lead_key = any(array(select lead_key from lead_scores where scored_seq > {start}
                                         union select lead_key from restaged_leads where unstated))"""
        history = read_frame(
            conn, f"select {', '.join(_HISTORY_SCHEMA)} from score_history where {leads}", _HISTORY_SCHEMA
        )
        stats = lead_type_stats(history.lazy()).collect()
        conn.execute(f"delete from lead_event_stats where {leads}")
        copy_frame(conn, "lead_event_stats", stats)
        conn.execute("update restaged_leads set unstated = false where unstated")
        conn.execute("delete from restaged_leads where not unserved and not unstated")
        conn.execute("update pipeline_state set stats_through = %s", (through,))
    return StepResult(stats.height, 0, {"events": history.height})


def _restat_buckets(conn: psycopg.Connection, scope: Scope) -> StepResult:
    rows, events = 0, 0
    with conn.transaction():
        lock_buckets(conn, scope.buckets)
        for chunk in bucket_chunks(conn, scope.buckets):
            history = read_frame(
                conn, f"select {', '.join(_HISTORY_SCHEMA)} from {bucket_rows('score_history', chunk)}", _HISTORY_SCHEMA
            )
            stats = lead_type_stats(history.lazy()).collect()
            conn.execute(f"delete from lead_event_stats where lead_bucket in {buckets_sql(chunk)}")
            copy_frame(conn, "lead_event_stats", stats)
            rows, events = rows + stats.height, events + history.height
        finish_catch_up_step(conn, scope, "stats_through")
        analyze(conn, "lead_event_stats")
    return StepResult(rows, 0, {"events": events})
