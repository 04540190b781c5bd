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
