"""JSON records to the validator's frame: lone surrogates, which no UTF-8 text can hold, are field errors."""

from __future__ import annotations

import json

import pytest

from leadscore_pipeline.ingest.records import TEXT_FIELDS, FieldError, records_to_frame

SURROGATE_REASON = "must not contain lone surrogates (U+D800-U+DFFF): they are no characters"
GOOD = {"event_id": "e1", "event_type": "PAGE_VIEW", "email": "ann@acme.io", "metadata": {"name": "Ann"}}


def decoded(text: str) -> object:
    """What the API's json.loads makes of a body: a lone "\\ud800" escape becomes a lone surrogate."""
    return json.loads(text)


@pytest.mark.parametrize("field", TEXT_FIELDS)
def test_a_lone_surrogate_in_a_text_field_is_an_error_on_that_field(field):
    record = GOOD | decoded(f'{{"{field}": "x\\ud800y"}}')

    frame, errors = records_to_frame([record, GOOD])

    assert errors == [FieldError(0, field, SURROGATE_REASON)]
    assert frame[field].to_list()[0] == "x\ufffdy"  # replaced, so the frame is built and the rest validated
    assert frame.height == 2


@pytest.mark.parametrize("metadata", ['{"note": "\\udc00"}', '{"\\ud800": 1}', '{"deep": [{"x": "a\\udbff"}]}'])
def test_a_lone_surrogate_anywhere_in_metadata_is_an_error_on_metadata(metadata):
    frame, errors = records_to_frame([GOOD | {"metadata": decoded(metadata)}])

    assert errors == [FieldError(0, "metadata", SURROGATE_REASON)]
    assert "\ufffd" in frame["metadata"][0]


def test_an_unknown_field_named_with_a_lone_surrogate_is_reported_in_utf8():
    _, errors = records_to_frame([GOOD | decoded('{"x\\ud800": 1}')])

    assert errors == [FieldError(0, "x\ufffd", "unknown field (put extra data in metadata)")]
    json.dumps([e.as_dict() for e in errors], ensure_ascii=False).encode()  # the answer's body can be written


def test_a_surrogate_pair_is_one_character_and_no_error():
    frame, errors = records_to_frame([GOOD | decoded('{"name": "Ann \\ud83d\\ude00"}')])

    assert errors == []
    assert frame["name"][0] == "Ann \U0001f600"
    assert frame["raw_bytes"][0] == len(json.dumps(GOOD | {"name": "Ann \U0001f600"}, ensure_ascii=False).encode())
