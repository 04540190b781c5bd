"""Asset checks on what is stored: each one asks Postgres (SQL aggregates), so it fails on what is really in the
tables whoever wrote them, and can be run again from the UI. Checks of a bucketed asset look at the buckets they
are run for (an aggregate over those partitions); the maintained totals are compared with a full recount."""

import dagster as dg
import psycopg

from leadscore_pipeline.partitions import lead_buckets
from leadscore_pipeline.resources import PostgresResource
from leadscore_pipeline.settings import get_settings

SAMPLE = 5  # offending keys shown in a failed check's metadata


def _buckets(context: dg.AssetCheckExecutionContext) -> list[int]:
    return [int(key) for key in context.partition_keys]


def _result(conn: psycopg.Connection, count_sql: str, sample_sql: str, params: dict, what: str) -> dg.AssetCheckResult:
    """Passed when `count_sql` counts nothing; else the count and a few of the offenders from `sample_sql`."""
    (violations,) = conn.execute(count_sql, params).fetchone()
    metadata: dict[str, object] = {"violations": violations}
    if violations:
        sample = conn.execute(f"{sample_sql} limit {SAMPLE}", params).fetchall()
        metadata["sample"] = [str(row[0]) for row in sample]
    return dg.AssetCheckResult(passed=violations == 0, metadata=metadata, description=f"{violations} {what}")


# An event id in these buckets that is also stored in another bucket's partition: the primary key is
# (event_id, lead_bucket), so Postgres alone does not forbid it. Probed by the event_id index, row by row: a
# grouping of the whole table took 70 s at 2M events, and held every other group's swap behind it meanwhile.
_DUPLICATE_IDS = """
    select c.event_id from clean_events as c
    where c.lead_bucket = any(%(buckets)s)
      and exists (select 1 from clean_events as o where o.event_id = c.event_id and o.lead_bucket <> c.lead_bucket)
"""


@dg.asset_check(
    asset="clean_events",
    partitions_def=lead_buckets,
    description="No event id is stored twice: each event id of these buckets is in clean_events once, in all buckets.",
)
def unique_event_ids(context: dg.AssetCheckExecutionContext, postgres: PostgresResource) -> dg.AssetCheckResult:
    with postgres.connect() as conn:
        return _result(
            conn,
            f"select count(*) from ({_DUPLICATE_IDS}) as duplicates",
            _DUPLICATE_IDS,
            {"buckets": _buckets(context)},
            "event ids stored more than once",
        )


# Only events through the scored watermark: a micro-batch's newest events are clean a moment before they are scored.
_UNSCORED_LEADS = """
    select distinct c.lead_key from clean_events as c
    where c.lead_bucket = any(%(buckets)s) and c.seq <= (select scored_through from pipeline_state)
      and not exists (
          select 1 from lead_scores as l where l.lead_bucket = c.lead_bucket and l.lead_key = c.lead_key
      )
"""


@dg.asset_check(
    asset="lead_scores",
    partitions_def=lead_buckets,
    description="Every lead of a clean event (through the scored watermark) has its lead_scores row.",
)
def every_lead_scored(context: dg.AssetCheckExecutionContext, postgres: PostgresResource) -> dg.AssetCheckResult:
    with postgres.connect() as conn:
        return _result(
            conn,
            f"select count(*) from ({_UNSCORED_LEADS}) as unscored",
            _UNSCORED_LEADS,
            {"buckets": _buckets(context)},
            "leads with clean events but no score",
        )


_OUT_OF_BOUNDS = """
    select lead_key from lead_scores
    where lead_bucket = any(%(buckets)s) and score_at_last_event not between %(floor)s and %(cap)s
"""


@dg.asset_check(
    asset="lead_scores",
    partitions_def=lead_buckets,
    description="Every score at a lead's last event is within [LEADSCORE_SCORE_FLOOR, LEADSCORE_SCORE_CAP].",
)
def scores_within_bounds(context: dg.AssetCheckExecutionContext, postgres: PostgresResource) -> dg.AssetCheckResult:
    params = get_settings().scoring
    with postgres.connect() as conn:
        return _result(
            conn,
            f"select count(*) from ({_OUT_OF_BOUNDS}) as outside",
            _OUT_OF_BOUNDS,
            {"buckets": _buckets(context), "floor": params.floor, "cap": params.cap},
            "scores outside [floor, cap]",
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


@dg.asset_check(
    asset="score_history",
    partitions_def=lead_buckets,
    description="Each lead's history changes add up to its score, and its last row's score_after is that score.",
)
def history_sums_to_score(context: dg.AssetCheckExecutionContext, postgres: PostgresResource) -> dg.AssetCheckResult:
    with postgres.connect() as conn:
        return _result(
            conn,
            f"select count(*) from ({_HISTORY_MISMATCHES}) as mismatches",
            _HISTORY_MISMATCHES,
            {"buckets": _buckets(context)},
            "leads whose history does not add up to their score",
        )


_CURRENT_MISMATCHES = """
    select lead_key from current_scores
    where lead_bucket = any(%(buckets)s)
      and (score not between %(floor)s and greatest(score_at_last_event, %(floor)s)
           or tier is distinct from case when score >= %(qualified)s then 'qualified' when score >= %(hot)s then 'hot'
                                         when score >= %(warm)s then 'warm' else 'cold' end)
"""


@dg.asset_check(
    asset="current_scores",
    partitions_def=lead_buckets,
    description="Every current score is within [floor, score at last event] and its tier is the one its score gives.",
)
def current_scores_agree(context: dg.AssetCheckExecutionContext, postgres: PostgresResource) -> dg.AssetCheckResult:
    settings = get_settings()
    tiers = settings.tiers
    params = {
        "buckets": _buckets(context),
        "floor": settings.scoring.floor,
        "warm": tiers.warm,
        "hot": tiers.hot,
        "qualified": tiers.qualified,
    }
    with postgres.connect() as conn:
        return _result(
            conn,
            f"select count(*) from ({_CURRENT_MISMATCHES}) as mismatches",
            _CURRENT_MISMATCHES,
            params,
            "current scores out of bounds or with the wrong tier",
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
