"""The vectorized fold against hand-worked examples of every clause of SPEC §4 and its literal loop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from leadscore_pipeline.scoring.analytics import lead_type_stats
from leadscore_pipeline.scoring.dedup import first_deliveries
from leadscore_pipeline.scoring.fold import (
    DAILY_LIMIT_NOTE,
    HISTORY_SCHEMA,
    current_score,
    lead_totals,
    score_history,
    tier,
)
from leadscore_pipeline.scoring.params import DEFAULT_RULES, ScoringParams, TierThresholds

EVENT_SCHEMA = {
    "lead_key": pl.String,
    "event_id": pl.String,
    "event_type": pl.String,
    "event_time": pl.Datetime("us", "UTC"),
}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Event = tuple[str, str, str, datetime]  # lead_key, event_id, event_type, event_time
# event_type -> (points, active) or (points, active, max_per_day); a limit of None is none.
Rules = dict[str, tuple[int, bool] | tuple[int, bool, int | None]]


def at(text: str) -> datetime:
    """An ISO-8601 time without offset, read as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def events_frame(events: list[Event]) -> pl.LazyFrame:
    return pl.LazyFrame(events, schema=EVENT_SCHEMA, orient="row")


def rules_frame(rules: Rules) -> pl.LazyFrame:
    return pl.LazyFrame(
        [(event_type, *rule, None)[:4] for event_type, rule in rules.items()],
        schema={"event_type": pl.String, "points": pl.Int64, "active": pl.Boolean, "max_per_day": pl.Int64},
        orient="row",
    )


DEFAULT = {event_type: (points, True) for event_type, points in DEFAULT_RULES.items()}


def history(events: list[Event], rules: Rules = DEFAULT, params: ScoringParams | None = None) -> pl.DataFrame:
    return score_history(events_frame(events), rules_frame(rules), params or ScoringParams()).collect()


def history_frame(rows: list[tuple]) -> pl.DataFrame:
    """Expected history from rows in HISTORY_SCHEMA column order (the note may be left off: none)."""
    return pl.DataFrame([(*row, None)[:9] for row in rows], schema=HISTORY_SCHEMA, orient="row")


def column(events: list[Event], name: str, **kwargs) -> list:
    return history(events, **kwargs)[name].to_list()


# --- cap and floor apply at every step, so order matters ---------------------------------------------


def test_cap_and_floor_apply_at_every_step_so_order_matters():
    rules = {"BIG": (950, True), "PLUS": (100, True), "MINUS": (-50, True)}
    day = at("2026-03-01T10:00:00")
    events = [
        ("up-first", "1", "BIG", day),
        ("up-first", "2", "PLUS", day + timedelta(hours=1)),
        ("up-first", "3", "MINUS", day + timedelta(hours=2)),
        ("down-first", "1", "BIG", day),
        ("down-first", "2", "MINUS", day + timedelta(hours=1)),
        ("down-first", "3", "PLUS", day + timedelta(hours=2)),
    ]
    expected = history_frame(
        [
            ("down-first", "1", "BIG", day, 950, 0, 950, 950),
            ("down-first", "2", "MINUS", day + timedelta(hours=1), -50, 0, -50, 900),
            ("down-first", "3", "PLUS", day + timedelta(hours=2), 100, 0, 100, 1000),
            ("up-first", "1", "BIG", day, 950, 0, 950, 950),
            ("up-first", "2", "PLUS", day + timedelta(hours=1), 100, 0, 50, 1000),
            ("up-first", "3", "MINUS", day + timedelta(hours=2), -50, 0, -50, 950),
        ]
    )
    assert_frame_equal(history(events, rules), expected)


def test_negative_points_at_the_floor_stay_at_the_floor():
    day = at("2026-03-01T10:00:00")
    events = [
        ("lead", "1", "REFUND", day),
        ("lead", "2", "REFUND", day + timedelta(minutes=1)),
        ("lead", "3", "EMAIL_OPEN", day + timedelta(minutes=2)),
    ]
    assert column(events, "points") == [-50, -50, 10]
    assert column(events, "change") == [0, 0, 10]
    assert column(events, "score_after") == [0, 0, 10]


