"""The pipeline's scoring steps against Postgres: dedup deliveries, score leads, decay current scores.

Each step is one transaction, idempotent, and scoped either to what landed since the last micro-batch
(`Scope.incremental`) or to whole lead buckets (a replay). Writers take the advisory locks of
`db.locks`, so a micro-batch and a replay never write the same leads at once. A micro-batch's dedup or
scoring that fails on a delivery's data sets that delivery aside (`quarantine`) and does the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import polars as pl
import psycopg

from leadscore_pipeline import clock, quarantine
from leadscore_pipeline.buckets import ALL_BUCKETS, LEAD_BUCKETS, lead_bucket_sql
from leadscore_pipeline.db.aggregates import move_event_totals, move_served_totals
from leadscore_pipeline.db.frames import copy_frame, read_frame
from leadscore_pipeline.db.identity import (
    aliases_where,
    queue_cross_bucket_leads,
    recount_links,
    replace_bucket_links,
    resolve_again,
)
from leadscore_pipeline.db.locks import DECAY_LOCK, DEDUP_LOCK, SCORE_LOCK, SPLIT_LOCK, buckets_sql, lock, lock_buckets
from leadscore_pipeline.db.partitions import bucket_rows, lock_exclusively, partition_name, stage_partitions, swap_in
from leadscore_pipeline.db.watermarks import WATERMARKS
from leadscore_pipeline.ingest.land import landed_through
from leadscore_pipeline.scoring.current import current_rows
from leadscore_pipeline.scoring.dedup import (
    CLEAN_SCHEMA,
    clean_rows,
    dedup_batch,
    delivery_tallies,
    first_deliveries,
    rebuilt_clean_events,
)
from leadscore_pipeline.scoring.diff import differences
from leadscore_pipeline.scoring.identity import as_lead_events, identity_links
from leadscore_pipeline.scoring.leads import score_leads
from leadscore_pipeline.scoring.params import ScoringParams, TierThresholds
from leadscore_pipeline.settings import get_settings

TIMESTAMP = pl.Datetime("us", "UTC")
DELIVERY_SCHEMA = {
    "seq": pl.Int64,
    "event_id": pl.String,
    "lead_key": pl.String,
    "lead_bucket": pl.Int16,
    "event_type": pl.String,
    "event_time": TIMESTAMP,
    "email": pl.String,
    "external_id": pl.String,
    "name": pl.String,
    "company": pl.String,
    "source": pl.String,
    "metadata": pl.String,
}
# Dedup compares metadata only for equality: its md5 is enough, and far smaller than the JSON in memory.
_DELIVERY_COLUMNS = ", ".join(
    "md5(r.metadata::text) as metadata" if name == "metadata" else f"r.{name}" for name in DELIVERY_SCHEMA
)
RULES_SCHEMA = {"event_type": pl.String, "points": pl.Int64, "active": pl.Boolean, "max_per_day": pl.Int64}
# What the decay step copies from lead_scores into current_scores, the one table the leaderboard and lead list read.
LEAD_SCORE_SCHEMA = {
    "lead_key": pl.String,
    "lead_bucket": pl.Int16,
    "email": pl.String,
    "name": pl.String,
    "company": pl.String,
    "score_at_last_event": pl.Int64,
    "event_count": pl.Int64,
    "first_event_at": TIMESTAMP,
    "last_event_at": TIMESTAMP,
    "rules_version": pl.Int64,
    "scored_seq": pl.Int64,
}
# What a lead's served row shows: compared to tell whether a rebuild changes it (as_of and change ids aside).
SERVED_SCHEMA = {
    **{name: dtype for name, dtype in LEAD_SCORE_SCHEMA.items() if name != "scored_seq"},
    "score": pl.Int64,
    "tier": pl.String,
}
# The whole stored row (its generated search_text aside): what a rebuilt partition carries over unchanged.
STORED_SCHEMA = {**SERVED_SCHEMA, "as_of": TIMESTAMP, "previous_score": pl.Int64, "change_id": pl.Int64}
# Past 1 changed served row in this many, a bucket's served rows are rebuilt by swap rather than written in place.
SWAP_SHARE = 4


@dataclass(frozen=True)
class Scope:
    """What a step covers: lead buckets, and whether only what changed since the last micro-batch.

    Whole buckets are rebuilt from every delivery landed (a replay), or, with `through_seq`, from those through
    it: a catch-up, the bulk path of a backlog too big for one micro-batch, after which micro-batches go on from
    `through_seq`.
    """

    buckets: tuple[int, ...] = ALL_BUCKETS
    incremental: bool = False
    through_seq: int | None = None  # a micro-batch's or a catch-up's upper bound: the sensor's fence

    @property
    def catch_up(self) -> bool:
        return not self.incremental and self.through_seq is not None


@dataclass(frozen=True)
class StepResult:
    rows: int  # clean events inserted, leads scored, or current scores written
    through_seq: int  # the landing sequence number the step's output now reflects
    details: dict[str, int]

    @staticmethod
    def combined(results: list[StepResult], quarantined: list[int]) -> StepResult:
        """One result for a step that ran in several parts (split around deliveries it set aside)."""

        def total(parts: list[dict[str, int]]) -> dict[str, int]:
            return {key: sum(part.get(key, 0) for part in parts) for part in parts for key in part}

        return StepResult(
            sum(r.rows for r in results),
            results[-1].through_seq,
            {**total([r.details for r in results]), "quarantined": len(quarantined)},
        )


def state_of(conn: psycopg.Connection) -> dict[str, int]:
    cursor = conn.execute("select deduped_through, scored_through, served_through, rules_version from pipeline_state")
    return dict(zip([c.name for c in cursor.description], cursor.fetchone(), strict=True))


def microbatched_through(conn: psycopg.Connection) -> int:
    """The landing seq through which every micro-batch step is done: past it, a micro-batch has work left."""
    return conn.execute(f"select least({', '.join(WATERMARKS)}) from pipeline_state").fetchone()[0]


def catch_up_state(conn: psycopg.Connection) -> tuple[int, set[int]]:
    """The fence of the latest catch-up, and the buckets whose every step is done through it."""
    (fence,) = conn.execute("select bulk_through from pipeline_state").fetchone()
    finished = conn.execute(
        """select lead_bucket from bulk_progress where through >= %s
           group by lead_bucket having count(*) = %s""",
        (fence, len(WATERMARKS)),
    ).fetchall()
    return fence, {bucket for (bucket,) in finished}


# --- step 1: raw deliveries -> clean events -------------------------------------------------------


def dedup_deliveries(conn: psycopg.Connection, scope: Scope) -> StepResult:
    """Insert each event's first delivery into clean_events and count the later ones as duplicates."""
    if scope.incremental:
        return _dedup_new_deliveries(conn, scope)
    return _rebuild_clean_events(conn, scope)


