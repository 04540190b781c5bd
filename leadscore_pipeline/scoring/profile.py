"""A lead's contact profile from its clean events: latest email, name and company (SPEC §3)."""

from __future__ import annotations

import polars as pl


def _non_blank(column: str) -> pl.Expr:
    """The value without surrounding whitespace, or null when nothing is left."""
    stripped = pl.col(column).cast(pl.String).str.strip_chars()
    return pl.when(stripped != "").then(stripped)


def lead_profiles(events: pl.LazyFrame) -> pl.LazyFrame:
    """Per lead_key: the latest non-blank email, name and company in (event_time, event_id) order.

    With no company ever given, company is the domain of the lead's latest email. Values are
    returned trimmed; a field never given is null. The result is sorted by lead_key.
    """
    return (
        events.select(
            "lead_key",
            "event_time",
            "event_id",
            email=_non_blank("email"),
            name=_non_blank("name"),
            company=_non_blank("company"),
        )
        .group_by("lead_key")
        .agg(pl.col("email", "name", "company").sort_by("event_time", "event_id").last(ignore_nulls=True))
        .with_columns(
            pl.col("company").fill_null(pl.col("email").str.extract(r"@([^@\s]+)$")),
        )
        .select("lead_key", "email", "name", "company")
        .sort("lead_key")
    )
