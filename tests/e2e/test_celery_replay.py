"""A replay with LEADSCORE_EXECUTOR=celery: the backfill's runs hand their steps to two `dagster-celery` workers
(started as `leadscore up` starts them) and the leaderboard comes out the same. Needs Redis on 127.0.0.1:6379:
skipped without it, failed without it when CI is set. The test takes a Redis database of its own (1-15), so two
runs never share a queue."""

from __future__ import annotations

import math
import os
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis
from dagster import DagsterEventType, DagsterInstance, RunsFilter

from leadscore_pipeline.process_groups import live_members
from leadscore_pipeline.settings import Settings
from leadscore_pipeline.stack import BIN, celery_worker_names, celery_worker_specs, write_celery_yaml
from tests.e2e.conftest import Stack, running_stack, wait_for

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
CLAIM_KEY = "leadscore:e2e:claimed-by"
# What Celery and kombu leave in a database: a database holding anything else belongs to someone else.
CELERY_KEYS = (b"_kombu.", b"celery-task-meta-", b"unacked", b"dagster")
WORKERS = 2


def _redis_or_skip() -> None:
    try:
        redis.Redis(REDIS_HOST, REDIS_PORT, socket_timeout=2).ping()
    except redis.RedisError as exc:
        reason = f"Redis is not reachable on {REDIS_HOST}:{REDIS_PORT}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def redis_db() -> Iterator[int]:
    """A Redis database claimed for this test run: empty but for what Celery left there (which is cleared)."""
    _redis_or_skip()
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    for db in range(1, 16):
        client = redis.Redis(REDIS_HOST, REDIS_PORT, db=db)
        try:
            if not client.set(CLAIM_KEY, token, nx=True, ex=3600):
                continue
        except redis.ResponseError:  # fewer databases configured
            break
        leftovers = [key for key in client.scan_iter() if key != CLAIM_KEY.encode()]
        if any(not key.startswith(CELERY_KEYS) for key in leftovers):
            client.delete(CLAIM_KEY)
            continue
        try:
            if leftovers:
                client.delete(*leftovers)
            yield db
        finally:
            leftovers = [key for key in client.scan_iter() if key != CLAIM_KEY.encode()]
            if leftovers:
                client.delete(*leftovers)
            if client.get(CLAIM_KEY) == token.encode():
                client.delete(CLAIM_KEY)
        return
    pytest.fail("no Redis database (1-15) free for this test run")


@pytest.fixture(scope="module")
def celery_stack(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory, redis_db: int):
    home = tmp_path_factory.mktemp("e2e-celery")
    env = {
        "LEADSCORE_EXECUTOR": "celery",
        "LEADSCORE_CELERY_BROKER": f"redis://{REDIS_HOST}:{REDIS_PORT}/{redis_db}",
        "LEADSCORE_CELERY_WORKERS": str(WORKERS),
        "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", os.defpath)]),  # as stack.child_environment
    }
    settings = Settings(
        home=home, executor="celery", celery_broker=env["LEADSCORE_CELERY_BROKER"], celery_workers=WORKERS
    )
    write_celery_yaml(settings)
    workers = {spec.name: list(spec.command) for spec in celery_worker_specs(settings)}
    assert len(workers) == WORKERS
    with running_stack(postgres_server_url, home, extra_env=env, extra_commands=workers) as stack:
        yield stack


def _days_ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


def _caught_up(client: httpx.Client, landed: int) -> bool:
    status = client.get("/api/pipeline/status").json()
    return status["landed_through"] >= landed and status["lag"] == 0


def _worker_ready(stack: Stack, name: str) -> bool:
    log = stack.home / f"celery-{name}.log"
    return log.exists() and f"{name}@" in log.read_text() and " ready." in log.read_text()


def test_a_replay_runs_its_steps_on_the_celery_workers(celery_stack: Stack):
    api = celery_stack.client
    events = [
        {"event_id": f"c{i}", "event_type": kind, "email": f"lead{i % 7}@co.com", "timestamp": _days_ago(i % 9)}
        for i, kind in enumerate(["PURCHASE", "DEMO_REQUEST", "EMAIL_OPEN", "PAGE_VIEW"] * 10)
    ]
    assert api.post("/api/events/batch", json=events).status_code == 202
    wait_for(lambda: _caught_up(api, len(events)), "the micro-batch (in-process) to score the events")
    before = api.get("/api/leaderboard", params={"limit": 100}).json()["leads"]
    assert len(before) == 7

    names = celery_worker_names(Settings(executor="celery", celery_workers=WORKERS))
    for name in names:
        wait_for(lambda name=name: _worker_ready(celery_stack, name), f"Celery worker {name} to be ready", timeout=60)
    started = time.monotonic()
    progress = celery_stack.replay(timeout=300)
    print(f"replay through {WORKERS} Celery workers: {time.monotonic() - started:.1f} s")  # shown with -s
    assert progress["state"] == "succeeded", progress
    assert progress["buckets_done"] == progress["buckets_total"] == 16
    after = api.get("/api/leaderboard", params={"limit": 100}).json()["leads"]
    assert [(r["lead_key"], r["score"]) for r in after] == [(r["lead_key"], r["score"]) for r in before]

    # Where the steps ran: every step of every run of the replay started in a process of a worker's group (not in
    # the run's own process, as with a silently in-process executor), and both workers took tasks.
    worker_pids = {p.pid for p in live_members(celery_stack.groups[f"celery-{name}"] for name in names)}
    with DagsterInstance.from_config(str(celery_stack.home / "dagster")) as instance:
        runs = instance.get_runs(RunsFilter(tags={"dagster/backfill": progress["id"]}))
        assert len(runs) == math.ceil(16 / Settings().buckets_per_run)
        starts, hosts = [], set()
        for run in runs:
            for record in instance.all_logs(run.run_id):
                event = record.dagster_event
                if event is None:
                    continue
                if event.event_type == DagsterEventType.STEP_START:
                    starts.append(event)
                elif event.event_type == DagsterEventType.ENGINE_EVENT and "in celery worker" in (event.message or ""):
                    hosts.add(event.engine_event_data.metadata["Celery worker"].value.split("@")[0])
    # Each run's five scoring steps, once each, and the asset checks of its buckets: all on the workers.
    scoring_steps = {"clean_events", "daily_event_counts", "lead_scores", "current_scores", "lead_event_stats"}
    assert Counter(e.step_key for e in starts if e.step_key in scoring_steps) == dict.fromkeys(scoring_steps, len(runs))
    assert {event.pid for event in starts} <= worker_pids
    assert hosts == set(names)
