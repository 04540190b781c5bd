"""Every client mistake is a 4xx naming the field and the reason, never a 5xx: JSON that Python or Postgres
cannot take, NUL in paths and queries, out-of-range numbers, malformed webhook headers."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from leadscore_pipeline.ingest.webhook import sign_webhook
from tests.api.test_webhook import SECRET, TRACK, client_with_secrets

EVENT = '{"event_id": "m-1", "event_type": "PAGE_VIEW", "email": "ann@acme.io", "metadata": {"note": %s}}'
JSON = {"content-type": "application/json"}


def landed(conn) -> int:
    return conn.execute("select count(*) from raw_deliveries").fetchone()[0]


def only_error(response) -> dict:
    (error,) = response.json()["detail"]
    return error


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# JSON text that parses in Python but that nothing downstream can store, or that Python's json cannot parse safely.
UNTAKEABLE = {
    "nested past the limit": (EVENT % nested(65), "nested deeper than 64"),
    "nested past Python's recursion limit": (EVENT % nested(15_000), "nested deeper than 64"),
    "unclosed nesting": (EVENT % ("[" * 30_000), "nested deeper than 64"),
    "an integer over 4,300 digits": (EVENT % ("9" * 5000), "more than 4300 digits"),
    "a float past the double range": (EVENT % "1e400", "too large"),
    "NaN": (EVENT % "NaN", "NaN is not a JSON value"),
    "-Infinity": (EVENT % "-Infinity", "-Infinity is not a JSON value"),
}
# Text that parses but that Postgres cannot hold: the event validator names the field, at every bad index.
UNSTORABLE = {
    "a NUL escape": EVENT % r'"a\u0000b"',
    "a NUL escape after an escaped backslash": EVENT % r'"\\\u0000"',
    "a NUL escape in a key": '{"event_type": "X", "email": "a@b.io", "metadata": {"k\\u0000": 1}}',
    "a lone high surrogate": EVENT % r'"\ud800"',
    "a lone low surrogate": EVENT % r'"x\uDC00y"',
    "a reversed surrogate pair": EVENT % r'"\udc00\ud800"',
}


@pytest.mark.parametrize(("body", "reason"), UNTAKEABLE.values(), ids=UNTAKEABLE.keys())
def test_untakeable_json_is_422_naming_the_body_and_the_reason(client, conn, body, reason):
    for path, content in (("/api/events", body), ("/api/events/batch", f"[{body}]")):
        response = client.post(path, content=content.encode(), headers=JSON)
        assert response.status_code == 422, (path, response.text)
        error = only_error(response)
        assert error["field"] == "body" and reason in error["error"], error
    assert landed(conn) == 0


@pytest.mark.parametrize("body", UNSTORABLE.values(), ids=UNSTORABLE.keys())
def test_unstorable_text_is_422_naming_the_field_at_every_index(client, conn, body):
    response = client.post("/api/events", content=body.encode(), headers=JSON)
    assert response.status_code == 422, response.text
    assert only_error(response)["field"] == "metadata"
    good = json.dumps({"event_type": "PAGE_VIEW", "email": "bo@acme.io"})
    response = client.post("/api/events/batch", content=f"[{good}, {body}, {good}, {body}]".encode(), headers=JSON)
    assert response.status_code == 422, response.text
    assert [(e["index"], e["field"]) for e in response.json()["detail"]] == [(1, "metadata"), (3, "metadata")]
    assert landed(conn) == 0


def test_utf8_encoded_surrogates_are_not_utf8(client, conn):
    body = (EVENT % '"x"').encode().replace(b'"x"', b'"\xed\xa0\x80"')
    response = client.post("/api/events", content=body, headers=JSON)
    assert response.status_code == 422
    assert only_error(response)["field"] == "body" and "not UTF-8" in only_error(response)["error"]
    assert landed(conn) == 0


@pytest.mark.parametrize(
    "note",
    [
        nested(60),  # deep, yet within the limit
        r'"\ud83d\ude00"',  # a surrogate pair is one character (an emoji), not a lone surrogate
        r'"\\u0000 is how JSON spells NUL"',  # an escaped backslash: the text "\u0000", no NUL
        '"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["',  # brackets inside a string
        "12345678901234567890123456789012345678901234567890",  # a big integer, well within 4,300 digits
        "1.5e300",
    ],
)
def test_unusual_but_storable_json_still_lands(client, conn, note):
    response = client.post("/api/events", content=(EVENT % note).encode(), headers=JSON)
    assert response.status_code == 202, response.text
    assert landed(conn) == 1


def test_a_utf8_byte_order_mark_is_tolerated(client, conn):
    response = client.post("/api/events", content=b"\xef\xbb\xbf" + (EVENT % "1").encode(), headers=JSON)
    assert response.status_code == 202, response.text


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/leads?search=%00", "query.search"),
        ("/api/leads?company=a%00b", "query.company"),
        ("/api/ingest/rejections?file_name=%00", "query.file_name"),
        ("/api/events/a%00b", "path.event_id"),
        ("/api/leads/a%00b", "path.lead_key"),
        ("/api/leads/a%00b/history", "path.lead_key"),
        ("/api/rules/A%00B", "path.event_type"),
        ("/api/replay/x%00", "path.replay_id"),
    ],
)
def test_nul_in_a_path_or_query_parameter_is_422_naming_it(client, path, field):
    response = client.get(path)
    assert response.status_code == 422, response.text
    assert only_error(response) == {"field": field, "error": "must not contain NUL (\\u0000)"}


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/leads?offset=100000000000000000000", "query.offset"),
        ("/api/leads?offset=9223372036854775808", "query.offset"),
        ("/api/leads/ann@acme.io/history?offset=100000000000000000000", "query.offset"),
        ("/api/ingest/rejections?offset=100000000000000000000", "query.offset"),
        ("/api/leaderboard?limit=100000000000000000000", "query.limit"),
    ],
)
def test_numbers_past_bigint_are_422_naming_the_parameter(client, path, field):
    response = client.get(path)
    assert response.status_code == 422, response.text
    assert only_error(response)["field"] == field


def test_the_largest_offset_postgres_takes_is_an_empty_page(client):
    response = client.get("/api/leads?offset=9223372036854775807")
    assert response.status_code == 200
    assert response.json()["leads"] == []


def test_framework_errors_have_the_same_shape(client):
    assert only_error(client.get("/api/nowhere"))["field"] == "path"
    wrong_method = client.delete("/api/leaderboard")
    assert wrong_method.status_code == 405 and only_error(wrong_method)["field"] == "method"


@pytest.fixture
def hook(db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    yield from client_with_secrets(monkeypatch, SECRET)


def signed(body: bytes, **overrides: str) -> dict[str, str]:
    return sign_webhook(body, SECRET) | JSON | overrides


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("webhook-timestamp", "9" * 5000),
        ("webhook-timestamp", "1e9"),
        ("webhook-timestamp", "-5"),
        ("webhook-signature", "v1,ü" + "A" * 40),
        ("webhook-signature", "v1," + "é" * 5000),
        ("webhook-signature", "garbage"),
        ("webhook-id", "i" * 8000),
    ],
)
def test_malformed_webhook_headers_are_401_naming_the_header(hook, conn, header, value):
    body = json.dumps(TRACK).encode()
    headers = signed(body, **{header: value})
    response = hook.post("/api/webhook", content=body, headers={k: v.encode("utf-8") for k, v in headers.items()})
    assert response.status_code == 401, response.text
    assert only_error(response)["field"] in (header, "webhook-signature")
    assert landed(conn) == 0


@pytest.mark.parametrize(("body", "reason"), list(UNTAKEABLE.values())[:4], ids=list(UNTAKEABLE)[:4])
def test_signed_but_untakeable_webhook_json_is_422(hook, conn, body, reason):
    payload = body.encode()
    response = hook.post("/api/webhook", content=payload, headers=signed(payload))
    assert response.status_code == 422
    assert only_error(response)["field"] == "body" and reason in only_error(response)["error"]
    assert landed(conn) == 0
