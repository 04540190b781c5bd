"""What a draft rule set would do to the scores, from the same fold: per lead before and after, then the summary a
user reads before saving (tier moves, top movers, the new top). Summaries of parts combine, so the stored history
can be read a few buckets at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from leadscore_pipeline.scoring.fold import current_score, lead_totals, score_history, tier
from leadscore_pipeline.scoring.params import ScoringParams, TierThresholds

# The tier of a lead with events but no stored score yet (landed, not scored): it moves from here.
UNSCORED = "unscored"
TOP_LEADS = 25
TOP_MOVERS = 10
PROFILE = ("email", "name", "company")


def changed_types(current: pl.LazyFrame, draft: pl.LazyFrame) -> pl.LazyFrame:
    """The event types whose points or daily limit differ between two rule sets, as the fold sees them (an inactive
    or absent rule gives 0 points and has no limit): only a lead with an event of one of them can score otherwise."""

    def effective(rules: pl.LazyFrame) -> pl.LazyFrame:
        return rules.select(
            "event_type",
            points=pl.when(pl.col("active")).then(pl.col("points")).otherwise(0),
            max_per_day=pl.when(pl.col("active")).then(pl.col("max_per_day")),
        )

    both = effective(current).join(effective(draft), on="event_type", how="full", coalesce=True, suffix="_draft")
    differs = pl.col("points").fill_null(0).ne(pl.col("points_draft").fill_null(0)) | pl.col("max_per_day").ne_missing(
        pl.col("max_per_day_draft")
    )
    return both.filter(differs).select("event_type")


def lead_moves(
    events: pl.LazyFrame,
    draft_rules: pl.LazyFrame,
    stored: pl.LazyFrame,
    changed: pl.LazyFrame,
    rules_version: int,
    as_of: datetime,
    params: ScoringParams,
    tiers: TierThresholds,
) -> pl.LazyFrame:
    """Per lead: score_before and tier_before (its stored score decayed to `as_of`), score_after and
    tier_after (the fold of its events under `draft_rules`, decayed to `as_of`) and the change.

    `stored`: lead_scores rows (lead_key, email, name, company, score_at_last_event, last_event_at, rules_version),
    every lead's; `events`: lead_key, event_id, event_type, event_time of at least the leads to fold again;
    `changed`: changed_types(current, draft). Only the leads with an event of a changed type, or not stored under
    the current `rules_version`, are folded again: the others' stored score is what the draft gives them too, so
    their events need not be read."""
    stored = stored.with_columns(
        score_before=current_score(pl.col("score_at_last_event"), pl.col("last_event_at"), as_of, params)
    )
    with_events = events.select("lead_key").unique()
    touched = events.join(changed, on="event_type", how="semi").select("lead_key").unique()
    current = stored.filter(pl.col("rules_version") == rules_version)
    not_current = with_events.join(current, on="lead_key", how="anti")
    refold = pl.concat([touched, not_current]).unique()
    refolded = lead_totals(score_history(events.join(refold, on="lead_key", how="semi"), draft_rules, params)).select(
        "lead_key", score_after=current_score(pl.col("score_at_last_event"), pl.col("last_event_at"), as_of, params)
    )
    kept = current.join(refold, on="lead_key", how="anti").select("lead_key", score_after="score_before")
    return (
        pl.concat([refolded, kept])
        .join(stored.select("lead_key", *PROFILE, "score_before"), on="lead_key", how="left")
        .with_columns(
            tier_before=tier(pl.col("score_before"), tiers).fill_null(UNSCORED),
            tier_after=tier(pl.col("score_after"), tiers),
            change=pl.col("score_after") - pl.col("score_before").fill_null(0),
        )
        .select("lead_key", *PROFILE, "score_before", "tier_before", "score_after", "tier_after", "change")
    )


@dataclass(frozen=True)
class PreviewPart:
    """The summary of some leads: tier moves counted, and the only leads that can be among the top or the movers."""

    moves: pl.DataFrame  # tier_before, tier_after, leads
    candidates: pl.DataFrame  # lead_moves rows

    @staticmethod
    def of(leads: pl.LazyFrame) -> PreviewPart:
        moves = leads.group_by("tier_before", "tier_after").agg(leads=pl.len().cast(pl.Int64))
        moved = leads.filter(pl.col("change") != 0)
        candidates = pl.concat(
            [
                leads.sort(["score_after", "lead_key"], descending=[True, False]).head(TOP_LEADS),
                moved.sort(["change", "lead_key"], descending=[True, False]).head(TOP_MOVERS),
                moved.sort(["change", "lead_key"]).head(TOP_MOVERS),
            ]
        ).unique("lead_key", keep="first")
        moves, candidates = pl.collect_all([moves, candidates])
        return PreviewPart(moves, candidates)

    @staticmethod
    def combined(parts: list[PreviewPart]) -> PreviewPart:
        """One summary of disjoint sets of leads: the top of the union is among the tops of the parts."""
        if not parts:
            return PreviewPart.of(pl.LazyFrame(schema=_LEAD_MOVES_SCHEMA))
        moves = (
            pl.concat([part.moves for part in parts]).group_by("tier_before", "tier_after").agg(pl.col("leads").sum())
        )
        reduced = PreviewPart.of(pl.concat([part.candidates for part in parts]).lazy())
        return PreviewPart(moves, reduced.candidates)


_LEAD_MOVES_SCHEMA = {
    "lead_key": pl.String,
    "email": pl.String,
    "name": pl.String,
    "company": pl.String,
    "score_before": pl.Int64,
    "tier_before": pl.String,
    "score_after": pl.Int64,
    "tier_after": pl.String,
    "change": pl.Int64,
}


def preview_summary(part: PreviewPart, tier_names: tuple[str, ...]) -> dict:
    """The answer: the from -> to matrix (every tier, zeros included), tier counts before and after, the leads
    that change tier, the top movers up and down, and the top TOP_LEADS under the draft."""
    counts = {(row["tier_before"], row["tier_after"]): row["leads"] for row in part.moves.iter_rows(named=True)}
    sources = (*tier_names, UNSCORED) if any(before == UNSCORED for before, _ in counts) else tier_names
    matrix = {before: {after: counts.get((before, after), 0) for after in tier_names} for before in sources}
    leads = part.candidates
    moved = leads.filter(pl.col("change") != 0)
    return {
        "leads": sum(counts.values()),
        "tier_changes": sum(n for (before, after), n in counts.items() if before != after),
        "matrix": matrix,
        "tiers_before": {name: sum(matrix.get(name, {}).values()) for name in sources},
        "tiers_after": {name: sum(row[name] for row in matrix.values()) for name in tier_names},
        "top_movers_up": moved.filter(pl.col("change") > 0)
        .sort(["change", "lead_key"], descending=[True, False])
        .head(TOP_MOVERS)
        .to_dicts(),
        "top_movers_down": moved.filter(pl.col("change") < 0).sort(["change", "lead_key"]).head(TOP_MOVERS).to_dicts(),
        "top": leads.sort(["score_after", "lead_key"], descending=[True, False]).head(TOP_LEADS).to_dicts(),
    }
