"""Turn raw deliveries into events: the first delivery of each event_id, in landing order, wins (SPEC §3)."""

from __future__ import annotations

import polars as pl


def first_deliveries(deliveries: pl.LazyFrame) -> pl.LazyFrame:
    """Keep, for each `event_id`, the delivery with the smallest landing `seq`, whatever its content.

    `seq` is the unique landing sequence; rows keep their input order and every input column.
    """
    # A windowed min is ~3x faster than sort + unique on 1M rows and needs no global sort.
    return deliveries.filter(pl.col("seq") == pl.col("seq").min().over("event_id"))


# What a sender said about an event: a later delivery that differs in any of these is a conflict.
CONTENT_COLUMNS = (
    "event_type",
    "event_time",
    "lead_key",
    "email",
    "external_id",
    "name",
    "company",
    "source",
    "metadata",
)


def delivery_tallies(deliveries: pl.LazyFrame, firsts: pl.LazyFrame) -> pl.LazyFrame:
    """Per event_id delivered more than once: `duplicates` (later deliveries) and `conflicts` (those
    whose content differs from the first delivery's). `firsts` is `first_deliveries(deliveries)`."""
    first_content = firsts.select(
        "event_id",
        pl.col("seq").alias("first_seq"),
        *(pl.col(c).alias(f"{c}_first") for c in CONTENT_COLUMNS),
    )
    differs = pl.any_horizontal(~pl.col(c).eq_missing(pl.col(f"{c}_first")) for c in CONTENT_COLUMNS)
    return (
        # Only events delivered more than once can have duplicates: join just those.
        deliveries.filter(pl.len().over("event_id") > 1)
        .join(first_content, on="event_id")
        .filter(pl.col("seq") != pl.col("first_seq"))
        .group_by("event_id")
        .agg(duplicates=pl.len().cast(pl.Int32), conflicts=differs.sum().cast(pl.Int32))
    )


# The columns of a clean event (table clean_events), besides its `duplicates` and `conflicts` tallies.
CLEAN_SCHEMA = {
    "event_id": pl.String,
    "seq": pl.Int64,
    "lead_key": pl.String,
    "lead_bucket": pl.Int16,
    "event_type": pl.String,
    "event_time": pl.Datetime("us", "UTC"),
    "email": pl.String,
    "external_id": pl.String,
    "name": pl.String,
    "company": pl.String,
    "source": pl.String,
}


def clean_rows(firsts: pl.LazyFrame, tallies: pl.LazyFrame) -> pl.LazyFrame:
    """Clean event rows: each first delivery's clean columns with its tallies (0 duplicates and conflicts if none)."""
    return (
        firsts.select(*CLEAN_SCHEMA)
        .join(tallies, on="event_id", how="left")
        .with_columns(pl.col("duplicates", "conflicts").fill_null(0))
    )


def dedup_batch(batch: pl.LazyFrame, earlier: pl.LazyFrame, start: int) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """A micro-batch's new clean event rows, and the tallies of its redeliveries of events already clean.

    `batch`: the deliveries landed after `start`; `earlier`: the first deliveries of the clean events that
    `batch` delivers again. A replay may already have made some of the batch's deliveries clean events
    (`seq` > `start`): those are in `batch` itself, so only earlier first deliveries join it.
    """
    deliveries = pl.concat([earlier.filter(pl.col("seq") <= start), batch])
    firsts = first_deliveries(deliveries)
    tallies = delivery_tallies(deliveries, firsts)
    new_events = firsts.filter(pl.col("seq") > start).join(earlier.select("event_id"), on="event_id", how="anti")
    repeated = tallies.join(new_events.select("event_id"), on="event_id", how="anti")
    return clean_rows(new_events, tallies), repeated


def rebuilt_clean_events(deliveries: pl.LazyFrame, buckets: tuple[int, ...], counted_through: int) -> pl.LazyFrame:
    """The clean event rows of `buckets` from `deliveries`, counting only duplicates landed by `counted_through`.

    `deliveries` must hold every delivery of each event with one in `buckets`: an event's first may be in another.
    """
    firsts = first_deliveries(deliveries)
    tallies = delivery_tallies(deliveries.filter(pl.col("seq") <= counted_through), firsts)
    return clean_rows(firsts.filter(pl.col("lead_bucket").is_in(buckets)), tallies)
