"""Scores as of any moment: one lead (`as_of`), its history (`until`) and the leaderboard, each the fold of the
events by then decayed to then (SPEC §4 current_score)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from leadscore_pipeline.microbatch import run_all_steps
from leadscore_pipeline.refresh import Scope
from tests.pipeline.helpers import event, land
from tests.unit.test_fold import at


@pytest.fixture
def history(conn):
    land(
        conn,
        event("a1", "PURCHASE", "2026-09-01T10:00:00Z", email="ann@acme.io", metadata={"name": "Ann"}),
        event("a2", "DEMO_REQUEST", "2026-10-20T10:00:00Z", email="ann@acme.io"),
        event("b1", "PAGE_VIEW", "2026-10-09T08:00:00Z", email="bob@acme.io"),
    )
    run_all_steps(conn, Scope(incremental=True))
    return conn


@pytest.mark.parametrize(
    ("as_of", "score", "tier", "events"),
    [
        ("2026-09-01T10:00:00Z", 100, "warm", 1),  # at the event itself
        ("2026-09-15T00:00:00", 100, "warm", 1),  # no offset: UTC; inside the inactivity window
        ("2026-10-10T12:00:00Z", 55, "warm", 1),  # 39 midnights later: 9 past the window, -45
        ("2026-10-11T01:00:00+02:00", 55, "warm", 1),  # the same UTC day written in another offset
        ("2026-10-20T10:00:00Z", 55, "warm", 2),  # decayed to 5 before the demo request, then +50
    ],
)
def test_a_lead_as_of_a_moment(client, history, as_of, score, tier, events):
    body = client.get("/api/leads/Ann@Acme.io", params={"as_of": as_of}).json()
    assert (body["score"], body["tier"], body["events"], body["name"]) == (score, tier, events, "Ann")
    assert sum(row["events"] for row in body["points_by_event_type"]) == events


def test_history_until_a_moment_gives_the_events_and_the_score_then(client, history):
    body = client.get("/api/leads/ann@acme.io/history", params={"until": "2026-10-10T12:00:00Z"}).json()
    assert [row["event_id"] for row in body["history"]] == ["a1"]
    assert (body["total"], body["score_at_until"], body["until"]) == (1, 55, "2026-10-10T12:00:00Z")
    # A page past the first still says the score then.
    paged = client.get("/api/leads/ann@acme.io/history", params={"until": "2026-11-01T00:00:00Z", "offset": 1}).json()
    assert [row["event_id"] for row in paged["history"]] == ["a1"] and paged["score_at_until"] == 55
    assert client.get("/api/leads/ann@acme.io/history").json()["score_at_until"] is None


def test_before_the_first_event_there_is_no_score(client, history):
    lead = client.get("/api/leads/ann@acme.io", params={"as_of": "2026-09-01T09:59:59Z"})
    assert lead.status_code == 404 and lead.json()["detail"][0]["field"] == "as_of"
    past = client.get("/api/leads/ann@acme.io/history", params={"until": "2020-01-01T00:00:00Z"})
    assert past.status_code == 404 and past.json()["detail"][0]["field"] == "until"


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("as_of", "yesterday"),
        ("as_of", "2026-13-01T00:00:00Z"),
        ("as_of", "0001-01-01T00:00:00+01:00"),
        ("as_of", "0.5"),
        ("as_of", "1764000000"),
    ],
)
def test_a_bad_moment_is_422_naming_it(client, history, parameter, value):
    for path in ("/api/leads/ann@acme.io", "/api/leaderboard"):
        response = client.get(path, params={parameter: value})
        assert response.status_code == 422, (path, response.text)
        assert response.json()["detail"][0]["field"] == f"query.{parameter}"
    response = client.get("/api/leads/ann@acme.io/history", params={"until": value})
    assert response.status_code == 422 and response.json()["detail"][0]["field"] == "query.until"


def test_the_leaderboard_as_of_a_moment(client, history):
    body = client.get("/api/leaderboard", params={"as_of": "2026-10-10T12:00:00Z"}).json()
    assert body["as_of"] == "2026-10-10T12:00:00Z"
    assert [(r["rank"], r["lead_key"], r["score"], r["tier"]) for r in body["leads"]] == [
        (1, "ann@acme.io", 55, "warm"),
        (2, "bob@acme.io", 5, "cold"),
    ]
    # Before bob's first event he is not on it.
    early = client.get("/api/leaderboard", params={"as_of": "2026-10-01T00:00:00Z"}).json()
    assert [r["lead_key"] for r in early["leads"]] == ["ann@acme.io"]


def test_the_leaderboards_decay_in_sql_is_the_folds(client, history):
    """Day by day across the decay, the board's scores (decayed in SQL) equal each lead's (decayed by the fold)."""
    for day in range(0, 120, 3):
        moment = (at("2026-09-01T10:00:00") + timedelta(days=day, hours=13)).isoformat()
        board = client.get("/api/leaderboard", params={"as_of": moment}).json()["leads"]
        for row in board:
            lead = client.get(f"/api/leads/{row['lead_key']}", params={"as_of": moment}).json()
            assert (row["score"], row["tier"]) == (lead["score"], lead["tier"]), moment


def test_as_of_now_is_the_served_leaderboard(client, history):
    served = client.get("/api/leaderboard").json()
    now = client.get("/api/leaderboard", params={"as_of": served["as_of"]}).json()
    assert [(r["lead_key"], r["score"]) for r in now["leads"]] == [(r["lead_key"], r["score"]) for r in served["leads"]]


def test_the_curve_steps_down_at_midnights_and_up_at_events(client, history):
    body = client.get("/api/leads/ann@acme.io/curve", params={"until": "2026-10-21T00:00:00Z"}).json()
    assert (body["events"], body["truncated"], body["as_of"]) == (2, False, "2026-10-21T00:00:00Z")
    points = [(p["at"], p["score"], p["kind"]) for p in body["points"]]
    assert points[:3] == [
        ("2026-09-01T10:00:00Z", 100, "event"),
        ("2026-10-02T00:00:00Z", 95, "decay"),
        ("2026-10-03T00:00:00Z", 90, "decay"),
    ]
    assert points[-2:] == [("2026-10-20T00:00:00Z", 5, "decay"), ("2026-10-20T10:00:00Z", 55, "event")]
    # Every point is the lead's score at that moment.
    for moment, score, _ in points[::4]:
        assert client.get("/api/leads/ann@acme.io", params={"as_of": moment}).json()["score"] == score
    missing = client.get("/api/leads/nobody@acme.io/curve")
    assert missing.status_code == 404 and missing.json()["detail"][0]["field"] == "lead_key"
