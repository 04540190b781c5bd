"""Tests for the one event validator: every rejection of SPEC §2 and every normalization."""

from __future__ import annotations

import random
import re
import string
from datetime import UTC, datetime, timedelta, timezone

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from leadscore_pipeline.ingest.validate import (
    ERROR_SCHEMA,
    EVENT_SCHEMA,
    MAX_COMPANY_CHARS,
    MAX_EMAIL_CHARS,
    MAX_NAME_CHARS,
    RAW_COLUMNS,
    Validated,
    ValidationLimits,
    validate_events,
)

RECEIVED = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
GOOD = {
    "event_id": "evt-1",
    "event_type": "PAGE_VIEW",
    "timestamp": "2026-11-28T10:00:00Z",
    "email": "ann@acme.com",
    "lead_id": None,
    "source": None,
    "metadata": '{"name": "Ann Lee", "company": "Acme"}',
}


def frame(*rows: dict[str, object], **extra: pl.DataType) -> pl.DataFrame:
    """A raw frame of GOOD rows with the given fields changed; `extra` names optional columns and their dtypes."""
    schema = {c: pl.String for c in RAW_COLUMNS} | extra
    return pl.DataFrame([GOOD | row for row in rows], schema=schema)


def validate(*rows: dict[str, object], channel: str = "api", **kwargs: object) -> Validated:
    return validate_events(frame(*rows), channel=channel, received_at=RECEIVED, **kwargs)


def errors_of(result: Validated) -> list[tuple[int, str, str]]:
    return [tuple(r) for r in result.errors.iter_rows()]


def fields_of(result: Validated) -> list[str]:
    return result.errors["field"].to_list()


def only_event(result: Validated) -> dict[str, object]:
    assert result.errors.is_empty(), result.errors
    assert result.events.height == 1
    return result.events.row(0, named=True)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# --- normalization -------------------------------------------------------------------------------


def test_a_good_event_comes_out_normalized_with_the_documented_columns():
    result = validate({"event_type": "  page_view ", "email": " Ann@ACME.com ", "source": " crm "})

    assert result.events.schema == EVENT_SCHEMA
    assert result.errors.schema == ERROR_SCHEMA
    assert only_event(result) == {
        "row": 0,
        "event_id": "evt-1",
        "event_type": "PAGE_VIEW",
        "event_time": utc(2026, 11, 28, 10),
        "email": "ann@acme.com",
        "external_id": None,
        "lead_key": "ann@acme.com",
        "source": "crm",
        "name": "Ann Lee",
        "company": "Acme",
        "metadata": '{"name": "Ann Lee", "company": "Acme"}',
    }


@pytest.mark.parametrize("source", [None, "", "   "])
def test_source_defaults_to_the_channel(source):
    assert only_event(validate({"source": source}, channel="csv"))["source"] == "csv"


def test_email_comes_from_metadata_when_absent_at_the_top_level():
    event = only_event(validate({"email": None, "metadata": '{"email": " Bob@Example.COM "}'}))

    assert event["email"] == "bob@example.com"
    assert event["lead_key"] == "bob@example.com"


def test_top_level_email_wins_over_metadata_email():
    event = only_event(validate({"email": "ann@acme.com", "metadata": '{"email": "other@acme.com"}'}))

    assert event["email"] == "ann@acme.com"


def test_an_event_without_email_is_keyed_by_its_external_id():
    event = only_event(validate({"email": None, "lead_id": "  crm-42 "}))

    assert (event["email"], event["external_id"], event["lead_key"]) == (None, "crm-42", "id:crm-42")


def test_lead_id_comes_from_metadata_when_absent_at_the_top_level():
    event = only_event(validate({"email": None, "metadata": '{"lead_id": 12345}'}))

    assert (event["external_id"], event["lead_key"]) == ("12345", "id:12345")


