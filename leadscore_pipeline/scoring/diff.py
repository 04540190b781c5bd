"""What to change in stored rows to make them equal freshly computed ones, whole rows compared."""

from __future__ import annotations

import polars as pl


def differences(existing: pl.LazyFrame, fresh: pl.LazyFrame) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """The rows of `existing` not in `fresh` (stale) and of `fresh` not in `existing` (new); nulls equal nulls.

    Rows are compared on every column of `fresh`, which `existing` must have too.
    """
    columns = fresh.collect_schema().names()
    stale = existing.join(fresh, on=columns, how="anti", nulls_equal=True)
    new = fresh.join(existing, on=columns, how="anti", nulls_equal=True)
    return stale, new
