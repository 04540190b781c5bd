"""Dedup keeps the first delivery of each event_id in landing order, whatever the later ones carry."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from leadscore_pipeline.scoring.dedup import first_deliveries

SCHEMA = {"seq": pl.Int64, "event_id": pl.String, "event_type": pl.String}


def deliveries(rows: list[tuple[int, str, str]]) -> pl.LazyFrame:
    return pl.LazyFrame(rows, schema=SCHEMA, orient="row")


def test_the_smallest_seq_wins_whatever_the_row_order_and_content():
    landed = deliveries(
        [
            (5, "e1", "REFUND"),  # a later redelivery with different content: a conflict, ignored
            (2, "e1", "PURCHASE"),
            (3, "e2", "PAGE_VIEW"),
            (9, "e2", "PAGE_VIEW"),
            (4, "e3", "EMAIL_OPEN"),
        ]
    )
    result = first_deliveries(landed).collect().sort("seq")
    expected = pl.DataFrame(
        [(2, "e1", "PURCHASE"), (3, "e2", "PAGE_VIEW"), (4, "e3", "EMAIL_OPEN")], schema=SCHEMA, orient="row"
    )
    assert_frame_equal(result, expected)


def test_single_deliveries_pass_through_in_their_order_with_every_column():
    landed = deliveries([(3, "b", "X"), (1, "a", "Y")]).with_columns(extra=pl.lit("kept"))
    assert_frame_equal(first_deliveries(landed).collect(), landed.collect())


def test_no_deliveries():
    assert_frame_equal(first_deliveries(deliveries([])).collect(), pl.DataFrame(schema=SCHEMA))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.sampled_from(["X", "Y"])), max_size=30).flatmap(
        lambda rows: st.permutations(list(enumerate(rows)))
    )
)
def test_matches_a_first_seen_loop(arrivals):
    first_seen: dict[str, tuple[int, str, str]] = {}
    for seq, (event_id, event_type) in sorted(arrivals):
        first_seen.setdefault(event_id, (seq, event_id, event_type))
    landed = deliveries([(seq, event_id, event_type) for seq, (event_id, event_type) in arrivals])
    result = first_deliveries(landed).collect().sort("seq")
    expected = pl.DataFrame(sorted(first_seen.values()), schema=SCHEMA, orient="row")
    assert_frame_equal(result, expected)