def test_an_event_with_both_keeps_both_and_is_keyed_by_email():
    event = only_event(validate({"lead_id": "crm-42"}))

    assert (event["email"], event["external_id"], event["lead_key"]) == ("ann@acme.com", "crm-42", "ann@acme.com")


def test_name_and_company_columns_override_metadata_unless_empty():
    raw = frame(
        {"event_id": "a"},
        {"event_id": "b"},
        name=pl.String,
        company=pl.String,
    ).with_columns(name=pl.Series([" Ann B. Lee ", "  "]), company=pl.Series(["Initech", None]))

    result = validate_events(raw, channel="csv", received_at=RECEIVED)

    assert result.errors.is_empty()
    assert result.events.select("name", "company").rows() == [("Ann B. Lee", "Initech"), ("Ann Lee", "Acme")]


def test_blank_metadata_values_become_null():
    event = only_event(validate({"metadata": '{"name": "  ", "company": ""}'}))

    assert (event["name"], event["company"]) == (None, None)


@pytest.mark.parametrize("metadata", [None, "", "  "])
def test_absent_metadata_is_an_empty_object(metadata):
    event = only_event(validate({"metadata": metadata}))

    assert (event["metadata"], event["name"], event["company"]) == ("{}", None, None)


def test_missing_columns_are_treated_as_all_null():
    raw = pl.DataFrame({"event_type": ["PURCHASE"], "email": ["ann@acme.com"]})

    event = only_event(validate_events(raw, channel="webhook", received_at=RECEIVED))

    assert event["event_id"].startswith("d-")
    assert (event["event_time"], event["source"], event["metadata"]) == (RECEIVED, "webhook", "{}")


def test_an_empty_frame_gives_empty_outputs_with_their_schemas():
    result = validate_events(frame().clear(), channel="api", received_at=RECEIVED)

    assert_frame_equal(result.events, pl.DataFrame(schema=EVENT_SCHEMA))
    assert_frame_equal(result.errors, pl.DataFrame(schema=ERROR_SCHEMA))


# --- timestamps ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-28T10:00:00Z", utc(2026, 11, 28, 10)),
        ("2026-11-28T10:00:00.5Z", utc(2026, 11, 28, 10, 0, 0, 500000)),
        ("2026-11-28T10:00:00.123456Z", utc(2026, 11, 28, 10, 0, 0, 123456)),
        ("2026-11-28T10:00:00+02:00", utc(2026, 11, 28, 8)),
        ("2026-11-28T05:00:00-0500", utc(2026, 11, 28, 10)),
        ("2026-11-28T10:00:00.250+05:30", utc(2026, 11, 28, 4, 30, 0, 250000)),
        ("2026-11-28 10:00:00", utc(2026, 11, 28, 10)),
        ("2026-11-28 10:00:00.5+02:00", utc(2026, 11, 28, 8, 0, 0, 500000)),
        ("2026-11-28T10:00:00", utc(2026, 11, 28, 10)),
        ("2026-11-28t10:00:00z", utc(2026, 11, 28, 10)),
        ("2026-11-28T10:00Z", utc(2026, 11, 28, 10)),
        ("2026-11-28", utc(2026, 11, 28)),
        ("  2026-11-28T10:00:00Z  ", utc(2026, 11, 28, 10)),
    ],
)
def test_timestamp_formats_are_read_as_utc(text, expected):
    assert only_event(validate({"timestamp": text}))["event_time"] == expected


def test_different_rows_may_use_different_timestamp_formats():
    texts = ["2026-11-28", "2026-11-28T10:00:00.000001Z", "2026-11-28 10:00:00+01:00", "2026-11-28T10:00:00"]

    result = validate(*({"timestamp": t} for t in texts))

    assert result.errors.is_empty()
    assert result.events["event_time"].to_list() == [
        utc(2026, 11, 28),
        utc(2026, 11, 28, 10, 0, 0, 1),
        utc(2026, 11, 28, 9),
        utc(2026, 11, 28, 10),
    ]