def test_inactive_rules_give_zero_points():
    rules = {"PURCHASE": (100, False), "REFUND": (-50, False), "PAGE_VIEW": (5, True)}
    day = at("2026-03-01T10:00:00")
    events = [
        ("lead", "1", "PAGE_VIEW", day),
        ("lead", "2", "PURCHASE", day + timedelta(minutes=1)),
        ("lead", "3", "REFUND", day + timedelta(minutes=2)),
    ]
    assert column(events, "points", rules=rules) == [5, 0, 0]
    assert column(events, "score_after", rules=rules) == [5, 5, 5]


def test_unknown_event_types_score_zero_points():
    events = [("lead", "1", "NEVER_HEARD_OF", at("2026-03-01T10:00:00"))]
    assert column(events, "points") == [0]
    assert column(events, "score_after") == [0]


# --- decay --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "current", "steps"),
    [
        ("2026-01-01T23:59:59", "2026-01-31T00:00:00", 0),
        ("2026-01-01T23:59:59", "2026-01-31T23:59:59.999999", 0),
        ("2026-01-01T23:59:59", "2026-02-01T00:00:00", 1),
        ("2026-01-01T23:59:59", "2026-02-01T23:59:59", 1),
        ("2026-01-01T23:59:59", "2026-02-02T00:00:00", 2),
        ("2026-01-01T00:00:00", "2026-01-31T23:59:59", 0),
        ("2026-01-01T00:00:00", "2026-02-01T00:00:00", 1),
        ("2026-01-02T00:00:00", "2026-02-01T23:59:59.999999", 0),
    ],
)
def test_decay_counts_utc_midnights_after_the_inactivity_window(previous, current, steps):
    events = [("lead", "1", "PURCHASE", at(previous)), ("lead", "2", "UNKNOWN", at(current))]
    assert column(events, "decay") == [0, 5 * steps]
    assert column(events, "change") == [100, -5 * steps]
    assert column(events, "score_after") == [100, 100 - 5 * steps]


def test_decay_never_goes_below_the_floor():
    events = [
        ("lead", "1", "FORM_SUBMISSION", at("2026-01-01T12:00:00")),
        ("lead", "2", "PAGE_VIEW", at("2026-04-11T12:00:00")),  # 100 days later: 70 steps, 350 points
    ]
    assert column(events, "decay") == [0, 20]
    assert column(events, "change") == [20, -15]
    assert column(events, "score_after") == [20, 5]


def test_every_event_counts_as_activity_even_unscored_ones():
    rules = {**DEFAULT, "ZERO": (0, True), "SWITCHED_OFF": (40, False)}
    start = at("2026-01-01T12:00:00")
    kept_alive = [
        ("kept-alive", "1", "PURCHASE", start),
        ("kept-alive", "2", "UNKNOWN", start + timedelta(days=25)),
        ("kept-alive", "3", "ZERO", start + timedelta(days=50)),
        ("kept-alive", "4", "SWITCHED_OFF", start + timedelta(days=75)),
        ("kept-alive", "5", "PAGE_VIEW", start + timedelta(days=100)),
    ]
    left_alone = [
        ("left-alone", "1", "PURCHASE", start),
        ("left-alone", "5", "PAGE_VIEW", start + timedelta(days=100)),
    ]
    result = history(kept_alive + left_alone, rules)
    assert result.filter(pl.col("lead_key") == "kept-alive")["score_after"].to_list() == [100] * 4 + [105]
    assert result.filter(pl.col("lead_key") == "kept-alive")["decay"].to_list() == [0] * 5
    # 100 days after the purchase: 70 midnights past the window, 350 points of decay, floored at 0.
    assert result.filter(pl.col("lead_key") == "left-alone")["decay"].to_list() == [0, 100]
    assert result.filter(pl.col("lead_key") == "left-alone")["score_after"].to_list() == [100, 5]