def _dedup_new_deliveries(conn: psycopg.Connection, scope: Scope) -> StepResult:
    # The sensor took the fence for its range already: everything through its end was committed then.
    through = scope.through_seq if scope.through_seq is not None else landed_through(conn)
    with conn.transaction():
        lock(conn, [DEDUP_LOCK])  # the range stays put while it is split around a delivery that fails
        start = state_of(conn)["deduped_through"]
        results, quarantined = quarantine.run_setting_aside(
            conn, "dedup", lambda upto: _dedup_range(conn, upto), start, through, lambda seq: _withdraw(conn, seq)
        )
    return StepResult.combined(results, quarantined)


def _dedup_range(conn: psycopg.Connection, through: int) -> StepResult:
    with conn.transaction():
        lock(conn, [DEDUP_LOCK])
        start = state_of(conn)["deduped_through"]
        # Every bucket: the batch may repeat events of any lead, and a replay may be rebuilding one.
        lock_buckets(conn, ALL_BUCKETS)
        if through <= start:
            resolve_again(conn, set(), set())  # only if the merge protection setting changed since
            return StepResult(0, start, {"deliveries": 0})
        window = {"start": start, "through": through}
        batch = read_frame(
            conn,
            f"""select {_DELIVERY_COLUMNS} from raw_deliveries r
                where r.seq > {{start}} and r.seq <= {{through}} and {quarantine.NOT_QUARANTINED}""",
            DELIVERY_SCHEMA,
            window,
        )
        # First deliveries of events already clean that this batch delivers: to tell duplicates and conflicts. The
        # ids as an array, so each bucket's partition is probed by its key: as a subquery, the planner hashed every
        # partition whole (215-450 ms for 1k events over 2M, against 15 ms).
        earlier = read_frame(
            conn,
            f"""select {_DELIVERY_COLUMNS} from clean_events c join raw_deliveries r on r.seq = c.seq
                where c.event_id = any(array(select event_id from raw_deliveries
                                             where seq > {{start}} and seq <= {{through}}))""",
            DELIVERY_SCHEMA,
            window,
        )
        new_events, repeated = pl.collect_all(dedup_batch(batch.lazy(), earlier.lazy(), start))

        copy_frame(conn, "clean_events", new_events)
        # New events may link an email and an id: resolve what that joins or splits (SPEC §3).
        resolve_again(conn, *recount_links(conn, new_events["email"].drop_nulls().unique()))
        if not repeated.is_empty():
            conn.execute(
                "create temp table repeated_tallies (event_id text, duplicates int, conflicts int) on commit drop"
            )
            copy_frame(conn, "repeated_tallies", repeated)
            conn.execute(
                """update clean_events c set duplicates = c.duplicates + t.duplicates,
                                             conflicts = c.conflicts + t.conflicts
                   from repeated_tallies t where t.event_id = c.event_id"""
            )
            conn.execute("drop table repeated_tallies")  # a step split in parts makes it again
        conn.execute("update pipeline_state set deduped_through = %s", (through,))
    # Every redelivery in the batch is tallied on one of its new events or on an event already clean.
    return StepResult(
        new_events.height,
        through,
        {
            "deliveries": batch.height,
            "duplicates": int(new_events["duplicates"].sum()) + int(repeated["duplicates"].sum()),
            "conflicts": int(new_events["conflicts"].sum()) + int(repeated["conflicts"].sum()),
        },
    )


