"""Advisory locks that keep writers of the derived tables apart: one per micro-batch step, one per lead
bucket. Every writer takes them in ascending key order, so none can deadlock another."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

DEDUP_LOCK, SCORE_LOCK, DECAY_LOCK, STATS_LOCK = 7_406_010, 7_406_011, 7_406_012, 7_406_013
SPLIT_LOCK = 7_406_014  # the split_events bookkeeping of rebuilds
BUCKET_LOCK_BASE = 7_406_100
IDENTITY_LOCK = 7_406_400  # the identity graph's writers; past every bucket's key, so taken after them


def lock(conn: psycopg.Connection, keys: Iterable[int]) -> None:
    """Take transaction-scoped advisory locks, in key order."""
    for key in sorted(set(keys)):
        conn.execute("select pg_advisory_xact_lock(%s)", (key,))


def lock_buckets(conn: psycopg.Connection, buckets: Iterable[int]) -> None:
    lock(conn, (BUCKET_LOCK_BASE + int(b) for b in buckets))


def buckets_sql(buckets: Iterable[int]) -> str:
    """A SQL list literal of bucket numbers (integers only, so safe to inline)."""
    return "(" + ", ".join(str(int(b)) for b in buckets) + ")"
