"""Rule versions (every change of the set, immutable, restorable), daily limits through the API, and the preview of
a draft set, which writes nothing."""

from __future__ import annotations

import psycopg
import pytest

from leadscore_pipeline.microbatch import run_all_steps
from leadscore_pipeline.refresh import Scope, dedup_deliveries
from tests.api.conftest import ADMIN
from tests.pipeline.helpers import event, land
from tests.polling import wait_for


def versions(client) -> list[dict]:
    return client.get("/api/rules/versions").json()["versions"]


def rule_set(client) -> dict[str, tuple]:
    return {
        r["event_type"]: (r["points"], r["active"], r["max_per_day"]) for r in client.get("/api/rules").json()["rules"]
    }


def test_version_1_is_the_seeded_set(admin_client):
    [first] = versions(admin_client)
    assert (first["version"], first["kind"], first["rules_version"]) == (1, "seed", 1)
    assert {c["event_type"]: (c["before"], c["after"]["points"]) for c in first["change"]}["PURCHASE"] == (None, 100)
    whole = admin_client.get("/api/rules/versions/1").json()
    assert {r["event_type"]: r["points"] for r in whole["rules"]}["PURCHASE"] == 100
    assert admin_client.get("/api/rules").json()["rule_set_version"] == 1


def test_every_change_is_a_version_with_its_change_and_note(admin_client):
    put = admin_client.put(
        "/api/rules/page_view", json={"points": 5, "max_per_day": 3, "note": "cap page views"}, headers=ADMIN
    ).json()
    assert (put["version"], put["rules_version"], put["rule"]["max_per_day"]) == (2, 2, 3)
    same = admin_client.put("/api/rules/PAGE_VIEW", json={"points": 5, "max_per_day": 3}, headers=ADMIN).json()
    assert (same["changed"], same["version"]) == (False, None)  # nothing changed: no version
    deleted = admin_client.delete("/api/rules/REFUND?note=no+more+refunds", headers=ADMIN).json()
    assert deleted["version"] == 3
    bulk = admin_client.put(
        "/api/rules",
        json={
            "rules": [{"event_type": "purchase", "points": 120}, {"event_type": "WEBINAR", "points": 15}],
            "note": "x",
        },
        headers=ADMIN,
    ).json()
    assert (bulk["version"], bulk["rules_version"]) == (4, 4)
    assert rule_set(admin_client) == {"PURCHASE": (120, True, None), "WEBINAR": (15, True, None)}

    newest_first = versions(admin_client)
    assert [(v["version"], v["kind"], v["note"]) for v in newest_first] == [
        (4, "replace", "x"),
        (3, "delete", "no more refunds"),
        (2, "put", "cap page views"),
        (1, "seed", None),
    ]
    assert newest_first[2]["change"] == [
        {
            "event_type": "PAGE_VIEW",
            "before": {"points": 5, "active": True, "max_per_day": None},
            "after": {"points": 5, "active": True, "max_per_day": 3},
        }
    ]
    assert newest_first[1]["change"] == [
        {"event_type": "REFUND", "before": {"points": -50, "active": True, "max_per_day": None}, "after": None}
    ]
    assert {c["event_type"] for c in newest_first[0]["change"]} == {
        "EMAIL_OPEN", "PAGE_VIEW", "FORM_SUBMISSION", "DEMO_REQUEST", "PURCHASE", "WEBINAR",
    }  # fmt: skip
    page = admin_client.get("/api/rules/versions?limit=1&offset=1").json()
    assert (page["total"], [v["version"] for v in page["versions"]]) == (4, [3])


def test_restore_makes_an_old_set_current_as_a_new_version(admin_client):
    seeded = rule_set(admin_client)
    admin_client.put("/api/rules", json={"rules": [{"event_type": "PURCHASE", "points": 1}]}, headers=ADMIN)
    restored = admin_client.post("/api/rules/versions/1/restore", json={"note": "undo"}, headers=ADMIN).json()
    assert (restored["changed"], restored["version"], restored["rules_version"]) == (True, 3, 3)
    assert rule_set(admin_client) == seeded
    newest = admin_client.get("/api/rules/versions/3").json()
    assert (newest["kind"], newest["restored_from"], newest["note"]) == ("restore", 1, "undo")
    # Restoring what is current changes nothing: no version, no rescore.
    again = admin_client.post("/api/rules/versions/3/restore", headers=ADMIN).json()
    assert (again["changed"], again["version"], again["rules_version"]) == (False, None, 3)