def test_timestamp_keeps_microseconds():
    event = only_event(validate({"timestamp": "2026-11-28T10:00:00.000007Z"}))

    assert event["event_time"] == utc(2026, 11, 28, 10, 0, 0, 7)
    assert only_event(validate({}))["event_time"] != event["event_time"]


@pytest.mark.parametrize("timestamp", [None, "", "   "])
def test_absent_timestamp_means_the_receive_time(timestamp):
    assert only_event(validate({"timestamp": timestamp}))["event_time"] == RECEIVED


def test_receive_time_with_an_offset_is_taken_in_utc():
    received = datetime(2026, 11, 28, 14, 0, tzinfo=timezone(timedelta(hours=2)))

    result = validate_events(frame({"timestamp": None}), channel="api", received_at=received)

    assert result.events["event_time"].to_list() == [RECEIVED]


@pytest.mark.parametrize("text", ["garbage", "2026-13-01", "2026-02-30", "28/11/2026", "2026-11-28T10:00:00Zjunk"])
def test_unparseable_timestamp_is_rejected(text):
    result = validate({"timestamp": text})

    assert result.events.is_empty()
    assert errors_of(result) == [
        (0, "timestamp", f"must be an ISO-8601 date-time such as 2026-11-28T10:00:00Z, got '{text}'")
    ]


def test_timestamps_before_1971_are_rejected():
    result = validate({"timestamp": "1970-12-31T23:59:59.999999Z"}, {"timestamp": "1971-01-01T00:00:00Z"})

    assert result.events["row"].to_list() == [1]
    assert result.events["event_time"].to_list() == [utc(1971, 1, 1)]
    assert errors_of(result) == [
        (0, "timestamp", "must not be before 1971-01-01T00:00:00Z, got '1970-12-31T23:59:59.999999Z'")
    ]


def test_future_bound_accepts_exactly_one_hour_ahead_and_rejects_one_microsecond_more():
    result = validate({"timestamp": "2026-11-28T13:00:00Z"}, {"timestamp": "2026-11-28T13:00:00.000001Z"})

    assert result.events["event_time"].to_list() == [utc(2026, 11, 28, 13)]
    assert errors_of(result) == [
        (
            1,
            "timestamp",
            "must not be more than 1 hour after the receive time 2026-11-28T12:00:00.000000Z,"
            " got '2026-11-28T13:00:00.000001Z'",
        )
    ]


def test_future_bound_follows_the_limits():
    limits = ValidationLimits(max_future=timedelta(minutes=5))

    result = validate({"timestamp": "2026-11-28T12:05:00Z"}, {"timestamp": "2026-11-28T12:05:01Z"}, limits=limits)

    assert result.events["row"].to_list() == [0]
    assert fields_of(result) == ["timestamp"]
    assert "300 seconds" in result.errors["reason"][0]


# --- event_id ------------------------------------------------------------------------------------


def test_event_id_of_128_characters_is_accepted():
    assert only_event(validate({"event_id": "x" * 128}))["event_id"] == "x" * 128


@pytest.mark.parametrize(("event_id", "length"), [("x" * 129, 129), ("", 0)])
def test_event_id_length_is_checked(event_id, length):
    result = validate({"event_id": event_id})

    assert result.events.is_empty()
    assert errors_of(result) == [(0, "event_id", f"must be 1-128 characters, got {length}")]


@pytest.mark.parametrize("event_id", ["evt\x00", "evt\x1f1", "e\tv", "evt\n", "evt\x7f"])
def test_event_id_with_control_characters_is_rejected(event_id):
    result = validate({"event_id": event_id})

    assert result.events.is_empty()
    assert errors_of(result) == [(0, "event_id", r"must not contain control characters (\x00-\x1f, \x7f)")]


# --- derived event ids ---------------------------------------------------------------------------

NO_ID = {"event_id": None}