def test_non_default_params():
    params = ScoringParams(floor=10, cap=200, inactivity_days=2, decay_points=7)
    rules = {"SMALL": (5, True), "LOSS": (-3, True), "HUGE": (300, True)}
    start = at("2026-05-01T08:00:00")
    events = [
        ("lead", "1", "SMALL", start),  # 0 + 5 lifted to the floor: 10
        ("lead", "2", "LOSS", start + timedelta(hours=1)),  # 10 - 3 stays at the floor: 10
        ("lead", "3", "HUGE", start + timedelta(hours=2)),  # 10 + 300 capped: 200
        ("lead", "4", "SMALL", start + timedelta(days=5)),  # 3 steps, 21 decay: 179 + 5 = 184
        ("lead", "5", "LOSS", start + timedelta(days=40)),  # 33 steps, 231 decay: floored at 10, then 10
    ]
    expected = history_frame(
        [
            ("lead", "1", "SMALL", start, 5, 0, 10, 10),
            ("lead", "2", "LOSS", start + timedelta(hours=1), -3, 0, 0, 10),
            ("lead", "3", "HUGE", start + timedelta(hours=2), 300, 0, 190, 200),
            ("lead", "4", "SMALL", start + timedelta(days=5), 5, 21, -16, 184),
            ("lead", "5", "LOSS", start + timedelta(days=40), -3, 174, -174, 10),
        ]
    )
    assert_frame_equal(history(events, rules, params), expected)


# --- daily limits: points from the first k events of a type per lead and UTC day -------------------------


def test_a_daily_limit_scores_the_first_k_events_of_the_type_that_utc_day():
    rules = {"PAGE_VIEW": (5, True, 2), "EMAIL_OPEN": (10, True)}
    day = at("2026-03-01T10:00:00")
    events = [
        ("lead", "4", "PAGE_VIEW", day + timedelta(hours=3)),
        ("lead", "1", "PAGE_VIEW", day),
        ("lead", "2", "EMAIL_OPEN", day + timedelta(hours=1)),
        ("lead", "3b", "PAGE_VIEW", day + timedelta(hours=2)),
        ("lead", "3a", "PAGE_VIEW", day + timedelta(hours=2)),  # the tie goes by event_id: 3a is the second
        ("lead", "5", "PAGE_VIEW", at("2026-03-02T00:00:00")),  # a new UTC day: counted afresh
        ("other", "6", "PAGE_VIEW", day + timedelta(hours=5)),  # another lead: its own count
    ]
    limited = DAILY_LIMIT_NOTE
    assert column(events, "event_id", rules=rules) == ["1", "2", "3a", "3b", "4", "5", "6"]
    assert column(events, "points", rules=rules) == [5, 10, 5, 0, 0, 5, 5]
    assert column(events, "note", rules=rules) == [None, None, None, limited, limited, None, None]
    assert column(events, "score_after", rules=rules) == [5, 15, 20, 20, 20, 25, 5]


def test_a_daily_limit_counts_by_utc_day_whatever_the_offset_it_arrived_in():
    rules = {"DEMO_REQUEST": (50, True, 1)}
    # 23:30 and 00:30 UTC are two UTC days, though one day in UTC-2.
    late, early = at("2026-03-01T23:30:00"), at("2026-03-02T00:30:00")
    events = [("lead", "a", "DEMO_REQUEST", late), ("lead", "b", "DEMO_REQUEST", early)]
    assert column(events, "points", rules=rules) == [50, 50]
    same_day = [("lead", "a", "DEMO_REQUEST", early), ("lead", "b", "DEMO_REQUEST", early + timedelta(minutes=1))]
    assert column(same_day, "points", rules=rules) == [50, 0]


def test_an_inactive_rule_has_no_limit_to_reach():
    rules = {"PAGE_VIEW": (5, False, 1)}
    day = at("2026-03-01T10:00:00")
    events = [("lead", "1", "PAGE_VIEW", day), ("lead", "2", "PAGE_VIEW", day + timedelta(minutes=1))]
    assert column(events, "note", rules=rules) == [None, None]


# --- order and shape ------------------------------------------------------------------------------