def test_versions_are_immutable(admin_client, conn):
    with pytest.raises(psycopg.errors.RaiseException):
        conn.execute("update rule_versions set note = 'rewritten' where version = 1")
    with pytest.raises(psycopg.errors.RaiseException):
        conn.execute("delete from rule_versions")


def test_version_errors_name_the_field(admin_client):
    assert admin_client.get("/api/rules/versions/99").json()["detail"][0]["field"] == "version"
    assert admin_client.get("/api/rules/versions/99").status_code == 404
    assert admin_client.post("/api/rules/versions/99/restore", headers=ADMIN).status_code == 404
    assert admin_client.post("/api/rules/versions/1/restore").status_code == 401
    assert admin_client.get("/api/rules/versions/0").status_code == 422
    assert admin_client.get("/api/rules/versions/x").status_code == 422


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rules": [{"event_type": "A", "points": 1}, {"event_type": "a", "points": 2}]}, "rules.1.event_type"),
        ({"rules": [{"event_type": "bad type", "points": 1}]}, "body.rules.0.event_type"),
        ({"rules": [{"event_type": "A", "points": 1, "max_per_day": 0}]}, "body.rules.0.max_per_day"),
        ({"rules": [{"event_type": "A", "points": 1, "max_per_day": True}]}, "body.rules.0.max_per_day"),
        ({"rules": [{"event_type": "A", "points": 1, "bonus": 2}]}, "body.rules.0.bonus"),
        ({"rules": [], "note": "nul \x00"}, "body.note"),
        ({"rules": [], "note": "x" * 501}, "body.note"),
        ({}, "body.rules"),
    ],
)
def test_a_bad_rule_set_is_422_naming_the_field(admin_client, body, field):
    response = admin_client.put("/api/rules", json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == field
    assert len(versions(admin_client)) == 1


def test_a_note_with_a_lone_surrogate_is_422(admin_client):
    raw = '{"rules": [], "note": "half \\ud800 a pair"}'  # JSON may escape one; no client library sends it raw
    response = admin_client.put("/api/rules", content=raw, headers={**ADMIN, "content-type": "application/json"})
    assert response.status_code == 422 and response.json()["detail"][0]["field"] == "body.note"


@pytest.mark.parametrize(
    ("body", "field"),
    [({"points": 1, "max_per_day": 0}, "body.max_per_day"), ({"points": 1, "note": "\x00"}, "body.note")],
)
def test_a_bad_rule_is_422_naming_the_field(admin_client, body, field):
    response = admin_client.put("/api/rules/A", json=body, headers=ADMIN)
    assert response.status_code == 422 and response.json()["detail"][0]["field"] == field


def test_a_daily_limit_shows_in_the_history(admin_client, conn):
    admin_client.put("/api/rules/PAGE_VIEW", json={"points": 5, "max_per_day": 2}, headers=ADMIN)
    land(conn, *(event(f"p{i}", "PAGE_VIEW", f"2026-11-20T1{i}:00:00Z") for i in range(3)))
    run_all_steps(conn, Scope(incremental=True))
    rows = admin_client.get("/api/leads/ann@acme.io/history").json()["history"]
    assert [(r["event_id"], r["points"], r["note"]) for r in rows] == [
        ("p2", 0, "daily limit reached"),
        ("p1", 5, None),
        ("p0", 5, None),
    ]
    assert admin_client.get("/api/leads/ann@acme.io").json()["score"] == 10


def preview_of(client, rules: list[dict]) -> dict:
    started = client.post("/api/rules/preview", json={"rules": rules}, headers=ADMIN)
    assert started.status_code == 202, started.text
    url = f"/api/rules/preview/{started.json()['id']}"
    done = wait_for(
        lambda: (state := client.get(url, headers=ADMIN).json())["state"] in ("succeeded", "failed") and state,
        "the preview",
        timeout=60,
    )
    assert done["state"] == "succeeded", done["error"]
    return done


def test_preview_answers_tier_moves_movers_and_top_and_writes_nothing(admin_client, conn):
    land(
        conn,
        event("a1", "DEMO_REQUEST", "2026-11-20T10:00:00Z", email="ann@acme.io"),  # 50 warm
        event("b1", "PAGE_VIEW", "2026-11-20T10:00:00Z", email="bob@acme.io"),  # 5 cold
        event("c1", "PURCHASE", "2026-11-20T10:00:00Z", email="cy@acme.io"),  # 100 warm
        event("c2", "PURCHASE", "2026-11-20T11:00:00Z", email="cy@acme.io"),  # 200 hot
    )
    run_all_steps(conn, Scope(incremental=True))
    before = conn.execute("select rules_version, (select count(*) from rule_versions) from pipeline_state").fetchone()
    stored = conn.execute("select lead_key, score from current_scores order by lead_key").fetchall()

    draft = [
        {"event_type": "DEMO_REQUEST", "points": 200},
        {"event_type": "PURCHASE", "points": 100, "max_per_day": 1},
    ]
    state = preview_of(admin_client, draft)
    result = state["result"]
    assert (state["buckets_done"], state["buckets_total"]) == (16, 16)
    assert result["leads"] == 3 and result["tier_changes"] == 2
    assert result["matrix"]["warm"] == {"cold": 0, "warm": 0, "hot": 1, "qualified": 0}  # ann 50 -> 200
    assert result["matrix"]["cold"] == {"cold": 1, "warm": 0, "hot": 0, "qualified": 0}  # bob 5 -> 0, cold still
    assert result["matrix"]["hot"] == {"cold": 0, "warm": 1, "hot": 0, "qualified": 0}  # cy 200 -> 100
    assert result["tiers_before"] == {"cold": 1, "warm": 1, "hot": 1, "qualified": 0}
    assert result["tiers_after"] == {"cold": 1, "warm": 1, "hot": 1, "qualified": 0}
    assert [(m["lead_key"], m["change"]) for m in result["top_movers_up"]] == [("ann@acme.io", 150)]
    assert [(m["lead_key"], m["change"]) for m in result["top_movers_down"]] == [
        ("cy@acme.io", -100),
        ("bob@acme.io", -5),
    ]
    assert [(t["lead_key"], t["score_after"]) for t in result["top"]] == [
        ("ann@acme.io", 200),
        ("cy@acme.io", 100),
        ("bob@acme.io", 0),
    ]
    after = conn.execute("select rules_version, (select count(*) from rule_versions) from pipeline_state").fetchone()
    assert after == before
    assert conn.execute("select lead_key, score from current_scores order by lead_key").fetchall() == stored


def test_preview_needs_the_admin_token_and_a_valid_set(admin_client):
    assert admin_client.post("/api/rules/preview", json={"rules": []}).status_code == 401
    bad = admin_client.post("/api/rules/preview", json={"rules": [{"event_type": "A"}]}, headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "body.rules.0.points"
    missing = admin_client.get("/api/rules/preview/nope", headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["detail"][0]["field"] == "id"


def test_preview_folds_leads_not_scored_yet_and_keeps_the_others(admin_client, conn):
    land(conn, event("a1", "DEMO_REQUEST", "2026-11-20T10:00:00Z", email="ann@acme.io"))
    run_all_steps(conn, Scope(incremental=True))
    land(conn, event("n1", "PURCHASE", "2026-11-21T10:00:00Z", email="new@acme.io"))
    dedup_deliveries(conn, Scope(incremental=True))  # a clean event, not scored yet
    unchanged = [{"event_type": t, "points": p} for t, p in admin_client_rules(admin_client).items()]
    result = preview_of(admin_client, unchanged)["result"]
    assert result["matrix"]["unscored"]["warm"] == 1 and result["matrix"]["warm"]["warm"] == 1
    assert [(m["lead_key"], m["score_before"], m["change"]) for m in result["top_movers_up"]] == [
        ("new@acme.io", None, 100)
    ]
    assert result["top_movers_down"] == [] and result["tier_changes"] == 1


def admin_client_rules(client) -> dict[str, int]:
    return {r["event_type"]: r["points"] for r in client.get("/api/rules").json()["rules"]}