def derived_id(**changes: object) -> str:
    return only_event(validate(NO_ID | changes))["event_id"]


def test_derived_id_is_deterministic():
    first = derived_id()

    assert re.fullmatch(r"d-[0-9a-f]{32}", first)
    assert derived_id() == first
    assert validate(NO_ID, NO_ID).events["event_id"].to_list() == [first, first]


def test_derived_id_ignores_spelling_differences_that_normalize_away():
    base = derived_id()

    assert derived_id(event_type=" page_view ", email=" ANN@acme.com") == base
    assert derived_id(timestamp="2026-11-28T12:00:00+02:00") == base
    assert derived_id(metadata='{ "company":"Acme", "name":"Ann Lee" }') == base


@pytest.mark.parametrize(
    "change",
    [
        {"event_type": "EMAIL_OPEN"},
        {"email": "bob@acme.com"},
        {"email": None, "lead_id": "ann@acme.com"},
        {"timestamp": "2026-11-28T10:00:00.000001Z"},
        {"source": "crm"},
        {"metadata": '{"name": "Ann Lee", "company": "Globex"}'},
    ],
)
def test_derived_id_changes_when_content_changes(change):
    assert derived_id(**change) != derived_id()


def test_derived_id_of_an_event_without_timestamp_uses_the_receive_time():
    later = RECEIVED + timedelta(seconds=1)
    at_received = validate({"event_id": None, "timestamp": None}).events["event_id"][0]
    at_later = validate_events(frame({"event_id": None, "timestamp": None}), channel="api", received_at=later)

    assert at_received == derived_id(timestamp="2026-11-28T12:00:00Z")
    assert at_later.events["event_id"][0] != at_received


def test_given_event_ids_are_kept_beside_derived_ones():
    result = validate({"event_id": "evt-1"}, NO_ID, {"event_id": "evt-3"})

    ids = result.events["event_id"].to_list()
    assert (ids[0], ids[2]) == ("evt-1", "evt-3")
    assert ids[1] == derived_id()


# --- event_type ----------------------------------------------------------------------------------


def test_event_type_of_64_characters_is_accepted():
    assert only_event(validate({"event_type": "A" * 64}))["event_type"] == "A" * 64


@pytest.mark.parametrize("event_type", ["page view", "1ST_VISIT", "_X", "A" * 65, "PAGE-VIEW", "ÉVÉNEMENT"])
def test_malformed_event_type_is_rejected(event_type):
    result = validate({"event_type": event_type})

    assert result.events.is_empty()
    assert errors_of(result) == [
        (
            0,
            "event_type",
            f"must match ^[A-Z][A-Z0-9_]{{0,63}}$ after trimming and upper-casing, got '{event_type}'",
        )
    ]


@pytest.mark.parametrize("event_type", [None, "", "  "])
def test_event_type_is_required(event_type):
    assert errors_of(validate({"event_type": event_type})) == [(0, "event_type", "is required")]


# --- identity ------------------------------------------------------------------------------------


@pytest.mark.parametrize("email", ["not-an-email", "ann@acme", "ann lee@acme.com", "@acme.com", "ann@@acme.com"])
def test_malformed_email_is_rejected_even_with_a_lead_id(email):
    result = validate({"email": email, "lead_id": "crm-42"})

    assert result.events.is_empty()
    assert errors_of(result) == [(0, "email", f"must look like an address (name@domain.tld), got '{email}'")]


@pytest.mark.parametrize(("value", "shown"), [('"not-an-email"', "not-an-email"), ("42", "42")])
def test_malformed_metadata_email_is_reported_on_metadata_email(value, shown):
    result = validate({"email": None, "metadata": f'{{"email": {value}}}'})

    assert errors_of(result) == [(0, "metadata.email", f"must look like an address (name@domain.tld), got '{shown}'")]


