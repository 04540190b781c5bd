"""`leadscore up`: Postgres (embedded or configured), migrations, then the API and Dagster as children."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from leadscore_pipeline.dagster_home import write_dagster_yaml
from leadscore_pipeline.db.embedded import ensure_database, start_embedded, stop_embedded
from leadscore_pipeline.db.engine import engine_for
from leadscore_pipeline.db.migrate import migrate
from leadscore_pipeline.ingest.csv_batches import land_csv_file
from leadscore_pipeline.rules import note_scoring_settings
from leadscore_pipeline.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKSPACE = REPO_ROOT / "workspace.yaml"
SAMPLE_BATCH = REPO_ROOT / "sample_batch.csv"
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Database:
    url: str
    embedded_dir: Path | None  # set when we started the embedded server (and so must stop it)


def prepare_database(settings: Settings) -> Database:
    if settings.database_url:
        url, embedded_dir = settings.database_url, None
    else:
        embedded_dir = settings.home.resolve() / "pgdata"
        url = ensure_database(start_embedded(embedded_dir), "leadscore")
    migrate(url)
    with engine_for(url).begin() as conn:
        if note_scoring_settings(conn, settings):
            print("Scoring settings changed since the last start: every lead will be rescored.", flush=True)
    return Database(url, embedded_dir)


def admin_token(settings: Settings) -> str:
    """The configured admin token, else one generated at first start and kept under $LEADSCORE_HOME."""
    token = settings.configured_admin_token()
    if token is None:
        token = secrets.token_urlsafe(24)
        settings.admin_token_path.write_text(token)
        settings.admin_token_path.chmod(0o600)
    return token


def child_environment(settings: Settings, database_url: str, token: str) -> dict[str, str]:
    return {
        **os.environ,
        "LEADSCORE_HOME": str(settings.home.resolve()),
        "LEADSCORE_DATABASE_URL": database_url,
        "LEADSCORE_ADMIN_TOKEN": token,
        "DAGSTER_HOME": str(settings.dagster_home),
    }


def start_children(settings: Settings, env: dict[str, str]) -> dict[str, subprocess.Popen]:
    logs = settings.home.resolve() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    commands = {
        "api": [
            str(BIN / "uvicorn"), "api.main:app",
            "--host", settings.api_host, "--port", str(settings.api_port), "--no-access-log",
        ],
        "dagster-webserver": [
            str(BIN / "dagster-webserver"), "-w", str(WORKSPACE),
            "-h", settings.api_host, "-p", str(settings.dagster_port),
        ],
        "dagster-daemon": [str(BIN / "dagster-daemon"), "run", "-w", str(WORKSPACE)],
    }  # fmt: skip
    children = {}
    for name, command in commands.items():
        log = (logs / f"{name}.log").open("ab")
        children[name] = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    return children


def wait_until_ready(url: str, children: dict[str, subprocess.Popen], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, child in children.items():
            if child.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with code {child.returncode}; see its log under $LEADSCORE_HOME/logs"
                )
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} was not ready within {timeout:.0f} s")


def stop_children(children: dict[str, subprocess.Popen]) -> None:
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()


def run_stack(settings: Settings) -> None:
    settings.home.mkdir(parents=True, exist_ok=True)
    print(f"LeadScore home: {settings.home.resolve()}", flush=True)
    database = prepare_database(settings)
    token = admin_token(settings)
    write_dagster_yaml(settings.dagster_home, database.url)
    settings.dropzone.mkdir(parents=True, exist_ok=True)
    env = child_environment(settings, database.url, token)

    stopping = False

    def _stop(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    children = start_children(settings, env)
    try:
        api = f"http://{settings.api_host}:{settings.api_port}"
        dagster = f"http://{settings.api_host}:{settings.dagster_port}"
        wait_until_ready(f"{api}/readyz", children)
        if settings.load_sample:
            _load_sample_once(database.url)
        wait_until_ready(f"{dagster}/server_info", children)
        _print_banner(api, dagster, token, database, settings.dropzone)
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    print(f"{name} exited with code {child.returncode}; stopping everything", flush=True)
                    stopping = True
            time.sleep(0.5)
    finally:
        print("stopping...", flush=True)
        stop_children(children)
        if database.embedded_dir is not None:
            stop_embedded(database.embedded_dir)
        print("stopped", flush=True)


def _load_sample_once(database_url: str) -> None:
    with engine_for(database_url).begin() as conn:
        if conn.exec_driver_sql("select exists (select 1 from raw_deliveries)").scalar_one():
            return
        result = land_csv_file(conn.connection.driver_connection, SAMPLE_BATCH, channel="csv")
    print(f"Loaded {SAMPLE_BATCH.name}: {result.accepted} rows landed, {result.rejected} rejected", flush=True)


def _print_banner(api: str, dagster: str, token: str, database: Database, dropzone: Path) -> None:
    where = f"embedded, data in {database.embedded_dir}" if database.embedded_dir else "LEADSCORE_DATABASE_URL"
    print(
        f"""
LeadScore is up (Postgres: {where}).
  Dashboard     {api}/
  API docs      {api}/docs
  Leaderboard   {api}/api/leaderboard
  Status        {api}/api/pipeline/status
  Dagster UI    {dagster}   (lineage, runs, replay)
  Drop folder   {dropzone}   (CSV files put here are landed)
  Admin token   {token}
Press Ctrl-C to stop.
""",
        flush=True,
    )
