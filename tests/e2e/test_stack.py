"""End to end on the real parts: the API and the Dagster daemon as processes, the sensor starting real runs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from leadscore_pipeline.dagster_home import write_dagster_yaml
from leadscore_pipeline.stack import WORKSPACE

BIN = Path(sys.executable).parent
DEADLINE_SECONDS = 180


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, what: str, timeout: float = DEADLINE_SECONDS):
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


@pytest.fixture
def stack(db: str, tmp_path: Path):
    port = free_port()
    dagster_home = tmp_path / "dagster"
    write_dagster_yaml(dagster_home, db)
    env = {
        **os.environ,
        "LEADSCORE_DATABASE_URL": db,
        "DAGSTER_HOME": str(dagster_home),
        "LEADSCORE_HOME": str(tmp_path),
    }
    logs = (tmp_path / "api.log").open("wb"), (tmp_path / "daemon.log").open("wb")
    processes = [
        subprocess.Popen(
            [str(BIN / "uvicorn"), "api.main:app", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=logs[0], stderr=subprocess.STDOUT,
        ),
        subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", str(WORKSPACE)],
            env=env, stdout=logs[1], stderr=subprocess.STDOUT,
        ),
    ]  # fmt: skip
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        wait_for(lambda: client.get("/readyz").status_code == 200, "the API to be ready", timeout=60)
        yield client
    finally:
        client.close()
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.close()
        for name in ("api.log", "daemon.log"):
            print(f"--- {name} (tail) ---\n" + (tmp_path / name).read_text()[-3000:])


def days_ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


def caught_up(client: httpx.Client, landed: int):
    status = client.get("/api/pipeline/status").json()
    return status if status["landed_through"] >= landed and status["lag"] == 0 else None


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
    whale_lead = stack.get("/api/leads/whale@big.co").json()
    assert whale_lead["score_at_last_event"] == 950 and whale_lead["events"] == 12
    history = stack.get("/api/leads/whale@big.co/history").json()["history"]
    assert [row["event_id"] for row in history[:2]] == ["r1", "late"]
    assert history[1]["change"] == 0 and history[0]["change"] == -50
    assert sum(row["change"] for row in history) == 950