@pytest.mark.parametrize("lead_id", [None, "", "   "])
def test_an_event_needs_an_email_or_a_lead_id(lead_id):
    result = validate({"email": None, "lead_id": lead_id, "metadata": '{"name": "Ann"}'})

    assert errors_of(result) == [(0, "email", "an event needs an email or a lead_id")]


def test_lead_id_longer_than_128_characters_is_rejected():
    result = validate(
        {"email": None, "lead_id": "L" * 128},
        {"email": None, "lead_id": "L" * 129},
        {"email": None, "metadata": '{"lead_id": "' + "L" * 129 + '"}'},
    )

    assert result.events["row"].to_list() == [0]
    assert errors_of(result) == [
        (1, "lead_id", "must be at most 128 characters, got 129"),
        (2, "metadata.lead_id", "must be at most 128 characters, got 129"),
    ]


def test_source_longer_than_128_characters_is_rejected():
    result = validate({"source": "s" * 128}, {"source": "s" * 129})

    assert result.events["row"].to_list() == [0]
    assert errors_of(result) == [(1, "source", "must be at most 128 characters, got 129")]


# --- metadata and size ---------------------------------------------------------------------------


@pytest.mark.parametrize("metadata", ["[1]", "not json", '"text"', "42", "{bad", '{"a": 1} trailing', "null"])
def test_metadata_must_be_a_json_object(metadata):
    result = validate({"metadata": metadata})

    assert result.events.is_empty()
    assert errors_of(result) == [(0, "metadata", f"must be a JSON object, got '{metadata}'")]


def test_long_values_are_cut_short_in_reasons():
    result = validate({"metadata": "x" * 1000})

    assert result.errors["reason"].to_list() == ["must be a JSON object, got '" + "x" * 80 + "...'"]


def test_size_limit_uses_raw_bytes_when_given():
    raw = frame({}, {}, {}, raw_bytes=pl.Int64).with_columns(raw_bytes=pl.Series([32768, 32769, None]))

    result = validate_events(raw, channel="api", received_at=RECEIVED)

    assert result.events["row"].to_list() == [0, 2]
    assert errors_of(result) == [(1, "event", "larger than 32768 bytes")]


def test_size_limit_counts_the_text_when_no_raw_bytes_are_given():
    filler = "é" * 16_400  # 32,800 bytes of UTF-8 but only 16,400 characters
    result = validate({"metadata": f'{{"note": "{filler}"}}'})

    assert errors_of(result) == [(0, "event", "larger than 32768 bytes")]


def test_size_limit_follows_the_limits():
    result = validate({}, limits=ValidationLimits(max_event_bytes=50))

    assert errors_of(result) == [(0, "event", "larger than 50 bytes")]


# --- only what Postgres can store: field limits, NUL --------------------------------------------------

RNG = random.Random(20261128)


def random_letters(count: int) -> str:
    """Random, so it does not compress: a repetitive 20 KB value fits a btree entry and hides the bug."""
    return "".join(RNG.choices(string.ascii_lowercase, k=count))


def email_of(chars: int) -> str:
    return random_letters(chars - len("@x.io")) + "@x.io"


def with_columns(row: dict[str, object], **columns: str | None) -> pl.DataFrame:
    """A raw frame of one GOOD row with CSV-style `name`/`company` columns."""
    raw = frame(row, name=pl.String, company=pl.String)
    return raw.with_columns(**{c: pl.Series([columns.get(c)], dtype=pl.String) for c in ("name", "company")})


def test_email_of_20_kb_random_letters_is_rejected_at_the_top_level_and_in_metadata():
    long = email_of(20_000)

    result = validate({"email": long}, {"email": None, "metadata": f'{{"email": "{long}"}}'})

    assert result.events.is_empty()
    assert errors_of(result) == [
        (0, "email", f"must be at most {MAX_EMAIL_CHARS} characters, got 20000"),
        (1, "metadata.email", f"must be at most {MAX_EMAIL_CHARS} characters, got 20000"),
    ]


