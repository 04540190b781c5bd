"""The score curve: at any moment, its last point by then is the lead's score then (the fold, decayed)."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from leadscore_pipeline.scoring.curve import score_curve
from leadscore_pipeline.scoring.fold import score_at, score_history
from leadscore_pipeline.scoring.params import ScoringParams
from tests.unit.test_fold import SPAN, START, at, events_frame, rules_frame, scoring_cases


@settings(max_examples=150, deadline=None)
@given(scoring_cases(), st.lists(st.integers(0, (SPAN.days + 120) * 24), min_size=1, max_size=8))
def test_the_curve_by_any_moment_is_the_score_then(case, hours):
    events, rules, params = case
    history = score_history(events_frame(events), rules_frame(rules), params).collect()
    end = START + SPAN + timedelta(days=120)
    for lead_key in history["lead_key"].unique():
        lead = history.filter(pl.col("lead_key") == lead_key)
        curve = score_curve(lead.select("event_time", "score_after"), end, params)
        assert curve["at"].is_sorted()
        for hour in hours:
            moment = START + timedelta(hours=hour)
            by_then = lead.filter(pl.col("event_time") <= moment)
            shown = curve.filter(pl.col("at") <= moment)
            if by_then.is_empty():
                assert shown.is_empty()
                continue
            expected = score_at(by_then["score_after"][-1], by_then["event_time"][-1], moment, params)
            assert shown["score"][-1] == expected, (lead_key, moment)


def test_decay_steps_fall_at_utc_midnights_and_stop_at_the_floor():
    events = [("lead", "1", "PURCHASE", at("2026-09-01T10:00:00"))]
    history = score_history(events_frame(events), rules_frame({"PURCHASE": (20, True)}), ScoringParams()).collect()
    curve = score_curve(history.select("event_time", "score_after"), at("2026-12-31T00:00:00"), ScoringParams())
    assert curve.rows() == [
        (at("2026-09-01T10:00:00"), 20, "event"),
        (at("2026-10-02T00:00:00"), 15, "decay"),
        (at("2026-10-03T00:00:00"), 10, "decay"),
        (at("2026-10-04T00:00:00"), 5, "decay"),
        (at("2026-10-05T00:00:00"), 0, "decay"),
    ]
