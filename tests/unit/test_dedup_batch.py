"""A micro-batch's dedup and a bucket rebuild, as pure frame functions: which deliveries become clean events
and where their redeliveries are counted."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
from polars.testing import assert_frame_equal

from leadscore_pipeline.scoring.dedup import (
    CLEAN_SCHEMA,
    clean_rows,
    dedup_batch,
    first_deliveries,
    rebuilt_clean_events,
)

AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TALLIES_SCHEMA = {"event_id": pl.String, "duplicates": pl.Int32, "conflicts": pl.Int32}
Delivery = tuple[int, str, int, str]  # seq, event_id, lead_bucket, event_type


def deliveries(rows: list[Delivery]) -> pl.LazyFrame:
    """Deliveries with every column the dedup reads; they differ only in seq, event_id, bucket and type."""
    keys = {"seq": pl.Int64, "event_id": pl.String, "lead_bucket": pl.Int16, "event_type": pl.String}
    return pl.LazyFrame(rows, schema=keys, orient="row").with_columns(
        lead_key=pl.lit("lead-1"),
        event_time=pl.lit(AT, pl.Datetime("us", "UTC")),
        email=pl.lit("ann@example.com"),
        external_id=pl.lit(None, pl.String),
        name=pl.lit("Ann"),
        company=pl.lit(None, pl.String),
        source=pl.lit("web"),
        metadata=pl.lit("d41d8cd98f00b204e9800998ecf8427e"),
    )


def clean(rows: list[tuple[int, str, int, str, int, int]]) -> pl.DataFrame:
    """Expected clean event rows: (seq, event_id, lead_bucket, event_type, duplicates, conflicts)."""
    tallied = {r[1]: (r[4], r[5]) for r in rows}
    tallies = pl.DataFrame(
        [(event_id, *counts) for event_id, counts in tallied.items()], schema=TALLIES_SCHEMA, orient="row"
    )
    return (
        deliveries([r[:4] for r in rows])
        .select(*CLEAN_SCHEMA)
        .collect()
        .join(tallies, on="event_id", how="left")
        .sort("event_id")
    )


def tallies(rows: list[tuple[str, int, int]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=TALLIES_SCHEMA, orient="row")


def collected(frames: tuple[pl.LazyFrame, ...]) -> list[pl.DataFrame]:
    return [frame.sort("event_id") for frame in pl.collect_all(frames)]


def test_a_batch_makes_its_first_deliveries_and_tallies_redeliveries_of_older_events_apart():
    earlier = deliveries([(5, "old", 0, "PAGE_VIEW")])  # already clean, first delivered before the batch
    batch = deliveries(
        [
            (11, "new", 0, "PAGE_VIEW"),
            (12, "new", 0, "PURCHASE"),  # a conflicting redelivery within the batch
            (13, "old", 0, "PAGE_VIEW"),  # the same again: a duplicate, no conflict
            (14, "old", 0, "REFUND"),  # a conflict
            (15, "once", 1, "EMAIL_OPEN"),
        ]
    )
    events, repeated = collected(dedup_batch(batch, earlier, start=10))
    assert_frame_equal(events, clean([(11, "new", 0, "PAGE_VIEW", 1, 1), (15, "once", 1, "EMAIL_OPEN", 0, 0)]))
    assert_frame_equal(repeated, tallies([("old", 2, 1)]))
    # Every redelivery is counted exactly once, on one side or the other.
    assert int(events["duplicates"].sum()) + int(repeated["duplicates"].sum()) == 3


def test_events_a_replay_already_made_from_the_batch_are_not_made_again():
    # A replay made seq 12 a clean event; the micro-batch still starts at 10, so seq 12 is in its batch too.
    earlier = deliveries([(12, "replayed", 3, "FORM_SUBMISSION")])
    batch = deliveries([(12, "replayed", 3, "FORM_SUBMISSION"), (14, "replayed", 3, "FORM_SUBMISSION")])
    events, repeated = collected(dedup_batch(batch, earlier, start=10))
    assert_frame_equal(events, clean([]))
    assert_frame_equal(repeated, tallies([("replayed", 1, 0)]))


def test_an_empty_batch_makes_nothing():
    events, repeated = collected(dedup_batch(deliveries([]), deliveries([]), start=10))
    assert_frame_equal(events, clean([]))
    assert_frame_equal(repeated, tallies([]))


def test_a_rebuilt_bucket_keeps_events_first_delivered_to_it_and_counts_only_what_was_counted_through():
    landed = deliveries(
        [
            (1, "elsewhere", 1, "PAGE_VIEW"),  # first delivered to bucket 1: not bucket 0's event
            (2, "elsewhere", 0, "PAGE_VIEW"),
            (3, "here", 0, "DEMO_REQUEST"),
            (5, "here", 0, "PURCHASE"),  # counted: a conflict
            (7, "here", 0, "DEMO_REQUEST"),  # past counted_through: the next micro-batch counts it
            (8, "late", 0, "EMAIL_OPEN"),  # an event all the same, with nothing to count yet
        ]
    )
    rebuilt = rebuilt_clean_events(landed, (0,), counted_through=5).collect().sort("event_id")
    assert_frame_equal(rebuilt, clean([(3, "here", 0, "DEMO_REQUEST", 1, 1), (8, "late", 0, "EMAIL_OPEN", 0, 0)]))


def test_clean_rows_keep_the_clean_columns_and_zero_tallies_for_events_delivered_once():
    firsts = first_deliveries(deliveries([(1, "a", 0, "PAGE_VIEW"), (2, "b", 0, "PAGE_VIEW")]))
    rows = clean_rows(firsts, tallies([("b", 2, 1)]).lazy()).collect()
    assert rows.columns == [*CLEAN_SCHEMA, "duplicates", "conflicts"]  # no external_id nor metadata
    assert_frame_equal(rows.sort("event_id"), clean([(1, "a", 0, "PAGE_VIEW", 0, 0), (2, "b", 0, "PAGE_VIEW", 2, 1)]))
