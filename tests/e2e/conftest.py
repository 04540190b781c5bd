"""End-to-end fixtures: the API, the Dagster daemon and webserver as real processes on a database of
their own (one per test module, so sensor cursors in Dagster's storage start from zero)."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from leadscore_pipeline.dagster_home import create_dagster_storage, write_dagster_yaml
from leadscore_pipeline.db.embedded import drop_database, ensure_database
from leadscore_pipeline.db.engine import engine_for
from leadscore_pipeline.db.migrate import migrate
from leadscore_pipeline.process_groups import stop_groups
from leadscore_pipeline.stack import WORKSPACE
from tests.polling import free_port, wait_for

BIN = Path(sys.executable).parent
ADMIN_TOKEN = "e2e-admin"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"e2e webhook secret").decode()


@dataclass
class Stack:
    client: httpx.Client  # the API
    api_url: str
    dagster_url: str
    home: Path  # $LEADSCORE_HOME: the drop folder is home / "dropzone"
    admin_headers: dict[str, str]
    groups: dict[str, int] = field(default_factory=dict)  # process group of each started command, by name

    def replay(self, timeout: float = 180.0) -> dict:
        """POST /api/replay, then poll GET /api/replay/{id} until it ends; its last answer."""
        launched = self.client.post("/api/replay", headers=self.admin_headers)
        assert launched.status_code == 202, launched.text
        replay_id = launched.json()["id"]

        def finished() -> dict | None:
            progress = self.client.get(f"/api/replay/{replay_id}").json()
            return progress if progress["state"] in ("succeeded", "failed") else None

        return wait_for(finished, f"replay {replay_id} to finish", timeout=timeout, interval=0.5)


@pytest.fixture(scope="module")
def stack(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory):
    with running_stack(postgres_server_url, tmp_path_factory.mktemp("e2e")) as started:
        yield started


@contextlib.contextmanager
def running_stack(
    postgres_server_url: str,
    home: Path,
    extra_env: Mapping[str, str] | None = None,
    extra_commands: Mapping[str, list[str]] | None = None,
) -> Iterator[Stack]:
    """The API, the daemon and the webserver (and `extra_commands`, e.g. Celery workers) on a database of their own."""
    name = f"leadscore_e2e_{os.getpid()}_{secrets.token_hex(3)}"
    database_url = ensure_database(postgres_server_url, name)
    migrate(database_url)
    api_port, dagster_port = free_port(), free_port()
    dagster_home = home / "dagster"
    write_dagster_yaml(dagster_home, database_url)
    create_dagster_storage(dagster_home)  # as `leadscore up`: before the processes race to create it
    env = {
        **os.environ,
        "LEADSCORE_DATABASE_URL": database_url,
        "LEADSCORE_HOME": str(home),
        "LEADSCORE_ADMIN_TOKEN": ADMIN_TOKEN,
        "LEADSCORE_WEBHOOK_SECRETS": WEBHOOK_SECRET,
        "LEADSCORE_DAGSTER_URL": f"http://127.0.0.1:{dagster_port}",
        "DAGSTER_HOME": str(dagster_home),
        **(extra_env or {}),
    }
    commands = {
        "api": [str(BIN / "uvicorn"), "api.main:app", "--host", "127.0.0.1", "--port", str(api_port)],
        "daemon": [sys.executable, "-m", "leadscore_pipeline.daemon", "run", "-w", str(WORKSPACE)],  # as `leadscore up`
        "webserver": [str(BIN / "dagster-webserver"), "-w", str(WORKSPACE), "-h", "127.0.0.1", "-p", str(dagster_port)],
        **(extra_commands or {}),
    }
    logs = {name: (home / f"{name}.log").open("wb") for name in commands}
    processes = {
        # Each in a process group of its own, so the code servers and run workers they spawn are stopped with them.
        name: subprocess.Popen(command, env=env, stdout=logs[name], stderr=subprocess.STDOUT, start_new_session=True)
        for name, command in commands.items()
    }
    api_url = f"http://127.0.0.1:{api_port}"
    client = httpx.Client(base_url=api_url, timeout=30)
    try:
        wait_for(lambda: client.get("/readyz").status_code == 200, "the API to be ready", timeout=60)
        yield Stack(
            client=client,
            api_url=api_url,
            dagster_url=f"http://127.0.0.1:{dagster_port}",
            home=home,
            admin_headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            groups={name: process.pid for name, process in processes.items()},
        )
    finally:
        client.close()
        stop_groups([process.pid for process in processes.values()], timeout=30)
        for name, log in logs.items():
            log.close()
            print(f"--- {name}.log (tail) ---\n" + (home / f"{name}.log").read_text()[-2000:])
        engine_for(database_url).dispose()
        drop_database(postgres_server_url, name)