def _rebuild_clean_events(conn: psycopg.Connection, scope: Scope) -> StepResult:
    buckets = scope.buckets
    # A catch-up rebuilds through its fence; a replay, every landed delivery.
    through = scope.through_seq if scope.catch_up else landed_through(conn)
    _note_split_events(conn, through)
    totals = {"rows": 0, "duplicates": 0, "conflicts": 0}
    with conn.transaction():
        lock_buckets(conn, buckets)
        # Duplicates are counted only as far as the micro-batches got, since they count the rest when they reach
        # it; a catch-up's micro-batches go on from its fence.
        counted_through = through if scope.catch_up else state_of(conn)["deduped_through"]
        linked_emails, linked_ids = set(), set()
        for chunk in bucket_chunks(conn, buckets):
            rebuilt = _rebuilt_clean_rows(conn, chunk, through, counted_through)
            _stage_buckets(conn, "clean_events", chunk, rebuilt)
            emails, ids = replace_bucket_links(conn, chunk, identity_links(rebuilt.lazy()).collect())
            linked_emails, linked_ids = linked_emails | emails, linked_ids | ids
            totals["rows"] += rebuilt.height
            totals["duplicates"] += int(rebuilt["duplicates"].sum())
            totals["conflicts"] += int(rebuilt["conflicts"].sum())
        # Before the swap, which holds every reader: the leads these buckets' keys resolve to elsewhere may have been
        # scored from their old events; the next micro-batch rescores them (and any lead the links join or split).
        resolve_again(conn, linked_emails, linked_ids, staged_buckets=buckets)
        if not set(buckets) >= set(ALL_BUCKETS):
            queue_cross_bucket_leads(conn, buckets)
        _swap_staged(conn, buckets, ("clean_events",), move_event_totals)
        finish_catch_up_step(conn, scope, "deduped_through")
    return StepResult(
        totals["rows"],
        through,
        {"duplicates": totals["duplicates"], "conflicts": totals["conflicts"]},
    )


def _note_split_events(conn: psycopg.Connection, through: int) -> None:
    """Bring split_events up to `through`: the events delivered under leads of different buckets. One rebuild
    does it (its own short transaction), the others of a replay find it done; it only ever grows, and a
    rebuild reads deliveries through its own `through` whatever the table holds past it."""
    with conn.transaction():
        lock(conn, [SPLIT_LOCK])
        (done,) = conn.execute("select split_through from pipeline_state").fetchone()
        if done >= through:
            return
        window = {"done": done, "through": through}
        # Split among the new deliveries themselves (one pass, grouped by event) ...
        conn.execute(
            """insert into split_events
               select event_id from raw_deliveries where seq > %(done)s and seq <= %(through)s
               group by event_id having min(lead_bucket) <> max(lead_bucket)
               on conflict do nothing""",
            window,
        )
        # ... and between a new delivery and an earlier one (through the event_id index).
        conn.execute(
            """insert into split_events
               select distinct n.event_id from raw_deliveries n
               join raw_deliveries o on o.event_id = n.event_id and o.seq <= %(done)s
               where n.seq > %(done)s and n.seq <= %(through)s and o.lead_bucket <> n.lead_bucket
               on conflict do nothing""",
            window,
        )
        conn.execute("update pipeline_state set split_through = %(through)s", window)


