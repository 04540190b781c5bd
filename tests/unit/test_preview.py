"""The preview of a draft rule set: each lead's score under the draft is the fold's (whether or not the preview
folds it again), and summaries of parts combine into the summary of the whole."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from leadscore_pipeline.scoring.fold import current_score, lead_totals, score_history
from leadscore_pipeline.scoring.params import TierThresholds
from leadscore_pipeline.scoring.preview import PreviewPart, changed_types, lead_moves, preview_summary
from tests.unit.test_fold import EVENT_TYPES, START, events_frame, rules_frame, scoring_cases

TIERS = TierThresholds()
TIER_NAMES = ("cold", "warm", "hot", "qualified")
AS_OF = START + timedelta(days=230)
rule_sets = st.dictionaries(
    st.sampled_from(EVENT_TYPES[:-1]),
    st.tuples(st.integers(-200, 400), st.booleans(), st.one_of(st.none(), st.integers(1, 3))),
    max_size=6,
)


def stored_scores(events, rules, params, stale: set[str]) -> pl.LazyFrame:
    """lead_scores as the pipeline keeps them: folded under `rules` (rules version 2), the `stale` leads under
    version 1 with a score the current rules would not give."""
    totals = lead_totals(score_history(events_frame(events), rules_frame(rules), params))
    stale_key = pl.col("lead_key").is_in(sorted(stale))
    return totals.with_columns(
        email=pl.col("lead_key"),
        name=pl.lit(None, pl.String),
        company=pl.lit(None, pl.String),
        score_at_last_event=pl.when(stale_key).then(pl.lit(params.floor)).otherwise(pl.col("score_at_last_event")),
        rules_version=pl.when(stale_key).then(1).otherwise(2),
    )


@settings(max_examples=150, deadline=None)
@given(scoring_cases(), rule_sets, st.data())
def test_a_leads_score_under_the_draft_is_the_folds(case, draft, data):
    events, current, params = case
    stale = set(data.draw(st.lists(st.sampled_from(["a@example.com", "b@example.com", "id:42"]), max_size=2)))
    stored = stored_scores(events, current, params, stale)
    changed = changed_types(rules_frame(current), rules_frame(draft))
    moves = lead_moves(events_frame(events), rules_frame(draft), stored, changed, 2, AS_OF, params, TIERS).collect()

    folded = lead_totals(score_history(events_frame(events), rules_frame(draft), params)).select(
        "lead_key", score=current_score(pl.col("score_at_last_event"), pl.col("last_event_at"), AS_OF, params)
    )
    expected = dict(folded.collect().iter_rows())
    assert dict(moves.select("lead_key", "score_after").iter_rows()) == expected
    # As the preview reads them: only the events of leads with a changed type's event, stale or not stored.
    types = set(changed.collect()["event_type"])
    stored_keys = set(stored.filter(pl.col("rules_version") == 2).collect()["lead_key"])
    needed = {e[0] for e in events if e[2] in types} | {e[0] for e in events if e[0] not in stored_keys}
    read = [e for e in events if e[0] in needed]
    partial = lead_moves(events_frame(read), rules_frame(draft), stored, changed, 2, AS_OF, params, TIERS).collect()
    assert partial.sort("lead_key").equals(moves.sort("lead_key"))


@settings(max_examples=100, deadline=None)
@given(scoring_cases(), rule_sets, st.integers(1, 4))
def test_the_summary_of_parts_is_the_summary_of_the_whole(case, draft, parts):
    events, current, params = case
    stored = stored_scores(events, current, params, set())
    changed = changed_types(rules_frame(current), rules_frame(draft))
    moves = lead_moves(events_frame(events), rules_frame(draft), stored, changed, 2, AS_OF, params, TIERS).collect()
    whole = preview_summary(PreviewPart.of(moves.lazy()), TIER_NAMES)
    split = [moves.filter(pl.col("lead_key").hash() % parts == part) for part in range(parts)]
    combined = preview_summary(PreviewPart.combined([PreviewPart.of(part.lazy()) for part in split]), TIER_NAMES)
    assert combined == whole
    assert whole["leads"] == moves.height == sum(whole["tiers_after"].values())


def test_changed_types_compare_what_the_fold_sees():
    current = {"A": (5, True), "B": (7, False), "C": (3, True, 2), "D": (1, True)}
    draft = {"A": (5, True, None), "B": (9, False), "C": (3, True, 1), "E": (0, True)}
    # B stays inactive (0 points either way); E's 0 points are no rule's 0; D is gone: 1 -> 0; C's limit changes.
    assert changed_types(rules_frame(current), rules_frame(draft)).collect()["event_type"].sort().to_list() == [
        "C",
        "D",
    ]
