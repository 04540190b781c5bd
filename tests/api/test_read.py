"""Reading endpoints: leaderboard, leads (filter, sort, page), one lead, history, status, health."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from leadscore_pipeline.microbatch import run_all_steps
from leadscore_pipeline.refresh import Scope
from leadscore_pipeline.settings import get_settings
from tests.api.test_group_commit_isolation import DEAD_DATABASE
from tests.pipeline.helpers import event, land


def score_all(conn) -> None:
    run_all_steps(conn, Scope(incremental=True))


@pytest.fixture
def scored(conn):
    land(
        conn,
        event(
            "a1", "PURCHASE", "2026-11-20T10:00:00Z", email="ann@acme.io", metadata={"name": "Ann", "company": "Acme"}
        ),
        event("a2", "DEMO_REQUEST", "2026-11-21T10:00:00Z", email="ann@acme.io"),
        event("b1", "DEMO_REQUEST", "2026-11-21T10:00:00Z", email="bob@globex.com", metadata={"name": "Bob"}),
        event("c1", "PAGE_VIEW", "2026-11-22T10:00:00Z", email=None, lead_id="crm-1"),
        event("d1", "DEMO_REQUEST", "2026-11-22T10:00:00Z", email="dee@acme.io", metadata={"company": "Acme"}),
    )
    score_all(conn)
    return conn


def test_leaderboard_ranks_by_score_then_lead_key(client, scored):
    body = client.get("/api/leaderboard?limit=3").json()
    assert [(r["rank"], r["lead_key"], r["score"], r["tier"]) for r in body["leads"]] == [
        (1, "ann@acme.io", 150, "hot"),
        (2, "bob@globex.com", 50, "warm"),
        (3, "dee@acme.io", 50, "warm"),
    ]
    assert body["leads"][0]["company"] == "Acme" and body["leads"][1]["company"] == "globex.com"
    assert body["as_of"] is not None


def test_leads_filter_sort_and_page(client, scored):
    acme = client.get("/api/leads", params={"company": "acme"}).json()
    assert acme["total"] == 2 and {lead["lead_key"] for lead in acme["leads"]} == {"ann@acme.io", "dee@acme.io"}
    warm = client.get("/api/leads", params={"tier": "warm", "sort_by": "email", "order": "asc"}).json()
    assert [lead["lead_key"] for lead in warm["leads"]] == ["bob@globex.com", "dee@acme.io"]
    page = client.get("/api/leads", params={"sort_by": "score", "limit": 2, "offset": 2}).json()
    assert page["total"] == 4 and [lead["lead_key"] for lead in page["leads"]] == ["dee@acme.io", "id:crm-1"]
    assert client.get("/api/leads", params={"search": "glob"}).json()["total"] == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sort_by": "password"}, "query.sort_by"),
        ({"order": "sideways"}, "query.order"),
        ({"tier": "lukewarm"}, "query.tier"),
        ({"limit": 0}, "query.limit"),
        ({"offset": -1}, "query.offset"),
    ],
)
def test_unknown_parameters_are_422_not_500(client, scored, params, field):
    response = client.get("/api/leads", params=params)
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == field


def test_lead_detail_and_history_explain_the_score(client, scored):
    lead = client.get("/api/leads/ann@acme.io").json()
    assert lead["score"] == 150 and lead["score_at_last_event"] == 150 and lead["events"] == 2
    assert {(p["event_type"], p["points"]) for p in lead["points_by_event_type"]} == {
        ("PURCHASE", 100),
        ("DEMO_REQUEST", 50),
    }
    history = client.get("/api/leads/ann@acme.io/history").json()["history"]
    assert [h["event_id"] for h in history] == ["a2", "a1"]  # newest first
    assert sum(h["change"] for h in history) == lead["score_at_last_event"]
    assert client.get("/api/leads/nobody@x.io").status_code == 404
    assert client.get("/api/leads/nobody@x.io/history").status_code == 404


def test_email_keys_are_case_insensitive_and_external_ids_keep_their_case(client, scored):
    land(scored, event("x1", "PAGE_VIEW", "2026-11-22T11:00:00Z", email=None, lead_id="CRM-7"))
    score_all(scored)
    for key in ("Ann@Acme.io", "ANN@ACME.IO", " ann@acme.io "):
        lead = client.get(f"/api/leads/{key}")
        assert lead.status_code == 200 and lead.json()["lead_key"] == "ann@acme.io", key
        history = client.get(f"/api/leads/{key}/history")
        assert history.status_code == 200 and history.json()["lead_key"] == "ann@acme.io", key
    # An external id is the sender's own: id:CRM-7 and id:crm-7 are two leads (SPEC §3).
    assert client.get("/api/leads/id:CRM-7").json()["lead_key"] == "id:CRM-7"
    assert client.get("/api/leads/id:crm-7").status_code == 404
    assert client.get("/api/leads/id:CRM-1/history").status_code == 404


def test_pipeline_status_reports_lag(client, scored):
    status = client.get("/api/pipeline/status").json()
    assert status["landed_through"] == 5 and status["scored_through"] == 5 and status["lag"] == 0
    client.post("/api/events", json=event("late", "PAGE_VIEW", "2026-11-01T00:00:00Z"))
    status = client.get("/api/pipeline/status").json()
    assert status["landed_through"] == 6 and status["lag"] == 1


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_a_read_with_the_database_down_is_a_503_that_says_so(db, monkeypatch):
    with monkeypatch.context() as patched:
        patched.setenv("LEADSCORE_DATABASE_URL", DEAD_DATABASE)
        patched.setenv("LEADSCORE_DB_POOL_TIMEOUT_SECONDS", "0.5")
        get_settings.cache_clear()
        with TestClient(create_app(), raise_server_exceptions=False) as client:
            response = client.get("/api/leaderboard")
    get_settings.cache_clear()
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    [error] = response.json()["detail"]
    # not "busy": the read pool's wait ended because no connection could be opened at all
    assert error["field"] == "database" and "unavailable" in error["error"], error
