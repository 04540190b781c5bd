"""Asset checks on what is stored: each one asks Postgres (SQL aggregates), so it fails on what is really in the
tables whoever wrote them, and can be run again from the UI. Checks of a bucketed asset look at the buckets they
are run for (an aggregate over those partitions); the maintained totals are compared with a full recount."""

from collections.abc import Callable

import dagster as dg
import psycopg

from leadscore_pipeline.partitions import lead_buckets
from leadscore_pipeline.resources import PostgresResource
from leadscore_pipeline.settings import Settings, get_settings

SAMPLE = 5  # offending keys shown in a failed check's metadata


def _buckets(context: dg.AssetCheckExecutionContext) -> list[int]:
    return [int(key) for key in context.partition_keys]


def _result(conn: psycopg.Connection, offenders_sql: str, params: dict, what: str) -> dg.AssetCheckResult:
    """Passed when `offenders_sql` finds nothing; else how many it finds and a few of them."""
    (violations,) = conn.execute(f"select count(*) from ({offenders_sql}) as offenders", params).fetchone()
    metadata: dict[str, object] = {"violations": violations}
    if violations:
        sample = conn.execute(f"{offenders_sql} limit {SAMPLE}", params).fetchall()
        metadata["sample"] = [str(row[0]) for row in sample]
    return dg.AssetCheckResult(passed=violations == 0, metadata=metadata, description=f"{violations} {what}")


def _bucket_check(
    asset: str,
    name: str,
    description: str,
    offenders_sql: str,
    what: str,
    settings_params: Callable[[Settings], dict] = lambda settings: {},
) -> dg.AssetChecksDefinition:
    """A check of `asset` over the buckets it is run for: `offenders_sql` (given `buckets` and the parameters the
    settings give) lists what breaks it."""

    @dg.asset_check(asset=asset, name=name, partitions_def=lead_buckets, description=description)
    def _check(context: dg.AssetCheckExecutionContext, postgres: PostgresResource) -> dg.AssetCheckResult:
        params = {"buckets": _buckets(context), **settings_params(get_settings())}
        with postgres.connect() as conn:
            return _result(conn, offenders_sql, params, what)

    return _check


# An event id in these buckets that is also stored in another bucket's partition: the primary key is
# (event_id, lead_bucket), so Postgres alone does not forbid it. Probed by the event_id index, row by row: a
# grouping of the whole table took 70 s at 2M events, and held every other group's swap behind it meanwhile.
_DUPLICATE_IDS = """
    select c.event_id from clean_events as c
    where c.lead_bucket = any(%(buckets)s)
      and exists (select 1 from clean_events as o where o.event_id = c.event_id and o.lead_bucket <> c.lead_bucket)
"""


unique_event_ids = _bucket_check(
    "clean_events",
    "unique_event_ids",
    "No event id is stored twice: each event id of these buckets is in clean_events once, in all buckets.",
    _DUPLICATE_IDS,
    "event ids stored more than once",
)

# Only events through the scored watermark: a micro-batch's newest events are clean a moment before they are scored.
# Each event's lead is the one its key resolves to (SPEC §3); a lead queued for the identity rescore is not yet due.
_UNSCORED_LEADS = """
    select distinct coalesce(a.lead_key, c.lead_key) from clean_events as c
    left join lead_aliases as a on a.identity_key = c.lead_key
    where c.lead_bucket = any(%(buckets)s) and c.seq <= (select scored_through from pipeline_state)
      and not exists (
          select 1 from lead_scores as l
          where l.lead_bucket = coalesce(a.lead_bucket, c.lead_bucket) and l.lead_key = coalesce(a.lead_key, c.lead_key)
      )
      and coalesce(a.lead_key, c.lead_key) not in (select lead_key from identity_rescores)
"""


every_lead_scored = _bucket_check(
    "lead_scores",
    "every_lead_scored",
    "Every lead of a clean event (through the scored watermark) has its lead_scores row.",
    _UNSCORED_LEADS,
    "leads with clean events but no score",
)

_OUT_OF_BOUNDS = """
    select lead_key from lead_scores
    where lead_bucket = any(%(buckets)s) and score_at_last_event not between %(floor)s and %(cap)s
"""


