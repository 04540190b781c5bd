"""End to end on the real parts: the API, the Dagster daemon and webserver as processes, sensors starting
real runs. The tests share one stack (see conftest.py) and build on each other's data, in file order."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta

import httpx

from leadscore_pipeline.ingest.webhook import sign_webhook
from leadscore_pipeline.stack import SAMPLE_BATCH
from tests.e2e.conftest import WEBHOOK_SECRET, Stack, wait_for


def days_ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


def caught_up(client: httpx.Client, landed: int):
    status = client.get("/api/pipeline/status").json()
    return status if status["landed_through"] >= landed and status["lag"] == 0 else None


def lead(client: httpx.Client, lead_key: str) -> dict | None:
    response = client.get(f"/api/leads/{lead_key}")
    return response.json() if response.status_code == 200 else None


def test_events_flow_through_the_daemon_to_the_leaderboard(stack: Stack):
    api = stack.client
    whale = [
        {"event_id": f"p{i}", "event_type": "PURCHASE", "email": "whale@big.co", "timestamp": days_ago(20 - i)}
        for i in range(10)
    ]  # ten purchases reach the cap of 1000
    others = [
        {"event_id": "r1", "event_type": "REFUND", "email": "whale@big.co", "timestamp": days_ago(5)},
        {"event_id": "o1", "event_type": "DEMO_REQUEST", "email": "ops@small.co", "timestamp": days_ago(3)},
        {"event_id": "o2", "event_type": "EMAIL_OPEN", "lead_id": "crm-9", "timestamp": days_ago(2)},
    ]
    assert api.post("/api/events/batch", json=whale + others).status_code == 202
    wait_for(lambda: caught_up(api, 13), "the sensor's micro-batch to score 13 deliveries")

    board = api.get("/api/leaderboard").json()["leads"]
    assert [(row["lead_key"], row["score"]) for row in board] == [
        ("whale@big.co", 950),
        ("ops@small.co", 50),
        ("id:crm-9", 10),
    ]

    # A late purchase (between the last purchase and the refund) and a conflicting redelivery of p0.
    late = {"event_id": "late", "event_type": "PURCHASE", "email": "whale@big.co", "timestamp": days_ago(7)}
    again = {"event_id": "p0", "event_type": "REFUND", "email": "whale@big.co", "timestamp": days_ago(1)}
    assert api.post("/api/events/batch", json=[late, again]).status_code == 202
    wait_for(lambda: caught_up(api, 15), "the late event and the duplicate to be scored")

    # In event-time order the late purchase meets the cap (1000) before the refund: 950, not 1000.
    whale_lead = lead(api, "whale@big.co")
    assert whale_lead["score_at_last_event"] == 950 and whale_lead["events"] == 12
    history = api.get("/api/leads/whale@big.co/history").json()["history"]
    assert [row["event_id"] for row in history[:2]] == ["r1", "late"]
    assert history[1]["change"] == 0 and history[0]["change"] == -50
    assert sum(row["change"] for row in history) == 950
    assert api.get("/api/events/p0").json()["status"] == "conflict"


def test_a_dropped_file_is_landed_scored_and_moved(stack: Stack):
    api = stack.client
    dropzone = stack.home / "dropzone"
    dropzone.mkdir(exist_ok=True)
    shutil.copy(SAMPLE_BATCH, dropzone / "incoming.tmp")
    (dropzone / "incoming.tmp").rename(dropzone / "sample.csv")  # appear complete, as a writer should
    wait_for(lambda: (dropzone / "processed" / "sample.csv").exists(), "the drop sensor to land and move the file")
    capped = wait_for(lambda: lead(api, "victor.hale@megacorp.com"), "the sample's leads to be scored")
    assert capped["score_at_last_event"] == 1000 and capped["company"] == "MegaCorp"


def test_a_signed_webhook_lands_and_is_scored(stack: Stack):
    api = stack.client
    body = json.dumps({"messageId": "wh-1", "event": "DEMO_REQUEST", "userId": "crm-77", "timestamp": days_ago(1)})
    headers = sign_webhook(body.encode(), WEBHOOK_SECRET) | {"content-type": "application/json"}
    assert api.post("/api/webhook", content=body, headers=headers).status_code == 202
    scored = wait_for(lambda: lead(api, "id:crm-77"), "the webhook's event to be scored")
    assert scored["score"] == 50


def test_a_rule_change_rescores_everything_on_its_own(stack: Stack):
    api = stack.client
    changed = api.put("/api/rules/PURCHASE", json={"points": 60, "active": True}, headers=stack.admin_headers).json()
    version = changed["rules_version"]

    def rescored():
        status = api.get("/api/pipeline/status").json()
        return status["scored_rules_version"] >= version

    wait_for(rescored, f"scores to reflect rules version {version}")
    # 11 purchases of 60 then a refund of 50, no cap reached: 610.
    assert lead(api, "whale@big.co")["score_at_last_event"] == 610


def test_replay_through_the_api_is_a_backfill_with_the_same_result(stack: Stack):
    api = stack.client
    before = api.get("/api/leaderboard", params={"limit": 100}).json()["leads"]
    progress = stack.replay()
    assert progress["state"] == "succeeded"
    assert progress["buckets_done"] == progress["buckets_total"] == 16
    after = api.get("/api/leaderboard", params={"limit": 100}).json()["leads"]
    assert [(r["lead_key"], r["score"]) for r in after] == [(r["lead_key"], r["score"]) for r in before]
    assert api.get("/api/pipeline/status").json()["last_replay_at"] is not None