def test_email_at_its_limit_is_accepted_and_one_more_character_is_not():
    at_limit, over = email_of(MAX_EMAIL_CHARS), email_of(MAX_EMAIL_CHARS + 1)

    result = validate({"email": at_limit}, {"email": over})

    assert result.events["email"].to_list() == [at_limit]
    assert errors_of(result) == [(1, "email", f"must be at most 254 characters, got {MAX_EMAIL_CHARS + 1}")]


@pytest.mark.parametrize(("field", "limit"), [("name", MAX_NAME_CHARS), ("company", MAX_COMPANY_CHARS)])
def test_name_and_company_at_their_limit_are_accepted_and_longer_ones_name_their_origin(field, limit):
    at_limit, long = random_letters(limit), random_letters(20_000)
    raw = pl.concat(
        [
            with_columns({"event_id": "metadata-at-limit", "metadata": f'{{"{field}": "{at_limit}"}}'}),
            with_columns({"event_id": "column-at-limit"}, **{field: at_limit}),
            with_columns({"event_id": "metadata-long", "metadata": f'{{"{field}": "{long}"}}'}),
            with_columns({"event_id": "column-long"}, **{field: long}),
        ]
    )

    result = validate_events(raw, channel="csv", received_at=RECEIVED)

    assert result.events.select("event_id", field).rows() == [
        ("metadata-at-limit", at_limit),
        ("column-at-limit", at_limit),
    ]
    assert errors_of(result) == [
        (2, f"metadata.{field}", f"must be at most {limit} characters, got 20000"),
        (3, field, f"must be at most {limit} characters, got 20000"),
    ]


def test_a_long_metadata_company_is_fine_when_a_company_column_overrides_it():
    raw = with_columns({"metadata": f'{{"company": "{random_letters(20_000)}"}}'}, company="Initech")

    assert only_event(validate_events(raw, channel="csv", received_at=RECEIVED))["company"] == "Initech"


NUL = "\x00"
NUL_REASON = r"must not contain the NUL character (\x00): Postgres cannot store it"
CONTROL_REASON = r"must not contain control characters (\x00-\x1f, \x7f)"


@pytest.mark.parametrize(
    ("row", "columns", "field", "reason"),
    [
        ({"event_id": f"evt{NUL}1"}, {}, "event_id", CONTROL_REASON),
        ({"email": f"ann{NUL}@acme.com"}, {}, "email", CONTROL_REASON),
        ({"email": None, "lead_id": f"crm{NUL}42"}, {}, "lead_id", CONTROL_REASON),
        ({"source": f"crm{NUL}"}, {}, "source", NUL_REASON),
        ({}, {"name": f"Ann{NUL}Lee"}, "name", NUL_REASON),
        ({}, {"company": f"Acme{NUL}"}, "company", NUL_REASON),
    ],
)
def test_nul_in_a_stored_text_field_is_rejected_naming_the_field(row, columns, field, reason):
    result = validate_events(with_columns(row, **columns), channel="csv", received_at=RECEIVED)

    assert result.events.is_empty()
    assert errors_of(result) == [(0, field, reason)]


@pytest.mark.parametrize(
    ("field", "value"),
    [("event_type", f"PAGE{NUL}VIEW"), ("timestamp", f"2026-11-28T10:00:00Z{NUL}")],
)
def test_nul_in_a_parsed_field_is_rejected_and_shown_escaped(field, value):
    result = validate({field: value})

    assert result.events.is_empty()
    assert fields_of(result) == [field]
    assert result.errors["reason"][0].endswith("\\x00" + value.split(NUL)[1] + "'")
    assert NUL not in result.errors["reason"][0]  # reasons are stored with CSV rejections


METADATA_NUL_REASON = r"must not contain NUL (\x00, or the JSON escape \u0000): Postgres cannot store it"


