"""The API as a real process under load: 200 live-stream clients share a handful of Postgres connections and
each gets its snapshot and every score update; a request that finds the pool exhausted gets a 503, not a 500."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg

from leadscore_pipeline.db.urls import libpq_url
from leadscore_pipeline.process_groups import stop_groups
from tests.api.test_read import score_all
from tests.pipeline.helpers import event, land
from tests.polling import free_port, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
# libpq in the API process names every connection it opens after this, unless the code names it itself.
API_APPLICATION_NAME = "leadscore-api-under-test"
NAMED_BY_THE_API = [API_APPLICATION_NAME, "leadscore-stream", "leadscore-export"]
CLIENTS = 200
MAX_API_CONNECTIONS = 10
DEADLINE_SECONDS = 60


@contextmanager
def api_process(database_url: str, **settings: str) -> Iterator[str]:
    """`uvicorn api.main:app` on a free port, as `leadscore up` starts it; yields its base URL."""
    port = free_port()
    env = {**os.environ, "LEADSCORE_DATABASE_URL": database_url, "PGAPPNAME": API_APPLICATION_NAME, **settings}
    command = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port)]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        base = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            assert process.poll() is None, "the API exited"
            try:
                return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        try:
            wait_for(healthy, "the API to start")
            yield base
        finally:
            stop_groups([process.pid], timeout=20)
            log.seek(0)
            print("--- API log (tail) ---\n" + log.read().decode(errors="replace")[-3000:])


class ConnectionWatch:
    """Samples, in a thread of its own, how many connections to the test database the API process holds."""

    def __init__(self, database_url: str):
        self.url = libpq_url(database_url)
        self.samples: list[int] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stopping.is_set():
                row = conn.execute(
                    """select count(*) from pg_stat_activity
                       where datname = current_database() and application_name = any(%s)""",
                    (NAMED_BY_THE_API,),
                ).fetchone()
                self.samples.append(row[0])
                self.stopping.wait(0.02)

    def __enter__(self) -> ConnectionWatch:
        self.thread.start()
        return self

    def __exit__(self, *_) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)


async def read_stream(http: httpx.AsyncClient, snapshot: asyncio.Future, update: asyncio.Future, lead_key: str) -> None:
    """One EventSource-like client: resolves `snapshot`, then `update` with the first score-update of `lead_key`."""
    async with http.stream("GET", "/api/stream") as response:
        assert response.status_code == 200, response.status_code
        name = None
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = json.loads(line.removeprefix("data: "))
                if name == "snapshot":
                    snapshot.set_result(data)
                elif name == "score-update" and data["lead_key"] == lead_key:
                    update.set_result(data)
                    return


async def follow(http: httpx.AsyncClient, snapshot: asyncio.Future, update: asyncio.Future, lead_key: str) -> None:
    """A stream that ends or fails early fails the test at once, with its reason, rather than at the deadline."""
    try:
        await read_stream(http, snapshot, update, lead_key)
        problem: Exception = AssertionError("the stream ended before this event")
    except Exception as exc:
        problem = exc
    for future in (snapshot, update):
        if not future.done():
            future.set_exception(problem)


async def many_clients_see_a_change(base: str, conn: psycopg.Connection) -> tuple[list[dict], list[dict]]:
    loop = asyncio.get_running_loop()
    snapshots = [loop.create_future() for _ in range(CLIENTS)]
    updates = [loop.create_future() for _ in range(CLIENTS)]
    limits = httpx.Limits(max_connections=CLIENTS + 10)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=DEADLINE_SECONDS) as http:
        clients = [
            asyncio.create_task(follow(http, snapshot, update, "bob@globex.com"))
            for snapshot, update in zip(snapshots, updates, strict=True)
        ]
        try:
            async with asyncio.timeout(DEADLINE_SECONDS):
                got_snapshots = await asyncio.gather(*snapshots)
            # Every client is subscribed (its snapshot came after): now bob's first event lands and is scored.
            await asyncio.to_thread(land, conn, event("b1", "DEMO_REQUEST", "2026-11-21T10:00:00Z", "bob@globex.com"))
            await asyncio.to_thread(score_all, conn)
            async with asyncio.timeout(DEADLINE_SECONDS):
                got_updates = await asyncio.gather(*updates)
        finally:
            for client in clients:
                client.cancel()
            await asyncio.gather(*clients, return_exceptions=True)
            for future in (*snapshots, *updates):
                if future.done() and not future.cancelled():
                    future.exception()  # marked as seen: the test reports the first failure, not every client's
    return got_snapshots, got_updates


def test_200_stream_clients_share_a_few_connections_and_all_see_each_update(db, conn):
    land(conn, event("a1", "PURCHASE", "2026-11-20T10:00:00Z", "ann@acme.io"))
    score_all(conn)
    with api_process(db) as base, ConnectionWatch(db) as watch:
        snapshots, updates = asyncio.run(many_clients_see_a_change(base, conn))

    assert len(snapshots) == CLIENTS
    assert all([lead["lead_key"] for lead in snapshot["leads"]] == ["ann@acme.io"] for snapshot in snapshots)
    # bob's DEMO_REQUEST: 50 points, warm, second behind ann's 100 (the clock is frozen a week later).
    assert {(u["lead_key"], u["score"], u["tier"], u["rank"]) for u in updates} == {("bob@globex.com", 50, "warm", 2)}
    assert all(u["change_id"] > s["change_id"] for s, u in zip(snapshots, updates, strict=True))
    # At least the stream's LISTEN: a watch that counts nothing would pass for the wrong reason.
    assert 1 <= max(watch.samples) <= MAX_API_CONNECTIONS, f"the API held up to {max(watch.samples)} connections"


def test_a_request_that_finds_the_pool_exhausted_gets_a_503_with_the_reason(db, conn):
    one_connection = {
        "LEADSCORE_DB_POOL_SIZE": "1",
        "LEADSCORE_DB_MAX_OVERFLOW": "0",
        "LEADSCORE_DB_POOL_TIMEOUT_SECONDS": "0.5",
    }
    with api_process(db, **one_connection) as base, psycopg.connect(libpq_url(db)) as blocker:
        blocker.execute("lock table current_scores in access exclusive mode")  # held until the rollback below
        first: list[httpx.Response] = []
        holder = threading.Thread(target=lambda: first.append(httpx.get(f"{base}/api/leaderboard", timeout=30)))
        holder.start()
        # The first request holds the pool's only connection while it waits for the lock.
        wait_for(
            lambda: conn.execute(
                "select 1 from pg_stat_activity where application_name = %s and wait_event_type = 'Lock'",
                (API_APPLICATION_NAME,),
            ).fetchone(),
            "the first request to wait on the lock",
        )
        second = httpx.get(f"{base}/api/leaderboard", timeout=10)
        blocker.rollback()
        holder.join(timeout=DEADLINE_SECONDS)

    assert second.status_code == 503
    assert second.headers["retry-after"] == "1"
    [error] = second.json()["detail"]
    assert error["field"] == "database" and "busy" in error["error"] and "0.5 s" in error["error"]
    assert [response.status_code for response in first] == [200]