scores_within_bounds = _bucket_check(
    "lead_scores",
    "scores_within_bounds",
    "Every score at a lead's last event is within [LEADSCORE_SCORE_FLOOR, LEADSCORE_SCORE_CAP].",
    _OUT_OF_BOUNDS,
    "scores outside [floor, cap]",
    lambda settings: {"floor": settings.scoring.floor, "cap": settings.scoring.cap},
)

# SPEC §4: a lead's changes add up to its score at its last event, and its last row's score_after is that score.
_HISTORY_MISMATCHES = """
    select l.lead_key from lead_scores as l
    left join (
        select lead_key, sum(change) as total,
               (array_agg(score_after order by event_time desc, event_id desc))[1] as last_score
        from score_history where lead_bucket = any(%(buckets)s)
        group by lead_key
    ) as h on h.lead_key = l.lead_key
    where l.lead_bucket = any(%(buckets)s)
      and (h.total is distinct from l.score_at_last_event or h.last_score is distinct from l.score_at_last_event)
"""


history_sums_to_score = _bucket_check(
    "score_history",
    "history_sums_to_score",
    "Each lead's history changes add up to its score, and its last row's score_after is that score.",
    _HISTORY_MISMATCHES,
    "leads whose history does not add up to their score",
)

_CURRENT_MISMATCHES = """
    select lead_key from current_scores
    where lead_bucket = any(%(buckets)s)
      and (score not between %(floor)s and greatest(score_at_last_event, %(floor)s)
           or tier is distinct from case when score >= %(qualified)s then 'qualified' when score >= %(hot)s then 'hot'
                                         when score >= %(warm)s then 'warm' else 'cold' end)
"""


current_scores_agree = _bucket_check(
    "current_scores",
    "current_scores_agree",
    "Every current score is within [floor, score at last event] and its tier is the one its score gives.",
    _CURRENT_MISMATCHES,
    "current scores out of bounds or with the wrong tier",
    lambda settings: {
        "floor": settings.scoring.floor,
        "warm": settings.tiers.warm,
        "hot": settings.tiers.hot,
        "qualified": settings.tiers.qualified,
    },
)

# Each maintained aggregate (migration 0005, kept by triggers) beside a recount from its sources, as rows to compare.
RECOUNTS = {
    "serving_totals": (
        """select leads, total_points, cold, warm, hot, qualified, events, duplicates, conflicts, rejections
           from serving_totals""",
        """select s.*, e.*, r.* from (
               select count(*), coalesce(sum(score), 0)::bigint, count(*) filter (where tier = 'cold'),
                      count(*) filter (where tier = 'warm'), count(*) filter (where tier = 'hot'),
                      count(*) filter (where tier = 'qualified')
               from current_scores) as s,
           (select count(*), coalesce(sum(duplicates), 0)::bigint, coalesce(sum(conflicts), 0)::bigint
            from clean_events) as e,
           (select count(*) from ingest_rejections) as r""",
    ),
    "company_totals": (
        "select company, leads, total_score from company_totals",
        "select company, count(*), sum(score)::bigint from current_scores where company is not null group by company",
    ),
    "event_type_totals": (
        "select event_type, events, unique_leads, points, conversions from event_type_totals",
        """select event_type, sum(events)::bigint, count(*) filter (where events > 0), sum(points)::bigint,
                  sum(conversions)::bigint
           from lead_event_stats group by event_type""",
    ),
}


def _recount_check(table: str) -> dg.AssetChecksDefinition:
    maintained, recount = RECOUNTS[table]

    @dg.asset_check(
        asset=table,
        name="equals_recount",
        description=f"{table}, kept by triggers, equals a recount from its source tables (a full scan of them).",
    )
    def _check(postgres: PostgresResource) -> dg.AssetCheckResult:
        # In one snapshot: a write committing between the two reads would otherwise look like a mismatch.
        with postgres.connect() as conn, conn.transaction():
            conn.execute("set transaction isolation level repeatable read")
            differences = conn.execute(
                f"select count(*) from (({maintained}) except all ({recount})"
                f" union all (({recount}) except all ({maintained}))) as differences"
            ).fetchone()[0]
        return dg.AssetCheckResult(
            passed=differences == 0,
            metadata={"rows_differing": differences},
            description=f"{differences} row(s) differ from the recount",
        )

    return _check


stored_table_checks = [
    unique_event_ids,
    every_lead_scored,
    scores_within_bounds,
    history_sums_to_score,
    current_scores_agree,
    *(_recount_check(table) for table in RECOUNTS),
]