def test_ties_in_event_time_are_broken_by_event_id():
    rules = {"BIG": (950, True), "PLUS": (100, True), "MINUS": (-50, True)}
    start, tie = at("2026-03-01T10:00:00"), at("2026-03-01T11:00:00")
    # Listed out of order on purpose: "a" (PLUS) must be applied before "b" (MINUS).
    events = [("lead", "b", "MINUS", tie), ("lead", "a", "PLUS", tie), ("lead", "0", "BIG", start)]
    assert column(events, "event_id", rules=rules) == ["0", "a", "b"]
    assert column(events, "score_after", rules=rules) == [950, 1000, 950]
    swapped = [("lead", "b", "PLUS", tie), ("lead", "a", "MINUS", tie), ("lead", "0", "BIG", start)]
    assert column(swapped, "score_after", rules=rules) == [950, 900, 1000]


def test_history_is_sorted_by_lead_then_time_then_event_id():
    t = at("2026-03-01T10:00:00")
    events = [
        ("b", "1", "PAGE_VIEW", t),
        ("a", "z", "PAGE_VIEW", t + timedelta(seconds=1)),
        ("a", "y", "PAGE_VIEW", t + timedelta(seconds=1)),
        ("a", "x", "PAGE_VIEW", t + timedelta(seconds=2)),
    ]
    result = history(events)
    assert result.select("lead_key", "event_id").rows() == [("a", "y"), ("a", "z"), ("a", "x"), ("b", "1")]
    assert result.schema == HISTORY_SCHEMA


def test_empty_events_give_an_empty_history():
    assert_frame_equal(history([]), pl.DataFrame(schema=HISTORY_SCHEMA))


def test_rules_must_have_one_row_per_event_type():
    rules = rules_frame({"PAGE_VIEW": (5, True)})
    doubled = pl.concat([rules, rules])
    events = events_frame([("lead", "1", "PAGE_VIEW", at("2026-03-01T10:00:00"))])
    with pytest.raises(pl.exceptions.ComputeError):
        score_history(events, doubled, ScoringParams()).collect()


def test_changes_add_up_to_the_score_at_last_event():
    start = at("2026-01-01T09:00:00")
    kinds = ["PURCHASE", "REFUND", "PAGE_VIEW", "DEMO_REQUEST", "UNKNOWN", "EMAIL_OPEN"]
    events = [
        (f"lead{i % 3}", f"e{i:02d}", kinds[i % len(kinds)], start + timedelta(days=11 * i, hours=i)) for i in range(30)
    ]
    result = history(events)
    sums = result.group_by("lead_key").agg(pl.col("change").sum()).sort("lead_key")
    totals = lead_totals(result.lazy()).collect()
    assert sums["change"].to_list() == totals["score_at_last_event"].to_list()
    assert result["decay"].sum() > 0


# --- per-lead totals ------------------------------------------------------------------------------


def test_lead_totals_and_points_by_type():
    t = at("2026-03-01T10:00:00")
    events = [
        ("a", "2", "PURCHASE", t + timedelta(hours=1)),
        ("a", "1", "PAGE_VIEW", t),
        ("a", "3", "PAGE_VIEW", t + timedelta(hours=1)),
        ("b", "4", "REFUND", t),
    ]
    result = history(events).lazy()
    expected_totals = pl.DataFrame(
        {
            "lead_key": ["a", "b"],
            "score_at_last_event": [110, 0],
            "last_event_at": [t + timedelta(hours=1), t],
            "first_event_at": [t, t],
            "event_count": [3, 1],
        },
        schema_overrides={
            "last_event_at": pl.Datetime("us", "UTC"),
            "first_event_at": pl.Datetime("us", "UTC"),
        },
    )
    assert_frame_equal(lead_totals(result).collect(), expected_totals)
    # The last event of "a" is its latest by (event_time, event_id), even from unsorted history.
    assert_frame_equal(lead_totals(result.reverse()).collect(), expected_totals)
    expected_points = pl.DataFrame(
        {
            "lead_key": ["a", "a", "b"],
            "event_type": ["PAGE_VIEW", "PURCHASE", "REFUND"],
            "events": [2, 1, 1],
            "points": [10, 100, -50],
        }
    )
    stats = lead_type_stats(result.with_columns(lead_bucket=pl.lit(0, pl.Int16))).collect()
    assert_frame_equal(stats.select("lead_key", "event_type", "events", "points"), expected_points, check_dtypes=False)


