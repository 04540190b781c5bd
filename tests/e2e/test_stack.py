"""End to end on the real parts: the API, the Dagster daemon and webserver as processes, sensors starting
real runs. The tests share one stack and build on each other's data, in file order."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from leadscore_pipeline.dagster_home import write_dagster_yaml
from leadscore_pipeline.ingest.webhook import sign_webhook
from leadscore_pipeline.stack import SAMPLE_BATCH, WORKSPACE
from tests.conftest import reset_database

BIN = Path(sys.executable).parent
DEADLINE_SECONDS = 180
ADMIN = {"Authorization": "Bearer e2e-admin"}
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"e2e webhook secret").decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, what: str, timeout: float = DEADLINE_SECONDS):
    """Poll until `predicate` returns something truthy; fail with the last answer at the deadline."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="module")
def stack(database_url: str, home: Path):
    reset_database(database_url)
    api_port, dagster_port = free_port(), free_port()
    dagster_home = home / "dagster"
    write_dagster_yaml(dagster_home, database_url)
    env = {
        **os.environ,
        "LEADSCORE_DATABASE_URL": database_url,
        "LEADSCORE_HOME": str(home),
        "LEADSCORE_ADMIN_TOKEN": "e2e-admin",
        "LEADSCORE_WEBHOOK_SECRETS": WEBHOOK_SECRET,
        "LEADSCORE_DAGSTER_URL": f"http://127.0.0.1:{dagster_port}",
        "DAGSTER_HOME": str(dagster_home),
    }
    commands = {
        "api": [str(BIN / "uvicorn"), "api.main:app", "--host", "127.0.0.1", "--port", str(api_port)],
        "daemon": [str(BIN / "dagster-daemon"), "run", "-w", str(WORKSPACE)],
        "webserver": [str(BIN / "dagster-webserver"), "-w", str(WORKSPACE), "-h", "127.0.0.1", "-p", str(dagster_port)],
    }
    logs = {name: (home / f"{name}.log").open("wb") for name in commands}
    processes = {
        name: subprocess.Popen(command, env=env, stdout=logs[name], stderr=subprocess.STDOUT)
        for name, command in commands.items()
    }
    client = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=30)
    try:
        wait_for(lambda: client.get("/readyz").status_code == 200, "the API to be ready", timeout=60)
        yield client
    finally:
        client.close()
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        for name, log in logs.items():
            log.close()
            print(f"--- {name}.log (tail) ---\n" + (home / f"{name}.log").read_text()[-2000:])


def days_ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


def caught_up(client: httpx.Client, landed: int):
    status = client.get("/api/pipeline/status").json()
    return status if status["landed_through"] >= landed and status["lag"] == 0 else None


def lead(client: httpx.Client, lead_key: str) -> dict | None:
    response = client.get(f"/api/leads/{lead_key}")
    return response.json() if response.status_code == 200 else None