@pytest.mark.parametrize(
    "metadata",
    [
        '{"note": "a\\u0000b"}',  # the escape, as json.dumps writes a NUL and as jsonb refuses it
        '{"a\\u0000": 1}',  # in a key
        '{"deep": {"list": ["\\\\\\u0000"]}}',  # an escaped backslash, then the escape
        '{"note": "a' + NUL + 'b"}',  # the character itself
    ],
)
def test_nul_anywhere_in_metadata_is_rejected(metadata):
    result = validate({"metadata": metadata})

    assert result.events.is_empty()
    assert errors_of(result) == [(0, "metadata", METADATA_NUL_REASON)]


def test_nul_in_metadata_name_names_metadata_and_the_value():
    result = validate({"metadata": '{"name": "Ann\\u0000"}'})

    assert errors_of(result) == [(0, "metadata", METADATA_NUL_REASON), (0, "metadata.name", NUL_REASON)]


def test_an_escaped_backslash_before_u0000_is_text_not_nul():
    event = only_event(validate({"metadata": '{"path": "C:\\\\u0000"}'}))

    assert event["metadata"] == '{"path": "C:\\\\u0000"}'


@pytest.mark.parametrize("metadata", ['{"a": "\\ud800"}', '{"a": "\\uDC00x"}', '{"a": "\\ud800\\u0041"}'])
def test_lone_surrogate_escapes_in_metadata_are_named(metadata):
    result = validate({"metadata": metadata})

    assert errors_of(result) == [
        (0, "metadata", r"must not contain a \uD800-\uDFFF escape outside a surrogate pair: it is no character")
    ]


def test_a_surrogate_pair_escape_is_a_character():
    assert only_event(validate({"metadata": '{"name": "Ann \\ud83d\\ude00"}'}))["name"] == "Ann \U0001f600"


def test_tabs_and_line_breaks_in_names_are_kept_but_not_in_identifiers():
    result = validate_events(
        pl.concat(
            [
                with_columns({"event_id": "ok", "source": "crm\tlegacy"}, name="Ann\tLee", company="Acme\nLtd"),
                with_columns({"event_id": "bad-email", "email": "ann\x01@acme.com"}),
                with_columns({"event_id": "bad-id", "email": None, "lead_id": "crm\x1f42"}),
            ]
        ),
        channel="csv",
        received_at=RECEIVED,
    )

    assert result.events.select("event_id", "name", "company", "source").rows() == [
        ("ok", "Ann\tLee", "Acme\nLtd", "crm\tlegacy")
    ]
    assert errors_of(result) == [(1, "email", CONTROL_REASON), (2, "lead_id", CONTROL_REASON)]


# --- several problems ----------------------------------------------------------------------------


def test_every_problem_of_a_row_is_reported_sorted_by_field():
    result = validate(
        {
            "event_id": "x" * 129,
            "event_type": "page view",
            "timestamp": "yesterday",
            "email": "nobody",
            "source": "s" * 200,
            "metadata": "[1]",
        }
    )

    assert result.events.is_empty()
    assert fields_of(result) == ["email", "event_id", "event_type", "metadata", "source", "timestamp"]


def test_mixed_rows_keep_their_input_positions():
    result = validate(
        {"event_id": "good-0"},
        {"event_id": "bad-1", "event_type": "?"},
        {"event_id": "good-2", "email": None, "lead_id": "crm-2"},
        {"event_id": "bad-3", "email": None, "metadata": "{}"},
        {"event_id": "bad-4", "timestamp": "2099-01-01T00:00:00Z", "metadata": "not json"},
        {"event_id": "good-5"},
    )

    assert result.events.select("row", "event_id").rows() == [(0, "good-0"), (2, "good-2"), (5, "good-5")]
    assert result.errors.select("row", "field").rows() == [
        (1, "event_type"),
        (3, "email"),
        (4, "metadata"),
        (4, "timestamp"),
    ]
    assert result.errors["row"].dtype == pl.UInt32
