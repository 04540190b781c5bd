"""Joined keys through the API (SPEC §3): old keys answer with the canonical lead, and say why."""

from __future__ import annotations

import psycopg
import pytest

from leadscore_pipeline.db.urls import libpq_url
from leadscore_pipeline.microbatch import run_all_steps
from leadscore_pipeline.refresh import Scope


def score(client) -> None:
    with psycopg.connect(libpq_url(client.app.state.database_url), autocommit=True) as conn:
        run_all_steps(conn, Scope(incremental=True))


@pytest.fixture
def joined(client, db):
    events = [
        # Known first by CRM id, then seen with an email: one person.
        {"event_id": "c1", "event_type": "FORM_SUBMISSION", "timestamp": "2026-11-01T10:00:00Z", "lead_id": "crm-555"},
        {"event_id": "c2", "event_type": "DEMO_REQUEST", "timestamp": "2026-11-02T10:00:00Z",
         "lead_id": "crm-555", "email": "Ida@IdentCo.com"},
        # An id seen with two emails: ambiguous under the default merge protection (1).
        {"event_id": "s1", "event_type": "PAGE_VIEW", "timestamp": "2026-11-03T10:00:00Z",
         "lead_id": "shared-1", "email": "ida@identco.com"},
        {"event_id": "s2", "event_type": "PAGE_VIEW", "timestamp": "2026-11-03T11:00:00Z",
         "lead_id": "shared-1", "email": "max@other.io"},
        {"event_id": "s3", "event_type": "PURCHASE", "timestamp": "2026-11-04T10:00:00Z", "lead_id": "shared-1"},
    ]  # fmt: skip
    assert client.post("/api/events/batch", json=events).status_code == 202
    with psycopg.connect(libpq_url(db), autocommit=True) as conn:
        run_all_steps(conn, Scope(incremental=True))
    return client


def test_an_old_key_answers_with_the_lead_it_was_joined_into(joined):
    lead = joined.get("/api/leads/id:crm-555").json()
    assert (lead["lead_key"], lead["resolved_from"], lead["score"]) == ("ida@identco.com", "id:crm-555", 75)
    assert joined.get("/api/leads/ida@identco.com").json()["resolved_from"] is None
    history = joined.get("/api/leads/id:crm-555/history").json()
    assert history["lead_key"] == "ida@identco.com"
    rows = {row["event_id"]: (row["sent_as"], row["joins"]) for row in history["history"]}
    assert rows == {"c1": ("id:crm-555", []), "c2": (None, ["id:crm-555"]), "s1": (None, [])}


def test_one_row_per_person_on_the_leaderboard_and_the_receipt_names_the_lead(joined):
    keys = [row["lead_key"] for row in joined.get("/api/leaderboard?limit=10").json()["leads"]]
    assert sorted(keys) == ["id:shared-1", "ida@identco.com", "max@other.io"]
    assert joined.get("/api/events/c1").json()["lead_key"] == "ida@identco.com"
    assert joined.get("/api/events/s3").json()["lead_key"] == "id:shared-1"


def test_identities_lists_what_was_joined_and_what_was_left_apart(joined):
    body = joined.get("/api/leads/id:crm-555/identities").json()
    assert body["lead_key"] == "ida@identco.com"
    assert body["resolved_from"] == "id:crm-555"
    assert body["max_emails_per_id"] == 1
    assert [e["email"] for e in body["emails"]] == ["ida@identco.com"]
    assert [(i["external_id"], i["emails"]) for i in body["external_ids"]] == [("crm-555", 1)]
    assert [(i["external_id"], i["emails"]) for i in body["ambiguous_ids"]] == [("shared-1", 2)]
    assert "more than 1" in body["ambiguous_ids"][0]["why"]

    apart = joined.get("/api/leads/id:shared-1/identities").json()
    assert (apart["lead_key"], apart["emails"], apart["external_ids"]) == ("id:shared-1", [], [])
    assert [i["external_id"] for i in apart["ambiguous_ids"]] == ["shared-1"]

    missing = joined.get("/api/leads/nobody@nowhere.io/identities")
    assert missing.status_code == 404
    assert missing.json()["detail"][0]["field"] == "lead_key"
