"""Nothing that Postgres cannot store is acknowledged: a value too long to index, NUL, a lone surrogate is a 422
naming the field, never a 202 that stalls scoring later nor a 500."""

from __future__ import annotations

import json
import random
import string

import pytest

from leadscore_pipeline.ingest.validate import MAX_COMPANY_CHARS, MAX_EMAIL_CHARS

RNG = random.Random(5321)
EVENT = {"event_id": "u1", "event_type": "EMAIL_OPEN", "email": "ann@acme.io", "timestamp": "2026-11-01T10:00:00Z"}


def random_letters(count: int) -> str:
    """Random, so it does not compress: a repetitive 20 KB value fits a btree entry and hides the bug."""
    return "".join(RNG.choices(string.ascii_letters, k=count))


def post_raw(client, body: str, path: str = "/api/events"):
    return client.post(
        path, content=body.encode("utf-8", errors="surrogatepass"), headers={"content-type": "application/json"}
    )


def landed(conn) -> int:
    return conn.execute("select count(*) from raw_deliveries").fetchone()[0]


def names(response, field: str) -> bool:
    """The 422 names the field: as its `field` (the validator), or in a JSON path such as `$.name` when the body
    parser refuses the text first (api/ingestion.py)."""
    errors = response.json()["detail"]
    return any(e["field"] == field or f".{field}" in e["error"] for e in errors)


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        (
            {"email": random_letters(20_000) + "@x.io"},
            "email",
            f"must be at most {MAX_EMAIL_CHARS} characters, got 20005",
        ),
        (
            {"metadata": {"company": random_letters(20_000)}},
            "metadata.company",
            f"must be at most {MAX_COMPANY_CHARS} characters, got 20000",
        ),
        ({"company": random_letters(300)}, "company", f"must be at most {MAX_COMPANY_CHARS} characters, got 300"),
    ],
)
def test_a_value_too_long_to_store_is_422_naming_the_field(client, conn, change, field, reason):
    response = client.post("/api/events", json=EVENT | change)

    assert response.status_code == 422
    assert response.json() == {"detail": [{"field": field, "error": reason}]}
    assert landed(conn) == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"event_id": "u\x001"}, "event_id"),
        ({"event_type": "EMAIL\x00OPEN"}, "event_type"),
        ({"timestamp": "2026-11-01T10:00:00Z\x00"}, "timestamp"),
        ({"email": "ann\x00@acme.io"}, "email"),
        ({"email": None, "lead_id": "crm\x007"}, "lead_id"),
        ({"source": "crm\x00"}, "source"),
        ({"name": "Ann\x00"}, "name"),
        ({"company": "Acme\x00"}, "company"),
        ({"metadata": {"note": "a\x00b"}}, "metadata"),
        ({"metadata": {"k\x00": 1}}, "metadata"),
    ],
)
def test_nul_in_any_text_field_is_422_naming_it(client, conn, change, field):
    response = client.post("/api/events", json=EVENT | change)  # JSON carries NUL as the escape \u0000

    assert response.status_code == 422
    assert names(response, field)
    assert landed(conn) == 0


@pytest.mark.parametrize("field", ["event_id", "email", "name", "company", "source"])
def test_a_lone_surrogate_is_422_naming_the_field(client, conn, field):
    body = json.dumps({k: v for k, v in EVENT.items() if k != field})[:-1] + f', "{field}": "x\\ud800"}}'

    response = post_raw(client, body)

    assert response.status_code == 422
    assert names(response, field)
    assert landed(conn) == 0


def test_a_lone_surrogate_in_metadata_is_422(client, conn):
    response = post_raw(client, json.dumps(EVENT)[:-1] + ', "metadata": {"note": "\\udc00"}}')

    assert response.status_code == 422
    assert names(response, "metadata")
    assert landed(conn) == 0


def test_a_batch_lists_every_event_too_long_to_store_and_lands_none(client, conn):
    batch = [
        EVENT | {"event_id": "ok"},
        EVENT | {"event_id": "b1", "email": random_letters(20_000) + "@x.io"},
        EVENT | {"event_id": "b2", "name": random_letters(257), "metadata": {"company": random_letters(5_000)}},
    ]

    response = client.post("/api/events/batch", json=batch)

    assert response.status_code == 422
    assert [(e["index"], e["field"]) for e in response.json()["detail"]] == [
        (1, "email"),
        (2, "metadata.company"),
        (2, "name"),
    ]
    assert landed(conn) == 0


def test_the_openapi_schema_shows_the_limits(client):
    schema = client.get("/openapi.json").json()["paths"]["/api/events"]["post"]["requestBody"]["content"]
    fields = schema["application/json"]["schema"]["properties"]

    assert fields["email"]["anyOf"][0]["maxLength"] == MAX_EMAIL_CHARS
    assert fields["company"]["anyOf"][0]["maxLength"] == MAX_COMPANY_CHARS
    assert fields["event_type"]["maxLength"] == 64
