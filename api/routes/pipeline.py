"""Pipeline status: how far landing, dedup and scoring have got, and which rules the scores reflect."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from api.deps import ConnDep
from api.schemas import PipelineStatus

router = APIRouter(prefix="/api/pipeline", tags=["pipeline"])


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
                s.last_decay_at
            from pipeline_state s
            """
            )
        )
        .mappings()
        .one()
    )
    return {**row, "lag": row["landed_through"] - row["scored_through"]}
