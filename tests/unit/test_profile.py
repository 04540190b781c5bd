"""A lead's email, name and company are its latest non-blank values, company falling back to the domain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
from polars.testing import assert_frame_equal

from leadscore_pipeline.scoring.profile import lead_profiles

EVENT_SCHEMA = {
    "lead_key": pl.String,
    "event_id": pl.String,
    "event_time": pl.Datetime("us", "UTC"),
    "email": pl.String,
    "name": pl.String,
    "company": pl.String,
}
PROFILE_SCHEMA = {"lead_key": pl.String, "email": pl.String, "name": pl.String, "company": pl.String}
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def profiles(rows: list[tuple]) -> pl.DataFrame:
    return lead_profiles(pl.LazyFrame(rows, schema=EVENT_SCHEMA, orient="row")).collect()


def expected(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=PROFILE_SCHEMA, orient="row")


def test_latest_non_blank_values_by_event_time_whatever_the_row_order():
    later = T0 + timedelta(days=1)
    rows = [
        ("ann@acme.com", "3", later + timedelta(days=1), "ann@acme.com", "   ", None),
        ("ann@acme.com", "2", later, "ann@acme.com", "Ann Smith", ""),
        ("ann@acme.com", "1", T0, "ann@acme.com", "Ann", "Acme Inc"),
    ]
    assert_frame_equal(profiles(rows), expected([("ann@acme.com", "ann@acme.com", "Ann Smith", "Acme Inc")]))


def test_ties_in_event_time_are_broken_by_event_id():
    rows = [
        ("id:7", "b", T0, "new@corp.io", "Bea", "Beta"),
        ("id:7", "a", T0, "old@corp.io", "Alf", "Alpha"),
    ]
    assert_frame_equal(profiles(rows), expected([("id:7", "new@corp.io", "Bea", "Beta")]))


def test_company_falls_back_to_the_email_domain_only_when_never_given():
    rows = [
        ("bo@startup.dev", "1", T0, "bo@startup.dev", "Bo", None),
        ("cy@bigco.com", "2", T0, "cy@bigco.com", None, "BigCo"),
        ("cy@bigco.com", "3", T0 + timedelta(hours=1), "cy@bigco.com", None, " "),
    ]
    assert_frame_equal(
        profiles(rows),
        expected(
            [
                ("bo@startup.dev", "bo@startup.dev", "Bo", "startup.dev"),
                ("cy@bigco.com", "cy@bigco.com", None, "BigCo"),
            ]
        ),
    )


def test_values_are_trimmed_and_a_lead_without_any_stays_null():
    rows = [
        ("id:9", "1", T0, None, None, None),
        ("id:8", "2", T0, "  ", "  Dee  ", "  Delta Ltd "),
        ("id:8", "3", T0 + timedelta(minutes=5), "dee@delta.org", None, None),
    ]
    assert_frame_equal(
        profiles(rows),
        expected([("id:8", "dee@delta.org", "Dee", "Delta Ltd"), ("id:9", None, None, None)]),
    )


def test_no_events():
    assert_frame_equal(profiles([]), pl.DataFrame(schema=PROFILE_SCHEMA))
