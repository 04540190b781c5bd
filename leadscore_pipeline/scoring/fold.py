"""The score fold of SPEC §4 as vectorized Polars: per-event history, per-lead totals, decay to now, tiers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import polars as pl

from leadscore_pipeline.scoring.params import ScoringParams, TierThresholds

# Stands in for "no bound" in a clamp-add map; far beyond any reachable sum of points and decay.
_UNBOUNDED = 2**40
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

HISTORY_SCHEMA = pl.Schema(
    {
        "lead_key": pl.String(),
        "event_id": pl.String(),
        "event_type": pl.String(),
        "event_time": pl.Datetime("us", "UTC"),
        "points": pl.Int64(),
        "decay": pl.Int64(),
        "change": pl.Int64(),
        "score_after": pl.Int64(),
        "note": pl.String(),
    }
)
# The history's note on an event that a rule's daily limit left without points.
DAILY_LIMIT_NOTE = "daily limit reached"


class ClampAdd(NamedTuple):
    """The map s -> min(high, max(low, s + add)) as three Int64 expressions (low <= high)."""

    add: pl.Expr
    low: pl.Expr
    high: pl.Expr


def _clamp(value: pl.Expr, low: pl.Expr, high: pl.Expr) -> pl.Expr:
    return value.clip(low, high)


def _compose(first: ClampAdd, then: ClampAdd) -> ClampAdd:
    """The map `then(first(s))`, again a clamp-add map.

    then(first(s)) = clamp(clamp(s + a1, l1, h1) + a2, l2, h2)
                   = clamp(clamp(s + a1 + a2, l1 + a2, h1 + a2), l2, h2)
                   = clamp(s + a1 + a2, clamp(l1 + a2, l2, h2), clamp(h1 + a2, l2, h2))
    using clamp(clamp(x, a, b), c, d) = clamp(x, clamp(a, c, d), clamp(b, c, d)) for a <= b, c <= d.
    """
    return ClampAdd(
        add=first.add + then.add,
        low=_clamp(first.low + then.add, then.low, then.high),
        high=_clamp(first.high + then.add, then.low, then.high),
    )


def _utc_day(moment: pl.Expr) -> pl.Expr:
    """floor(epoch seconds / 86400): the number of UTC midnights since 1970-01-01."""
    return moment.dt.epoch("d").cast(pl.Int64)


def _decay_steps(previous_day: pl.Expr, day: pl.Expr, params: ScoringParams) -> pl.Expr:
    """steps(p, t) = max(0, utc_day(t) - (utc_day(p) + INACTIVITY_DAYS))."""
    return (day - previous_day - params.inactivity_days).clip(lower_bound=0)


def _rank_that_day(ordered: pl.DataFrame) -> pl.Series:
    """For events in (lead_key, event_time) order with their `position` in the lead and UTC `day`: how many of the
    lead's events of the same type came before on that day (0 for the first). A (lead, day) is a run of rows, so
    one sort of (run, type, row) brings each type's events of the run together, in event order: a window over
    three keys took about eight times as long."""
    idx = pl.int_range(pl.len(), dtype=pl.Int64)
    new_run = (pl.col("position") == 0) | (pl.col("day") != pl.col("day").shift(1))
    keyed = ordered.select(pl.col("event_type"), row=idx, run=new_run.fill_null(True).cum_sum())
    starts = (pl.col("run") != pl.col("run").shift(1)) | (pl.col("event_type") != pl.col("event_type").shift(1))
    return (
        keyed.sort("run", "event_type", "row")
        .with_columns(rank=idx - pl.when(starts.fill_null(True)).then(idx).forward_fill())
        .sort("row")["rank"]
    )


def score_history(events: pl.LazyFrame, rules: pl.LazyFrame, params: ScoringParams) -> pl.LazyFrame:
    """One row per event with the points, decay, change and score after it, per SPEC §4.

    `events`: lead_key, event_id, event_type, event_time (deduplicated); `rules`: event_type, points,
    active and optionally max_per_day (one row per event_type; a null limit is none). The result is sorted by
    (lead_key, event_time, event_id).

    A daily limit k is a rank within (lead, event type, UTC day) in event order, taken before the scan: events
    past the k-th score 0 and carry DAILY_LIMIT_NOTE. It depends only on the lead's own events, so a lead
    scored from its whole history gets the same ranks in a micro-batch as in a replay.

    Each event is the clamp-add map "decay since the previous event, then add its points"; the score
    after event i is the composition of the lead's maps up to i applied to 0, computed for all rows at
    once by a Hillis-Steele doubling scan (ceil(log2(largest lead's event count)) passes).
    """
    limit = pl.col("max_per_day") if "max_per_day" in rules.collect_schema() else pl.lit(None)
    active_points = rules.select(
        "event_type",
        points=pl.when(pl.col("active")).then(pl.col("points")).otherwise(0).cast(pl.Int64),
        # An inactive rule gives no points, so it has nothing to limit.
        max_per_day=pl.when(pl.col("active")).then(limit).cast(pl.Int64),
    )
    row = pl.int_range(pl.len(), dtype=pl.Int64)
    starts_lead = pl.col("lead_key").ne_missing(pl.col("lead_key").shift(1))
    ordered = (
        events.select("lead_key", "event_id", "event_type", "event_time")
        .join(active_points, on="event_type", how="left", validate="m:1")
        .with_columns(pl.col("points").fill_null(0))
        .sort("lead_key", "event_time", "event_id")
        .with_columns(
            # Index of the event within its lead: row i-d is the same lead exactly when position >= d.
            position=row - pl.when(starts_lead).then(row).forward_fill(),
            day=_utc_day(pl.col("event_time")),
        )
        .with_columns(
            steps=pl.when(pl.col("position") > 0)
            .then(_decay_steps(pl.col("day").shift(1), pl.col("day"), params))
            .otherwise(0)
        )
        # The number of scan passes depends on the data, so the prepared frame is materialized once here.
        .collect()
    )
    limited = (
        (_rank_that_day(ordered) >= ordered["max_per_day"]).fill_null(False)
        if ordered["max_per_day"].is_not_null().any()
        else pl.repeat(False, ordered.height, eager=True)
    )
    ordered = ordered.with_columns(
        points=pl.when(limited).then(0).otherwise(pl.col("points")),
        note=pl.when(limited).then(pl.lit(DAILY_LIMIT_NOTE)),
    )
    largest_lead = 0 if ordered.height == 0 else int(ordered["position"].max()) + 1

    floor, cap = pl.lit(params.floor, pl.Int64), pl.lit(params.cap, pl.Int64)
    is_first = pl.col("position") == 0
    decay_map = ClampAdd(
        add=-params.decay_points * pl.col("steps"),
        # A lead's first event has no decay before it: the identity map, so the fold starts from 0.
        low=pl.when(is_first).then(-_UNBOUNDED).otherwise(floor),
        high=pl.lit(_UNBOUNDED, pl.Int64),
    )
    points_map = ClampAdd(add=pl.col("points"), low=floor, high=cap)
    event_map = _compose(decay_map, points_map)

    scan = ordered.lazy().with_columns(add=event_map.add, low=event_map.low, high=event_map.high)
    prefix = ClampAdd(pl.col("add"), pl.col("low"), pl.col("high"))
    offset = 1
    while offset < largest_lead:
        # After this pass each row holds the composition of up to 2 * offset of its lead's maps.
        earlier = ClampAdd(*(part.shift(offset) for part in prefix))
        combined = _compose(earlier, prefix)
        reaches_earlier = pl.col("position") >= offset
        scan = scan.with_columns(
            add=pl.when(reaches_earlier).then(combined.add).otherwise(prefix.add),
            low=pl.when(reaches_earlier).then(combined.low).otherwise(prefix.low),
            high=pl.when(reaches_earlier).then(combined.high).otherwise(prefix.high),
        )
        offset *= 2

    score_before = pl.when(is_first).then(0).otherwise(pl.col("score_after").shift(1))
    decayed = (score_before - params.decay_points * pl.col("steps")).clip(lower_bound=params.floor)
    return (
        scan.with_columns(score_after=_clamp(pl.lit(0, pl.Int64) + prefix.add, prefix.low, prefix.high))
        .with_columns(
            decay=pl.when(is_first).then(0).otherwise(score_before - decayed),
            change=pl.col("score_after") - score_before,
        )
        .select(HISTORY_SCHEMA.names())
        .cast(dict(HISTORY_SCHEMA))
    )


def lead_totals(history: pl.LazyFrame) -> pl.LazyFrame:
    """Per lead_key: score_at_last_event, last_event_at, first_event_at, event_count (sorted by lead_key)."""
    return (
        history.group_by("lead_key")
        .agg(
            score_at_last_event=pl.col("score_after").sort_by("event_time", "event_id").last(),
            last_event_at=pl.col("event_time").max(),
            first_event_at=pl.col("event_time").min(),
            event_count=pl.len().cast(pl.Int64),
        )
        .sort("lead_key")
    )


def current_score(
    score_at_last_event: pl.Expr, last_event_at: pl.Expr, as_of: datetime, params: ScoringParams
) -> pl.Expr:
    """The score at `as_of`: decay for the UTC midnights past the inactivity window, never below FLOOR.

    A naive `as_of` is taken as UTC; a null input gives a null score.
    """
    steps = _decay_steps(_utc_day(last_event_at), pl.lit(utc_day_of(as_of), pl.Int64), params)
    return (score_at_last_event - params.decay_points * steps).clip(lower_bound=params.floor)


def tier(score: pl.Expr, thresholds: TierThresholds) -> pl.Expr:
    """cold < warm <= warm < hot <= hot < qualified <= qualified; a null score has no tier."""
    return (
        pl.when(score >= thresholds.qualified)
        .then(pl.lit("qualified"))
        .when(score >= thresholds.hot)
        .then(pl.lit("hot"))
        .when(score >= thresholds.warm)
        .then(pl.lit("warm"))
        .when(score.is_not_null())
        .then(pl.lit("cold"))
    )


def score_at(score_at_last_event: int, last_event_at: datetime, as_of: datetime, params: ScoringParams) -> int:
    """current_score for one lead (a read of one lead's score at a moment), by the same expression."""
    return pl.select(current_score(pl.lit(score_at_last_event, pl.Int64), pl.lit(last_event_at), as_of, params)).item()


def tier_of(score: int, thresholds: TierThresholds) -> str:
    return pl.select(tier(pl.lit(score, pl.Int64), thresholds)).item()


def utc_day_of(moment: datetime) -> int:
    """utc_day of SPEC §4 for one moment (a naive one taken as UTC)."""
    moment_utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return (moment_utc - _EPOCH) // timedelta(days=1)
