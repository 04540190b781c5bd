"""Pipeline status: how far landing, dedup and scoring have got, which rules the scores reflect, and which
deliveries were set aside because a step failed on them."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from api.deps import ConnDep
from api.schemas import PipelineStatus

router = APIRouter(prefix="/api/pipeline", tags=["pipeline"])
QUARANTINED_SHOWN = 5


@router.get("/status", response_model=PipelineStatus)
def pipeline_status(conn: ConnDep) -> dict:
    row = (
        conn.execute(
            text(
                """
            select
                (select coalesce(max(seq), 0) from raw_deliveries) as landed_through,
                s.deduped_through,
                s.served_through as scored_through,
                s.rules_version,
                (select min(rules_version) from bucket_state) as scored_rules_version,
                s.last_microbatch_at,
                s.last_replay_at,
                s.last_decay_at,
                (select count(*) from quarantined_deliveries) as quarantined
            from pipeline_state s
            """
            )
        )
        .mappings()
        .one()
    )
    latest = conn.execute(
        text(
            """select seq, event_id, lead_key, step, reason, quarantined_at from quarantined_deliveries
               order by quarantined_at desc, seq desc limit :shown"""
        ),
        {"shown": QUARANTINED_SHOWN},
    ).mappings()
    return {**row, "lag": row["landed_through"] - row["scored_through"], "quarantined_latest": list(latest)}