# --- current score and tiers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        (datetime(2026, 1, 1, 23, 59, 59, tzinfo=UTC), 100),
        (datetime(2026, 1, 31, 23, 59, 59, 999999, tzinfo=UTC), 100),
        (datetime(2026, 2, 1, 0, 0, 0, tzinfo=UTC), 95),
        (datetime(2026, 2, 1, 23, 59, 59, tzinfo=UTC), 95),
        (datetime(2026, 2, 2, 0, 0, 0, tzinfo=UTC), 90),
        (datetime(2026, 2, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))), 100),  # 2026-01-31T23:30Z
        (datetime(2026, 2, 1, 0, 0, 0), 95),  # naive means UTC
        (datetime(2026, 12, 31, tzinfo=UTC), 0),  # never below the floor
        (datetime(2025, 12, 1, tzinfo=UTC), 100),  # before the last event: no decay
    ],
)
def test_current_score_decays_at_utc_midnights(as_of, expected):
    leads = pl.DataFrame(
        {"score": [100], "last_event_at": [datetime(2026, 1, 1, 23, 59, 59, tzinfo=UTC)]},
        schema_overrides={"last_event_at": pl.Datetime("us", "UTC")},
    )
    result = leads.select(current_score(pl.col("score"), pl.col("last_event_at"), as_of, ScoringParams()))
    assert result.item() == expected


def test_current_score_with_non_default_params_and_nulls():
    params = ScoringParams(floor=10, cap=200, inactivity_days=0, decay_points=7)
    leads = pl.DataFrame(
        {
            "score": [100, 100, None],
            "last_event_at": [at("2026-01-01T23:59:59"), None, at("2026-01-01T23:59:59")],
        },
        schema_overrides={"last_event_at": pl.Datetime("us", "UTC")},
    )
    as_of = at("2026-01-03T00:00:00")  # two midnights, no grace period
    result = leads.select(current_score(pl.col("score"), pl.col("last_event_at"), as_of, params))
    assert result.to_series().to_list() == [86, None, None]
    assert leads.select(current_score(pl.lit(20), pl.col("last_event_at"), as_of, params)).item(0, 0) == 10


def test_tier_boundaries():
    scores = pl.DataFrame({"score": [0, 49, 50, 149, 150, 299, 300, 1000, None]}, schema={"score": pl.Int64})
    result = scores.select(tier(pl.col("score"), TierThresholds())).to_series().to_list()
    assert result == ["cold", "cold", "warm", "warm", "hot", "hot", "qualified", "qualified", None]
    custom = scores.select(tier(pl.col("score"), TierThresholds(warm=1, hot=2, qualified=1000)))
    assert custom.to_series().to_list()[:3] == ["cold", "hot", "hot"]
    assert custom.to_series().to_list()[-2:] == ["qualified", None]


# --- property: the vectorized fold is the literal loop of SPEC §4 -----------------------------------------


def reference_history(events: list[Event], rules: Rules, params: ScoringParams) -> pl.DataFrame:
    """SPEC §4 written as the loop it is."""

    def utc_day(moment: datetime) -> int:
        return (moment - EPOCH) // timedelta(days=1)

    def steps(previous: datetime, current: datetime) -> int:
        return max(0, utc_day(current) - (utc_day(previous) + params.inactivity_days))

    rows = []
    for lead_key in sorted({event[0] for event in events}):
        lead_events = sorted((e for e in events if e[0] == lead_key), key=lambda e: (e[3], e[1]))
        score, previous_time = 0, None
        seen_that_day: dict[tuple[str, int], int] = {}
        for _, event_id, event_type, event_time in lead_events:
            points, active, limit = (*rules.get(event_type, (0, False)), None)[:3]
            points = points if active else 0
            day = (event_type, utc_day(event_time))
            seen_that_day[day] = seen_that_day.get(day, 0) + 1
            note = None
            if active and limit is not None and seen_that_day[day] > limit:
                points, note = 0, DAILY_LIMIT_NOTE
            before = score
            if previous_time is not None:
                score = max(params.floor, score - params.decay_points * steps(previous_time, event_time))
            decay = before - score
            score = min(params.cap, max(params.floor, score + points))
            rows.append((lead_key, event_id, event_type, event_time, points, decay, score - before, score, note))
            previous_time = event_time
    return history_frame(rows)


