"""POST /api/events and /api/events/batch: SPEC §2, every rejection names the field and lands nothing."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tests.frozen import NOW

GOOD = {"event_id": "e-1", "event_type": "page_view ", "email": " Ann@Acme.io ", "timestamp": "2026-11-01T10:00:00Z"}


def landed(conn) -> list[tuple]:
    return conn.execute(
        "select event_id, event_type, lead_key, channel, source from raw_deliveries order by seq"
    ).fetchall()


def fields(response) -> set[str]:
    return {e["field"] for e in response.json()["detail"]}


def test_one_event_is_normalized_and_landed_before_202(client, conn):
    response = client.post("/api/events", json=GOOD)
    assert response.status_code == 202
    assert response.json() == {"event_id": "e-1", "status": "accepted"}
    assert landed(conn) == [("e-1", "PAGE_VIEW", "ann@acme.io", "api", "api")]


def test_event_without_id_gets_a_deterministic_one(client, conn):
    body = {k: v for k, v in GOOD.items() if k != "event_id"}
    first = client.post("/api/events", json=body).json()["event_id"]
    again = client.post("/api/events", json=body).json()["event_id"]
    other = client.post("/api/events", json={**body, "timestamp": "2026-11-01T10:00:01Z"}).json()["event_id"]
    assert first == again != other
    assert len(landed(conn)) == 3


def test_lead_id_alone_identifies_a_lead(client, conn):
    response = client.post("/api/events", json={"event_type": "EMAIL_OPEN", "lead_id": "crm-7", "event_id": "x"})
    assert response.status_code == 202
    assert landed(conn)[0][2] == "id:crm-7"


def in_an_hour(seconds: int) -> str:
    return (NOW + timedelta(hours=1, seconds=seconds)).isoformat()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"event_type": "page view"}, "event_type"),
        ({"event_type": None}, "event_type"),
        ({"event_type": 7}, "event_type"),
        ({"email": "not-an-address"}, "email"),
        ({"email": None}, "email"),  # neither email nor lead_id
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"timestamp": "1970-12-31T23:59:59Z"}, "timestamp"),
        ({"timestamp": in_an_hour(120)}, "timestamp"),
        ({"event_id": ""}, "event_id"),
        ({"event_id": "x" * 129}, "event_id"),
        ({"event_id": "bad\nid"}, "event_id"),
        ({"metadata": [1, 2]}, "metadata"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_event_is_422_naming_the_field_and_lands_nothing(client, conn, change, field):
    response = client.post("/api/events", json={**GOOD, **change})
    assert response.status_code == 422
    assert field in fields(response)
    assert all(e["error"] for e in response.json()["detail"])
    assert landed(conn) == []


def test_invalid_json_and_non_object_bodies_are_422(client, conn):
    assert fields(client.post("/api/events", content=b"{nope", headers={"content-type": "application/json"})) == {
        "body"
    }
    assert client.post("/api/events", json=[GOOD]).status_code == 422
    assert landed(conn) == []


def test_oversized_event_is_413(client, conn):
    response = client.post("/api/events", json={**GOOD, "metadata": {"blob": "x" * 33_000}})
    assert response.status_code == 413
    assert fields(response) == {"body"}
    assert landed(conn) == []


def test_batch_lands_all_in_order(client, conn):
    batch = [{**GOOD, "event_id": f"b{i}"} for i in range(3)]
    response = client.post("/api/events/batch", json={"events": batch})
    assert response.status_code == 202
    assert response.json() == {"accepted": 3, "event_ids": ["b0", "b1", "b2"]}
    assert [row[0] for row in landed(conn)] == ["b0", "b1", "b2"]
    assert client.post("/api/events/batch", json=batch).status_code == 202  # a bare array works too


def test_batch_is_all_or_nothing_and_lists_every_bad_index(client, conn):
    batch = [GOOD, {**GOOD, "event_type": "?"}, GOOD, {**GOOD, "email": "nope"}, "not an object"]
    response = client.post("/api/events/batch", json=batch)
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert sorted({e["index"] for e in errors}) == [1, 3, 4]
    assert {(e["index"], e["field"]) for e in errors} >= {(1, "event_type"), (3, "email"), (4, "event")}
    assert landed(conn) == []


def test_batch_limits_are_413(client, conn):
    too_many = [{**GOOD, "event_id": f"n{i}"} for i in range(2001)]
    assert client.post("/api/events/batch", json=too_many).status_code == 413
    too_big = json.dumps([{**GOOD, "metadata": {"blob": "x" * 30_000}}] * 20)
    response = client.post("/api/events/batch", content=too_big, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert landed(conn) == []


def test_event_over_32kb_inside_a_batch_is_422_with_its_index(client, conn):
    response = client.post("/api/events/batch", json=[GOOD, {**GOOD, "metadata": {"blob": "x" * 33_000}}])
    assert response.status_code == 422
    assert {e["index"] for e in response.json()["detail"]} == {1}
    assert landed(conn) == []


def test_concurrent_single_events_are_committed_together_yet_judged_alone(client, conn):
    from concurrent.futures import ThreadPoolExecutor

    bodies = [{**GOOD, "event_id": f"g{i}"} for i in range(40)]
    bodies[7] = {**GOOD, "event_id": "g7", "event_type": "not valid"}
    bodies[23] = {**GOOD, "event_id": "g23", "email": "nope"}
    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(lambda body: client.post("/api/events", json=body), bodies))
    assert [r.status_code for r in responses].count(202) == 38
    assert responses[7].status_code == 422 and responses[7].json()["detail"][0]["field"] == "event_type"
    assert responses[23].status_code == 422 and responses[23].json()["detail"][0]["field"] == "email"
    assert "index" not in responses[23].json()["detail"][0]
    assert {r.json()["event_id"] for r in responses if r.status_code == 202} == {
        f"g{i}" for i in range(40) if i not in (7, 23)
    }
    assert sorted(row[0] for row in landed(conn)) == sorted(f"g{i}" for i in range(40) if i not in (7, 23))
