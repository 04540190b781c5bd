"""Rules API behind the admin token, the rules version, and the optional ingest key."""

from __future__ import annotations

import pytest

from tests.api.conftest import ADMIN


def version(client) -> int:
    return client.get("/api/rules").json()["rules_version"]


def test_default_rules_are_seeded(admin_client):
    rules = {r["event_type"]: r["points"] for r in admin_client.get("/api/rules").json()["rules"]}
    assert rules == {
        "EMAIL_OPEN": 10,
        "PAGE_VIEW": 5,
        "FORM_SUBMISSION": 20,
        "DEMO_REQUEST": 50,
        "PURCHASE": 100,
        "REFUND": -50,
    }


def test_changing_rules_needs_the_admin_token(admin_client):
    body = {"points": 7, "active": True}
    assert admin_client.put("/api/rules/WEBINAR", json=body).status_code == 401
    wrong = admin_client.put("/api/rules/WEBINAR", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["detail"][0]["field"] == "authorization"
    assert admin_client.delete("/api/rules/PAGE_VIEW").status_code == 401
    assert version(admin_client) == 1


def test_every_change_bumps_the_rules_version_once(admin_client):
    created = admin_client.put("/api/rules/webinar", json={"points": 7}, headers=ADMIN).json()
    assert created["rule"]["event_type"] == "WEBINAR" and created["rules_version"] == 2
    same = admin_client.put("/api/rules/WEBINAR", json={"points": 7, "active": True}, headers=ADMIN).json()
    assert same["changed"] is False and version(admin_client) == 2
    admin_client.put("/api/rules/WEBINAR", json={"points": 7, "active": False}, headers=ADMIN)
    assert version(admin_client) == 3
    assert admin_client.delete("/api/rules/WEBINAR", headers=ADMIN).json()["rules_version"] == 4
    assert admin_client.get("/api/rules/WEBINAR").status_code == 404
    assert admin_client.delete("/api/rules/WEBINAR", headers=ADMIN).status_code == 404


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/rules/PAGE_VIEW", {"points": 1001}, "body.points"),
        ("/api/rules/PAGE_VIEW", {"points": "lots"}, "body.points"),
        ("/api/rules/PAGE_VIEW", {}, "body.points"),
        ("/api/rules/page view", {"points": 1}, "event_type"),
        ("/api/rules/%20PAGE_VIEW", {"points": 1}, "event_type"),
        # JSON types as documented: `true` is not 1, nor "7" or 7.5 an integer, nor 1 or "yes" a boolean.
        ("/api/rules/PAGE_VIEW", {"points": True}, "body.points"),
        ("/api/rules/PAGE_VIEW", {"points": "7"}, "body.points"),
        ("/api/rules/PAGE_VIEW", {"points": 7.5}, "body.points"),
        ("/api/rules/PAGE_VIEW", {"points": 7, "active": 1}, "body.active"),
        ("/api/rules/PAGE_VIEW", {"points": 7, "active": "yes"}, "body.active"),
    ],
)
def test_bad_rules_are_422_naming_the_field(admin_client, path, body, field):
    response = admin_client.put(path, json=body, headers=ADMIN)
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == field
    assert version(admin_client) == 1


def test_ingest_key_guards_ingestion_when_configured(admin_client):
    event = {"event_type": "PAGE_VIEW", "email": "a@b.io", "timestamp": "2026-11-01T00:00:00Z"}
    assert admin_client.post("/api/events", json=event).status_code == 401
    keyed = admin_client.post("/api/events", json=event, headers={"Authorization": "Bearer ingest-key"})
    assert keyed.status_code == 202
    assert admin_client.get("/api/leaderboard").status_code == 200  # reading needs no key


def test_replay_needs_the_admin_token(admin_client):
    assert admin_client.post("/api/replay").status_code == 401


def test_an_integral_number_is_an_integer_as_json_schema_says(admin_client):
    response = admin_client.put("/api/rules/WEBINAR", json={"points": 7.0}, headers=ADMIN)
    assert response.status_code == 200 and response.json()["rule"]["points"] == 7