def _rebuilt_clean_rows(
    conn: psycopg.Connection, buckets: tuple[int, ...], through: int, counted_through: int
) -> pl.DataFrame:
    """The clean events of `buckets` from every delivery through `through` (a function of its own so the
    deliveries are freed before the rebuilt buckets are copied in)."""
    # The first delivery of an event decides its bucket, and may be in another bucket than a later one: besides
    # their own, the buckets read the deliveries of split events elsewhere (a few, by the event_id index), so a
    # rebuild scans the deliveries once and holds its buckets' events, not all history.
    columns = f"""select {_DELIVERY_COLUMNS} from raw_deliveries r"""
    landed = f"r.seq <= {{through}} and {quarantine.NOT_QUARANTINED}"
    query = f"{columns} where {landed} and r.lead_bucket in {buckets_sql(buckets)}"
    if not set(buckets) >= set(ALL_BUCKETS):
        query += f"""
            union all
            {columns} join split_events s on s.event_id = r.event_id
            where {landed} and r.lead_bucket not in {buckets_sql(buckets)}"""
    deliveries = read_frame(conn, query, DELIVERY_SCHEMA, {"through": through})
    return rebuilt_clean_events(deliveries.lazy(), buckets, counted_through).collect()


def bucket_chunks(conn: psycopg.Connection, buckets: tuple[int, ...]) -> list[tuple[int, ...]]:
    """`buckets` in chunks of about LEADSCORE_REBUILD_CHUNK_ROWS landed deliveries (at least a bucket each): what a
    rebuild step holds in memory at once, so a run's memory follows the chunk, not how many buckets it covers.
    Keys hash evenly, so a bucket holds about its share of what landed. An estimate: read without the landing
    fence, which would wait for a landing under way (a large upload) inside the step's transaction."""
    (landed,) = conn.execute("select coalesce(max(seq), 0) from raw_deliveries").fetchone()
    per_bucket = max(1, landed // LEAD_BUCKETS)
    size = max(1, get_settings().rebuild_chunk_rows // per_bucket)
    return [buckets[start : start + size] for start in range(0, len(buckets), size)]


def _stage_buckets(conn: psycopg.Connection, table: str, buckets: tuple[int, ...], *frames: pl.DataFrame) -> None:
    """Stage the rows of `frames` (of `buckets`) as the next partitions of `table`, for `_swap_staged`."""
    by_bucket = {bucket: [frame.filter(pl.col("lead_bucket") == bucket) for frame in frames] for bucket in buckets}
    stage_partitions(conn, table, by_bucket)


def _swap_staged(
    conn: psycopg.Connection,
    buckets: tuple[int, ...],
    tables: tuple[str, ...],
    move_totals: Callable[[psycopg.Connection, tuple[int, ...]], None] | None = None,
) -> None:
    """Swap in the partitions staged for `buckets` of each of `tables` (`db.partitions`), after `move_totals` moves
    the aggregates that triggers keep. A rebuild recomputes every row, so nothing is diffed and no index is
    updated row by row. Last in a step: its exclusive locks hold every reader of the tables until the commit."""
    if not buckets:
        return
    lock_exclusively(conn, tables, buckets)
    if move_totals is not None:
        move_totals(conn, buckets)
    swap_in(conn, tables, buckets)


def finish_catch_up_step(conn: psycopg.Connection, scope: Scope, watermark: str) -> None:
    """Mark a catch-up's step done for its buckets; the run that finishes the last bucket moves the step's
    watermark to the fence, in the same transaction, and micro-batches take that step over from there."""
    if not scope.catch_up:
        return
    # One finisher at a time, so the last one sees every other's mark (the row lock orders them).
    conn.execute("select 1 from pipeline_state for update")
    conn.execute(
        """insert into bulk_progress (step, lead_bucket, through) select %s, unnest(%s::smallint[]), %s
           on conflict (step, lead_bucket) do update set through = excluded.through""",
        (watermark, list(scope.buckets), scope.through_seq),
    )
    conn.execute(
        f"""update pipeline_state set {watermark} = %(fence)s
            where {watermark} < %(fence)s and lead_buckets = (
                select count(*) from bulk_progress where step = %(step)s and through >= %(fence)s)""",
        {"fence": scope.through_seq, "step": watermark},
    )


def _delete_keys(conn: psycopg.Connection, table: str, key: tuple[str, ...], rows: pl.DataFrame) -> None:
    """Delete the rows of `table` whose `key` columns equal those of `rows`: the keys go in by COPY, the delete
    is one join, however many there are."""
    if rows.is_empty():
        return
    columns = ", ".join(key)
    conn.execute(f"create temp table doomed_keys on commit drop as select {columns} from {table} limit 0")
    copy_frame(conn, "doomed_keys", rows.select(key))
    matched = " and ".join(f"t.{column} = d.{column}" for column in key)
    conn.execute(f"delete from {table} t using doomed_keys d where {matched}")
    conn.execute("drop table doomed_keys")  # a step split in parts, or the next step, makes it again


def analyze(conn: psycopg.Connection, *tables: str) -> None:
    """Fresh planner statistics after a bulk rewrite: stale ones turn the micro-batches' index lookups
    into scans (measured: 260-435 ms instead of 40 ms for one event over 1M stored)."""
    for table in tables:
        conn.execute(f"analyze {table}")


def _withdraw(conn: psycopg.Connection, seq: int) -> None:
    """Take a set-aside delivery's event back out of clean_events and the day counts. The event's next
    delivery that was deduplicated already, if any, becomes the event instead, as in a replay without it."""
    lock_buckets(conn, ALL_BUCKETS)  # the event and its next delivery may be of any lead
    withdrawn = conn.execute(
        "delete from clean_events where seq = %s returning event_id, email, lead_bucket, event_time, event_type", (seq,)
    ).fetchone()
    if withdrawn is None:
        return
    deduped, counted = conn.execute("select deduped_through, counted_through from pipeline_state").fetchone()
    event_id, email, *counted_as = withdrawn
    if seq <= counted:
        _count_event(conn, *counted_as, change=-1)
    successor = _promote_next_delivery(conn, event_id, deduped)
    if successor is not None and successor["seq"] <= counted:
        _count_event(conn, successor["lead_bucket"], successor["event_time"], successor["event_type"], change=1)
    # The event's links go with it (and its successor's come): resolve what that joins or splits.
    emails = [e for e in (email, successor and successor["email"]) if e]
    resolve_again(conn, *recount_links(conn, emails))


def _promote_next_delivery(conn: psycopg.Connection, event_id: str, through: int) -> dict | None:
    """Make the first delivery of `event_id` through `through` not set aside its clean event; one that
    cannot be (it fails on data too) is set aside in turn."""
    while True:
        deliveries = read_frame(
            conn,
            f"""select {_DELIVERY_COLUMNS} from raw_deliveries r
                where r.event_id = {{event_id}} and r.seq <= {{through}} and {quarantine.NOT_QUARANTINED}""",
            DELIVERY_SCHEMA,
            {"event_id": event_id, "through": through},
        ).lazy()
        firsts = first_deliveries(deliveries)
        event = clean_rows(firsts, delivery_tallies(deliveries, firsts)).collect()
        if event.is_empty():
            return None
        try:
            with conn.transaction():
                copy_frame(conn, "clean_events", event)
            return event.row(0, named=True)
        except psycopg.Error as error:
            if not quarantine.is_data_error(error):
                raise
            quarantine.record(conn, event["seq"][0], "dedup", error)


def _count_event(conn: psycopg.Connection, bucket: int, event_time: datetime, event_type: str, *, change: int) -> None:
    """Correct the day counts (the count step's table) for one event made or unmade after it was counted."""
    conn.execute(
        """insert into daily_event_counts (lead_bucket, day, event_type, events)
           values (%s, (%s::timestamptz at time zone 'UTC')::date, %s, %s)
           on conflict (lead_bucket, day, md5(event_type))
           do update set events = daily_event_counts.events + excluded.events""",
        (bucket, event_time, event_type, change),
    )
    conn.execute("delete from daily_event_counts where lead_bucket = %s and events = 0", (bucket,))


# --- step 2: clean events -> lead scores and score history ----------------------------------------


def score_buckets(conn: psycopg.Connection, scope: Scope, params: ScoringParams) -> StepResult:
    """Rescore leads from their full clean history: the touched ones (micro-batch) or whole buckets."""
    if not scope.incremental:
        return _rescore_buckets(conn, scope, params)
    with conn.transaction():
        lock(conn, [SCORE_LOCK])  # the range stays put while it is split around a delivery that fails
        state = state_of(conn)
        results, quarantined = quarantine.run_setting_aside(
            conn,
            "score",
            lambda upto: _score_touched(conn, params, upto),
            state["scored_through"],
            state["deduped_through"],
            lambda seq: _withdraw(conn, seq),
        )
    return StepResult.combined(results, quarantined)


def _score_touched(conn: psycopg.Connection, params: ScoringParams, upto: int) -> StepResult:
    """Rescore the leads with clean events deduplicated since the last micro-batch, through `upto`, and those a
    merge or split of the identity graph queued (identity_rescores)."""
    with conn.transaction():
        lock(conn, [SCORE_LOCK])  # touched buckets are locked once known, below
        state = state_of(conn)
        start, through = state["scored_through"], min(state["deduped_through"], upto)
        rescores = [key for (key,) in conn.execute("select lead_key from identity_rescores").fetchall()]
        if through <= start and not rescores:
            return StepResult(0, start, {"events": 0})
        through = max(through, start)
        conn.execute("create temp table scored_leads (lead_key text primary key) on commit drop")
        conn.execute(
            f"""insert into scored_leads select distinct coalesce(a.lead_key, c.lead_key) from clean_events c
                left join lead_aliases a on a.identity_key = c.lead_key where c.seq > {start} and c.seq <= {through}"""
        )
        conn.execute("insert into scored_leads select unnest(%s::text[]) on conflict do nothing", (rescores,))
        analyze(conn, "scored_leads")  # a few rows: the reads below go through the key indexes
        if through < state["deduped_through"] or rescores:
            # A part of a range split around a bad delivery, or leads queued by any bucket's rebuild: every bucket,
            # so parts never lock out of order, and no rebuild is half done when the queue is taken.
            lock_buckets(conn, ALL_BUCKETS)
        else:
            buckets = conn.execute(f"select distinct {lead_bucket_sql(LEAD_BUCKETS)} from scored_leads").fetchall()
            lock_buckets(conn, (b for (b,) in buckets))
        # Keys as arrays, so each bucket's partition is probed by its index (as a subquery, the planner hashed
        # every partition whole: 630 ms for 1k leads over 500k events).
        scored = "any(array(select lead_key from scored_leads))"
        scored_keys = [key for (key,) in conn.execute("select lead_key from scored_leads").fetchall()]
        keys = f"any(array(select lead_key from scored_leads union select identity_key from lead_aliases where lead_key = {scored}))"
        # Leads as of the range's end: a part before a bad delivery is scored without it. Each event's key is
        # resolved again here: it may be one that was joined elsewhere since (a lead queued to rescore).
        events = read_frame(
            conn,
            f"select {', '.join(CLEAN_SCHEMA)} from clean_events where lead_key = {keys} and seq <= {through}",
            CLEAN_SCHEMA,
        )
        aliases = aliases_where(conn, f"identity_key = {keys}")
        events = as_lead_events(events.lazy(), aliases.lazy()).filter(pl.col("lead_key").is_in(scored_keys)).collect()
        leads, history = _scored(conn, events, params, state["rules_version"], through, aliases)
        conn.execute(f"delete from lead_scores where lead_key = {scored}")
        copy_frame(conn, "lead_scores", leads)
        conn.execute(f"delete from score_history where lead_key = {scored}")
        copy_frame(conn, "score_history", history)
        if rescores:
            # Their events are no newer than what the serving steps did: they take these by name. A lead left
            # without events (merged into another) has no score now, and they drop its rows.
            conn.execute(
                """insert into restaged_leads select unnest(%s::text[])
                   on conflict (lead_key) do update set unserved = true, unstated = true""",
                (rescores,),
            )
            conn.execute("delete from identity_rescores where lead_key = any(%s)", (rescores,))
        conn.execute("update pipeline_state set scored_through = %s, last_microbatch_at = now()", (through,))
        conn.execute("drop table scored_leads")  # a step split in parts makes it again
    return StepResult(leads.height, through, {"events": events.height, "identity_rescores": len(rescores)})


def chunk_lead_events(conn: psycopg.Connection, chunk: tuple[int, ...]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The events of the leads of `chunk`'s buckets (`as_lead_events`), and the aliases into those leads: events of
    the chunk's partitions that resolve to one of its leads, and those of other buckets' keys that do. The latter are
    read in a savepoint rolled back at once, so this rebuild holds no lock on another bucket group's partitions while
    it waits to swap its own; and by key arrays, so each partition is probed by its index: most joined keys (an id
    seen with an email) have no events of their own."""
    in_chunk = buckets_sql(chunk)
    aliases = aliases_where(conn, f"identity_bucket in {in_chunk} or lead_bucket in {in_chunk}")
    frames = [
        read_frame(conn, f"select {', '.join(CLEAN_SCHEMA)} from {bucket_rows('clean_events', chunk)}", CLEAN_SCHEMA)
    ]
    incoming = aliases.filter(pl.col("lead_bucket").is_in(chunk) & ~pl.col("identity_bucket").is_in(chunk))
    with conn.transaction(force_rollback=True):
        for (bucket,), keys in incoming.group_by("identity_bucket"):
            frames.append(
                read_frame(
                    conn,
                    f"""select {", ".join(CLEAN_SCHEMA)} from {partition_name("clean_events", bucket)}
                        where lead_key = any({{keys}})""",
                    CLEAN_SCHEMA,
                    {"keys": keys["identity_key"].to_list()},
                )
            )
    events = as_lead_events(pl.concat(frames).lazy(), aliases.lazy()).filter(pl.col("lead_bucket").is_in(chunk))
    return events.collect(), aliases.filter(pl.col("lead_bucket").is_in(chunk))


def _rescore_buckets(conn: psycopg.Connection, scope: Scope, params: ScoringParams) -> StepResult:
    """Rescore whole buckets, a chunk at a time, and swap their lead scores and history in."""
    rows, events_scored = 0, 0
    with conn.transaction():
        lock_buckets(conn, scope.buckets)
        state = state_of(conn)
        through = scope.through_seq if scope.catch_up else state["deduped_through"]
        for chunk in bucket_chunks(conn, scope.buckets):
            events, aliases = chunk_lead_events(conn, chunk)
            events_scored += events.height
            leads, history = _scored(conn, events, params, state["rules_version"], through, aliases)
            del events  # freed before the history is copied out (peak memory)
            _stage_buckets(conn, "lead_scores", chunk, leads)
            _stage_buckets(conn, "score_history", chunk, history)
            rows += leads.height
        # Before any row lock: a swap waiting for readers must hold nothing another rebuild could wait for.
        _swap_staged(conn, scope.buckets, ("lead_scores", "score_history"))
        conn.execute("update pipeline_state set last_replay_at = now()")
        finish_catch_up_step(conn, scope, "scored_through")
    return StepResult(rows, through, {"events": events_scored})


def _scored(
    conn: psycopg.Connection,
    events: pl.DataFrame,
    params: ScoringParams,
    rules_version: int,
    through: int,
    aliases: pl.DataFrame,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The leads of `events` (their leads' events, `as_lead_events`) scored under the current rules, and their
    score history; `aliases`: the keys joined into them."""
    rules = read_frame(conn, f"select {', '.join(RULES_SCHEMA)} from rules", RULES_SCHEMA)
    scored = score_leads(events.lazy(), rules.lazy(), params, aliases.select("identity_key", "lead_key").lazy())
    leads = scored.leads.with_columns(rules_version=pl.lit(rules_version), scored_seq=pl.lit(through))
    return leads, scored.history


# --- step 3: lead scores -> current scores (decay to now) -----------------------------------------


def _rewrite_served_buckets(
    conn: psycopg.Connection,
    buckets: tuple[int, ...],
    stored: pl.DataFrame,
    current: pl.DataFrame,
    swap: bool | None,
) -> tuple[pl.DataFrame, bool | None, tuple[int, ...]]:
    """Make the served rows of whole buckets (a replay, a rescore, a catch-up, the daily decay) `current`. Returns
    the rows written, only the leads whose served row changes, so that an unchanged lead keeps its row, as_of and
    change id (the live stream sends only real changes); whether the step swaps; and the buckets staged for it.

    Few changes (a daily decay) are written in place; many (a first import, new rules) into fresh partitions with
    the unchanged rows carried over, for the caller to swap in: inserting into a dozen indexes costs about ten
    times building them once (measured at 2M events). The first chunk to change decides for the step's others
    (`swap`): one step never does both, since rows written through the table and then a wait for its exclusive
    lock could wait for ever on another rebuild doing the same."""
    _, changed = differences(stored.select(*SERVED_SCHEMA).lazy(), current.select(*SERVED_SCHEMA).lazy())
    written = current.join(changed.select("lead_key").collect(), on="lead_key", how="semi")
    # A lead no longer scored (every event of it set aside) is no longer served either.
    gone = stored.join(current.select("lead_key"), on="lead_key", how="anti")
    if written.is_empty() and gone.is_empty():
        return written, swap, ()
    if swap is None:
        swap = written.height * SWAP_SHARE >= stored.height
    if not swap:
        _delete_keys(
            conn, "current_scores", ("lead_key",), pl.concat([written.select("lead_key"), gone.select("lead_key")])
        )
        copy_frame(conn, "current_scores", written)
        for bucket in buckets:
            analyze(conn, partition_name("current_scores", bucket))
        return written, swap, ()
    kept = stored.join(current.select("lead_key"), on="lead_key", how="semi").join(
        written.select("lead_key"), on="lead_key", how="anti"
    )
    _stage_buckets(conn, "current_scores", buckets, kept, written)
    return written, swap, buckets


def decay_scores(
    conn: psycopg.Connection,
    scope: Scope,
    params: ScoringParams,
    tiers: TierThresholds,
    as_of: datetime | None = None,
) -> StepResult:
    """Write each lead's current score and tier as of `as_of`: leads rescored since last time, or whole buckets."""
    as_of = as_of or clock.utc_now()
    if not scope.incremental:
        return _serve_buckets(conn, scope, params, tiers, as_of)
    with conn.transaction():
        # Hold off scorers and every bucket: what we read is exactly what we replace.
        lock(conn, [SCORE_LOCK, DECAY_LOCK])
        lock_buckets(conn, ALL_BUCKETS)
        state = state_of(conn)
        # Leads rescored since, and those rescored for a merge or split (whose seq is no newer, restaged_leads).
        # A union, not an `or`, as an array: each partition is probed by its key index, where an `or` or a
        # subquery scans every lead.
        in_scope = f"""lead_key = any(array(select lead_key from lead_scores where scored_seq > {state["served_through"]}
                                            union select lead_key from restaged_leads where unserved))"""
        leads = read_frame(
            conn, f"select {', '.join(LEAD_SCORE_SCHEMA)} from lead_scores where {in_scope}", LEAD_SCORE_SCHEMA
        )
        stored = read_frame(
            conn, f"select {', '.join(STORED_SCHEMA)} from current_scores where {in_scope}", STORED_SCHEMA
        )
        current = _current(leads, stored, as_of, params, tiers)
        conn.execute(f"delete from current_scores where {in_scope}")
        copy_frame(conn, "current_scores", current)  # every one of these leads was rescored
        conn.execute("update restaged_leads set unserved = false where unserved")
        conn.execute("delete from restaged_leads where not unserved and not unstated")
        # The API's live stream listens: it reads the rows with new change ids once this commits.
        conn.execute("select pg_notify('score_updates', '')")
        # Under SCORE_LOCK every lead scored through scored_through is committed and was read.
        conn.execute("update pipeline_state set served_through = %s", (state["scored_through"],))
    details = {"leads": current.height, "rows_written": current.height}
    return StepResult(current.height, 0, details)


def _serve_buckets(
    conn: psycopg.Connection, scope: Scope, params: ScoringParams, tiers: TierThresholds, as_of: datetime
) -> StepResult:
    """Serve whole buckets' scores decayed to `as_of`, a chunk at a time; the chunks with many changes swapped."""
    leads_served, rows_written, swap, swapped = 0, 0, None, ()
    with conn.transaction():
        lock_buckets(conn, scope.buckets)
        for chunk in bucket_chunks(conn, scope.buckets):
            leads = read_frame(
                conn,
                f"select {', '.join(LEAD_SCORE_SCHEMA)} from {bucket_rows('lead_scores', chunk)}",
                LEAD_SCORE_SCHEMA,
            )
            stored = read_frame(
                conn, f"select {', '.join(STORED_SCHEMA)} from {bucket_rows('current_scores', chunk)}", STORED_SCHEMA
            )
            current = _current(leads, stored, as_of, params, tiers)
            written, swap, staged = _rewrite_served_buckets(conn, chunk, stored, current, swap)
            swapped += staged
            leads_served, rows_written = leads_served + current.height, rows_written + written.height
        _swap_staged(conn, swapped, ("current_scores",), move_served_totals)
        # The API's live stream listens: it reads the rows with new change ids once this commits.
        conn.execute("select pg_notify('score_updates', '')")
        # What the served scores of each bucket reflect: the oldest rules any of its leads was scored with.
        conn.execute(
            f"""update bucket_state b set updated_at = now(), rules_version = coalesce(
                    (select min(l.rules_version) from lead_scores l where l.lead_bucket = b.lead_bucket),
                    (select rules_version from pipeline_state))
                where b.lead_bucket in {buckets_sql(scope.buckets)}"""
        )
        conn.execute("update pipeline_state set last_decay_at = now()")
        finish_catch_up_step(conn, scope, "served_through")
    details = {"leads": leads_served, "rows_written": rows_written}
    return StepResult(leads_served, 0, details)


def _current(
    leads: pl.DataFrame, stored: pl.DataFrame, as_of: datetime, params: ScoringParams, tiers: TierThresholds
) -> pl.DataFrame:
    previous = stored.select("lead_key", previous_score="score")
    return current_rows(leads.lazy(), previous.lazy(), as_of, params, tiers).collect()
