"""A lead's score over time, to draw: the score after each event, and each UTC midnight's decay step between events
and after the last one (SPEC §4: DECAY_POINTS at every midnight past INACTIVITY_DAYS, never below FLOOR)."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from leadscore_pipeline.scoring.fold import utc_day_of
from leadscore_pipeline.scoring.params import ScoringParams

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CURVE_SCHEMA = {"at": pl.Datetime("us", "UTC"), "score": pl.Int64, "kind": pl.String}


def score_curve(history: pl.DataFrame, as_of: datetime, params: ScoringParams) -> pl.DataFrame:
    """`history`: a lead's rows (event_time, score_after) in event order. One row per event (kind `event`) and per
    midnight that lowers the score (kind `decay`), up to `as_of`; the decay stops at the floor, so a gap adds at
    most (score - FLOOR) / DECAY_POINTS rows."""
    if history.is_empty():
        return pl.DataFrame(schema=CURVE_SCHEMA)
    as_of_day = utc_day_of(as_of)
    day = pl.col("event_time").dt.epoch("d").cast(pl.Int64)
    gaps = history.select(
        score=pl.col("score_after"),
        # The first midnight that decays, and the last one before the next event (or as_of).
        first=day + params.inactivity_days + 1,
        last=pl.col("event_time").shift(-1).dt.epoch("d").cast(pl.Int64).fill_null(as_of_day),
    )
    to_floor = (
        (pl.col("score") - params.floor + params.decay_points - 1) // params.decay_points
        if params.decay_points > 0
        else pl.lit(0, pl.Int64)
    )
    steps = (pl.col("last") - pl.col("first") + 1).clip(lower_bound=0)
    decays = (
        gaps.with_columns(step=pl.int_ranges(1, pl.min_horizontal(steps, to_floor).clip(lower_bound=0) + 1))
        .explode("step")
        .drop_nulls("step")
        .select(
            at=pl.lit(_EPOCH) + pl.duration(days=pl.col("first") + pl.col("step") - 1),
            score=(pl.col("score") - params.decay_points * pl.col("step")).clip(lower_bound=params.floor),
            kind=pl.lit("decay"),
        )
    )
    events = history.select(at="event_time", score="score_after", kind=pl.lit("event"))
    return (
        # Decay first: at a midnight that is also an event's moment, the decay comes before the event's points.
        pl.concat([decays.cast(CURVE_SCHEMA), events.cast(CURVE_SCHEMA)])
        .sort("at", maintain_order=True)
        .filter(pl.col("at") <= as_of)
    )