def test_events_flow_through_the_daemon_to_the_leaderboard(stack: httpx.Client):
    whale = [
        {"event_id": f"p{i}", "event_type": "PURCHASE", "email": "whale@big.co", "timestamp": days_ago(20 - i)}
        for i in range(10)
    ]  # ten purchases reach the cap of 1000
    others = [
        {"event_id": "r1", "event_type": "REFUND", "email": "whale@big.co", "timestamp": days_ago(5)},
        {"event_id": "o1", "event_type": "DEMO_REQUEST", "email": "ops@small.co", "timestamp": days_ago(3)},
        {"event_id": "o2", "event_type": "EMAIL_OPEN", "lead_id": "crm-9", "timestamp": days_ago(2)},
    ]
    assert stack.post("/api/events/batch", json=whale + others).status_code == 202
    wait_for(lambda: caught_up(stack, 13), "the sensor's micro-batch to score 13 deliveries")

    board = stack.get("/api/leaderboard").json()["leads"]
    assert [(row["lead_key"], row["score"]) for row in board] == [
        ("whale@big.co", 950),
        ("ops@small.co", 50),
        ("id:crm-9", 10),
    ]

    # A late purchase (between the last purchase and the refund) and a conflicting redelivery of p0.
    late = {"event_id": "late", "event_type": "PURCHASE", "email": "whale@big.co", "timestamp": days_ago(7)}
    again = {"event_id": "p0", "event_type": "REFUND", "email": "whale@big.co", "timestamp": days_ago(1)}
    assert stack.post("/api/events/batch", json=[late, again]).status_code == 202
    wait_for(lambda: caught_up(stack, 15), "the late event and the duplicate to be scored")

    # In event-time order the late purchase meets the cap (1000) before the refund: 950, not 1000.
    whale_lead = lead(stack, "whale@big.co")
    assert whale_lead["score_at_last_event"] == 950 and whale_lead["events"] == 12
    history = stack.get("/api/leads/whale@big.co/history").json()["history"]
    assert [row["event_id"] for row in history[:2]] == ["r1", "late"]
    assert history[1]["change"] == 0 and history[0]["change"] == -50
    assert sum(row["change"] for row in history) == 950
    assert stack.get("/api/events/p0").json()["status"] == "conflict"


def test_a_dropped_file_is_landed_scored_and_moved(stack: httpx.Client, home: Path):
    dropzone = home / "dropzone"
    dropzone.mkdir(exist_ok=True)
    shutil.copy(SAMPLE_BATCH, dropzone / "incoming.tmp")
    (dropzone / "incoming.tmp").rename(dropzone / "sample.csv")  # appear complete, as a writer should
    wait_for(lambda: (dropzone / "processed" / "sample.csv").exists(), "the drop sensor to land and move the file")
    capped = wait_for(lambda: lead(stack, "victor.hale@megacorp.com"), "the sample's leads to be scored")
    assert capped["score_at_last_event"] == 1000 and capped["company"] == "MegaCorp"


def test_a_signed_webhook_lands_and_is_scored(stack: httpx.Client):
    body = json.dumps({"messageId": "wh-1", "event": "DEMO_REQUEST", "userId": "crm-77", "timestamp": days_ago(1)})
    headers = sign_webhook(body.encode(), WEBHOOK_SECRET) | {"content-type": "application/json"}
    assert stack.post("/api/webhook", content=body, headers=headers).status_code == 202
    scored = wait_for(lambda: lead(stack, "id:crm-77"), "the webhook's event to be scored")
    assert scored["score"] == 50


def test_a_rule_change_rescores_everything_on_its_own(stack: httpx.Client):
    changed = stack.put("/api/rules/PURCHASE", json={"points": 60, "active": True}, headers=ADMIN).json()
    version = changed["rules_version"]

    def rescored():
        status = stack.get("/api/pipeline/status").json()
        return status["scored_rules_version"] >= version

    wait_for(rescored, f"scores to reflect rules version {version}")
    # 11 purchases of 60 then a refund of 50, no cap reached: 610.
    assert lead(stack, "whale@big.co")["score_at_last_event"] == 610


def test_replay_through_the_api_is_a_backfill_with_the_same_result(stack: httpx.Client):
    before = stack.get("/api/leaderboard", params={"limit": 100}).json()["leads"]
    launched = stack.post("/api/replay", headers=ADMIN)
    assert launched.status_code == 202
    replay_id = launched.json()["id"]

    def finished():
        state = stack.get(f"/api/replay/{replay_id}").json()["state"]
        return state if state in ("succeeded", "failed") else None

    assert wait_for(finished, f"replay {replay_id} to finish") == "succeeded"
    after = stack.get("/api/leaderboard", params={"limit": 100}).json()["leads"]
    assert [(r["lead_key"], r["score"]) for r in after] == [(r["lead_key"], r["score"]) for r in before]
    assert stack.get("/api/pipeline/status").json()["last_replay_at"] is not None
