"""Preview a draft rule set against the stored clean events, a few lead buckets at a time (bounded memory), with
the pure fold of scoring/; nothing is written."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import polars as pl
import psycopg

from leadscore_pipeline.buckets import ALL_BUCKETS
from leadscore_pipeline.db.frames import read_frame
from leadscore_pipeline.db.partitions import bucket_rows
from leadscore_pipeline.refresh import RULES_SCHEMA, bucket_chunks, chunk_lead_events
from leadscore_pipeline.scoring.params import ScoringParams, TierThresholds
from leadscore_pipeline.scoring.preview import PreviewPart, changed_types, lead_moves, preview_summary

TIMESTAMP = pl.Datetime("us", "UTC")
EVENT_SCHEMA = {"lead_key": pl.String, "event_id": pl.String, "event_type": pl.String, "event_time": TIMESTAMP}
STORED_SCHEMA = {
    "lead_key": pl.String,
    "email": pl.String,
    "name": pl.String,
    "company": pl.String,
    "score_at_last_event": pl.Int64,
    "last_event_at": TIMESTAMP,
    "rules_version": pl.Int64,
}
TIER_NAMES = ("cold", "warm", "hot", "qualified")


def draft_rules_frame(rules: list[dict]) -> pl.LazyFrame:
    """A draft set as the fold takes rules: event_type, points, active, max_per_day."""
    return pl.LazyFrame([{name: rule.get(name) for name in RULES_SCHEMA} for rule in rules], schema=RULES_SCHEMA)


def _chunk_rows(
    conn: psycopg.Connection, chunk: tuple[int, ...], changed: list[str], rules_version: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The stored scores of a chunk of buckets, and the clean events of the leads among them the draft can score
    otherwise: with an event of a `changed` type, scored under older rules, or not scored yet (lead_moves keeps
    the others' stored scores). Events are their leads' (SPEC §3: a joined key's events count for the lead it
    joined), as the rebuild reads them. Read in a read-only snapshot of their own: a long preview holds no
    partition's lock for longer than a chunk (a replay's swap would wait for it)."""
    with conn.transaction():
        conn.execute("set transaction isolation level repeatable read, read only")
        stored = read_frame(
            conn, f"select {', '.join(STORED_SCHEMA)} from {bucket_rows('lead_scores', chunk)}", STORED_SCHEMA
        )
        events = chunk_lead_events(conn, chunk)[0].select(list(EVENT_SCHEMA))
    refold = pl.concat(
        [
            events.filter(pl.col("event_type").is_in(changed)).select("lead_key"),
            stored.filter(pl.col("rules_version") != rules_version).select("lead_key"),
            events.select("lead_key").join(stored.select("lead_key"), on="lead_key", how="anti"),
        ]
    ).unique()
    return events.join(refold, on="lead_key", how="semi"), stored


def preview_rules(
    url: str,
    draft: pl.LazyFrame,
    as_of: datetime,
    params: ScoringParams,
    tiers: TierThresholds,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> dict:
    """The summary of what `draft` would make of every lead's score at `as_of`, against its stored score then.

    A second connection reads the next chunk while this one's is folded (the read waits on Postgres, the fold on
    Polars): at most two chunks are in memory at once."""
    with (
        psycopg.connect(url, autocommit=True) as conn,
        psycopg.connect(url, autocommit=True) as ahead,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="preview-read") as reader,
    ):
        with conn.transaction():
            conn.execute("set transaction isolation level repeatable read, read only")
            current = read_frame(conn, f"select {', '.join(RULES_SCHEMA)} from rules", RULES_SCHEMA)
            (rules_version,) = conn.execute("select rules_version from pipeline_state").fetchone()
        changed = changed_types(current.lazy(), draft).collect()
        chunks = bucket_chunks(conn, ALL_BUCKETS)
        parts: list[PreviewPart] = []
        progress(0, len(ALL_BUCKETS))
        done = 0
        types = changed["event_type"].to_list()
        pending = reader.submit(_chunk_rows, ahead, chunks[0], types, rules_version)
        for index, chunk in enumerate(chunks):
            events, stored = pending.result()
            if index + 1 < len(chunks):
                pending = reader.submit(_chunk_rows, ahead, chunks[index + 1], types, rules_version)
            moves = lead_moves(events.lazy(), draft, stored.lazy(), changed.lazy(), rules_version, as_of, params, tiers)
            parts.append(PreviewPart.of(moves))
            del events, stored, moves
            done += len(chunk)
            progress(done, len(ALL_BUCKETS))
    return {"as_of": as_of, **preview_summary(PreviewPart.combined(parts), TIER_NAMES)}