LEAD_KEYS = ["a@example.com", "b@example.com", "id:42"]
EVENT_TYPES = [*DEFAULT_RULES, "ZERO", "UNKNOWN"]
START = at("2026-01-01T00:00:00")
SPAN = timedelta(days=200)


@st.composite
def scoring_cases(draw) -> tuple[list[Event], Rules, ScoringParams]:
    count = draw(st.integers(0, 40))
    event_ids = draw(st.lists(st.text("abAé0-", min_size=1, max_size=4), min_size=count, max_size=count, unique=True))
    # Times collide often (a small pool of instants, midnights among them) to exercise the event_id tie-break.
    pool = draw(st.lists(st.integers(0, SPAN.days * 86_400_000_000), min_size=1, max_size=6))
    offsets = st.one_of(
        st.sampled_from(pool),
        st.integers(0, SPAN.days).map(lambda days: days * 86_400_000_000),
        st.integers(0, SPAN.days * 86_400_000_000),
    )
    events = [
        (
            draw(st.sampled_from(LEAD_KEYS)),
            event_id,
            draw(st.sampled_from(EVENT_TYPES)),
            START + timedelta(microseconds=draw(offsets)),
        )
        for event_id in event_ids
    ]
    rules = draw(
        st.dictionaries(
            st.sampled_from(EVENT_TYPES[:-1]),
            st.tuples(st.integers(-1000, 1000), st.booleans(), st.one_of(st.none(), st.integers(1, 3))),
            max_size=8,
        )
    )
    floor = draw(st.integers(0, 300))
    params = ScoringParams(
        floor=floor,
        cap=draw(st.integers(floor, 1000)),
        inactivity_days=draw(st.integers(0, 40)),
        decay_points=draw(st.integers(0, 60)),
    )
    return events, rules, params


@settings(max_examples=200, deadline=None)
@given(scoring_cases())
def test_score_history_equals_the_reference_loop(case):
    events, rules, params = case
    assert_frame_equal(history(events, rules, params), reference_history(events, rules, params))


@settings(max_examples=200, deadline=None)
@given(scoring_cases(), st.data())
def test_arrival_order_and_duplicates_do_not_change_the_history(case, data):
    events, rules, params = case
    arrivals: list[Event] = data.draw(st.permutations(events))
    # Redeliveries land after the first delivery and lose to it, whatever their content.
    for original_index in data.draw(st.lists(st.integers(0, max(len(events) - 1, 0)), max_size=10)):
        if not events:
            break
        lead_key, event_id, _, event_time = events[original_index]
        first_arrival = next(i for i, e in enumerate(arrivals) if e[1] == event_id)
        redelivery = data.draw(
            st.sampled_from(
                [
                    events[original_index],
                    (lead_key, event_id, "PURCHASE", event_time + timedelta(days=3)),
                    ("c@example.com", event_id, "REFUND", event_time),
                ]
            )
        )
        arrivals.insert(data.draw(st.integers(first_arrival + 1, len(arrivals))), redelivery)
    # seq follows arrival, but the rows may be read back in any order.
    landed = [(*event, 2 * seq + 7) for seq, event in enumerate(arrivals)]
    deliveries = pl.LazyFrame(
        data.draw(st.permutations(landed)), schema={**EVENT_SCHEMA, "seq": pl.Int64}, orient="row"
    )
    deduplicated = first_deliveries(deliveries).drop("seq")
    rescored = score_history(deduplicated, rules_frame(rules), params).collect()
    assert_frame_equal(rescored, history(events, rules, params))
