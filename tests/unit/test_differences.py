"""The diff a replay writes: stored rows not recomputed are stale, recomputed rows not stored are new."""

from __future__ import annotations

import polars as pl
from polars.testing import assert_frame_equal

from leadscore_pipeline.scoring.diff import differences

SCHEMA = {"key": pl.String, "value": pl.Int64, "note": pl.String}


def rows(*values: tuple[str, int, str | None]) -> pl.LazyFrame:
    return pl.LazyFrame(values, schema=SCHEMA, orient="row")


def test_only_rows_that_differ_in_any_column_are_stale_or_new_and_nulls_match_nulls():
    existing = rows(("same", 1, "x"), ("null note", 2, None), ("changed", 3, "x"), ("gone", 4, "x"))
    fresh = rows(("same", 1, "x"), ("null note", 2, None), ("changed", 3, "y"), ("added", 5, None))
    stale, new = (frame.collect().sort("key") for frame in differences(existing, fresh))
    assert_frame_equal(stale, rows(("changed", 3, "x"), ("gone", 4, "x")).collect())
    assert_frame_equal(new, rows(("added", 5, None), ("changed", 3, "y")).collect())


def test_identical_rows_write_nothing_and_an_empty_table_takes_every_row():
    fresh = rows(("a", 1, None), ("b", 2, "x"))
    stale, new = (frame.collect() for frame in differences(fresh, fresh))
    assert stale.is_empty() and new.is_empty()
    stale, new = (frame.collect().sort("key") for frame in differences(rows(), fresh))
    assert_frame_equal(stale, rows().collect())
    assert_frame_equal(new, fresh.collect())
