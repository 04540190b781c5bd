"""`leadscore up`: Postgres (embedded or configured), migrations, then the API and Dagster as supervised children."""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from leadscore_pipeline.dagster_home import create_dagster_storage, record_views_created, write_dagster_yaml
from leadscore_pipeline.db.embedded import ensure_database, start_embedded, stop_embedded
from leadscore_pipeline.db.engine import engine_for
from leadscore_pipeline.db.migrate import migrate
from leadscore_pipeline.db.watch import DatabaseWatch
from leadscore_pipeline.ingest.csv_batches import land_csv_file
from leadscore_pipeline.rules import note_scoring_settings
from leadscore_pipeline.settings import Settings
from leadscore_pipeline.supervisor import (
    ChildKeptDying,
    ChildSpec,
    HomeInUse,
    Supervisor,
    claim_home,
    stop_previous_children,
)

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
        # Created owner-only, never readable by others even for a moment.
        fd = os.open(settings.admin_token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(token)
    return token


def where_the_admin_token_is(settings: Settings) -> str:
    """For the banner, which must not print the token itself: output ends up in logs and terminals."""
    if settings.admin_token:
        return "set by LEADSCORE_ADMIN_TOKEN"
    return f"in {settings.admin_token_path}   (cat it; the dashboard asks for it to edit rules)"


def child_environment(settings: Settings, database_url: str, token: str) -> dict[str, str]:
    return {
        **os.environ,
        # `dagster-celery worker start` runs `celery` from the PATH: this venv's, even when not activated.
        "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", os.defpath)]),
        "LEADSCORE_HOME": str(settings.home.resolve()),
        "LEADSCORE_DATABASE_URL": database_url,
        "LEADSCORE_ADMIN_TOKEN": token,
        "DAGSTER_HOME": str(settings.dagster_home),
    }


def celery_yaml(settings: Settings) -> Path:
    return settings.dagster_home / "celery.yaml"


def write_celery_yaml(settings: Settings) -> Path:
    """The workers' broker and result backend, in the executor config block `dagster-celery worker start -y`
    reads: the same as definitions.py gives the runs, or the workers never see their tasks."""
    path = celery_yaml(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    broker = json.dumps(settings.celery_broker)  # JSON is YAML: a quoted string
    path.write_text(f"execution:\n  config:\n    broker: {broker}\n    backend: {broker}\n")
    return path


def celery_worker_names(settings: Settings) -> list[str]:
    count = settings.celery_workers if settings.executor == "celery" else 0
    return [f"leadscore-{n}" for n in range(1, count + 1)]


def celery_worker_specs(settings: Settings) -> list[ChildSpec]:
    """One `dagster-celery worker` per name (it appends `@<host>`); each loads the code a task names and the
    instance from $DAGSTER_HOME, and reaches Postgres with the children's environment."""
    return [
        ChildSpec(f"celery-{name}", [
            str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
            "-y", str(celery_yaml(settings)), "--name", name,
        ])
        for name in celery_worker_names(settings)
    ]  # fmt: skip


def child_specs(settings: Settings) -> list[ChildSpec]:
    return [
        ChildSpec("api", [
            str(BIN / "uvicorn"), "api.main:app",
            "--host", settings.api_host, "--port", str(settings.api_port), "--no-access-log",
        ]),
        ChildSpec("dagster-webserver", [
            str(BIN / "dagster-webserver"), "-w", str(WORKSPACE),
            "-h", settings.api_host, "-p", str(settings.dagster_port),
        ]),
        # Dagster's daemon with the backfill loop at 1 s (see daemon.py): a replay starts within about a second.
        # Its code servers log errors only: it replaces its code server every minute, and the old one's "No
        # heartbeat received in 20 seconds, shutting down" is its ordinary way out, a warning a minute otherwise.
        ChildSpec("dagster-daemon", [
            sys.executable, "-m", "leadscore_pipeline.daemon", "run", "-w", str(WORKSPACE),
            "--code-server-log-level", "error",
        ]),
        *celery_worker_specs(settings),
    ]  # fmt: skip


class StackFailed(RuntimeError):
    pass


class StopRequest:
    """Set by SIGTERM or Ctrl-C, which then stop everything cleanly instead of killing `leadscore up` alone."""

    def __init__(self) -> None:
        self.requested = False

    def set(self, _signum, _frame) -> None:
        self.requested = True


def supervise(
    supervisor: Supervisor,
    watch: DatabaseWatch,
    stop: StopRequest,
    done: Callable[[], bool] = lambda: False,
    timeout: float | None = None,
    what: str = "",
) -> None:
    """Keep the children and the database alive until `done()` or a stop request; StackFailed past `timeout` s."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not stop.requested:
        supervisor.check()
        watch.check()
        if done():
            return
        if deadline is not None and time.monotonic() > deadline:
            raise StackFailed(f"{what} was not ready within {timeout:.0f} s")
        time.sleep(0.5)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def run_stack(settings: Settings) -> None:
    stop = StopRequest()
    signal.signal(signal.SIGTERM, stop.set)  # from the start: a stop while starting up still leaves nothing behind
    signal.signal(signal.SIGINT, stop.set)
    home = settings.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    print(f"LeadScore home: {home}", flush=True)
    try:
        claimed = claim_home(home)
    except HomeInUse as exc:
        sys.exit(str(exc))
    stop_previous_children(home, say=_say)
    database = prepare_database(settings)
    token = admin_token(settings)
    write_dagster_yaml(settings.dagster_home, database.url)
    create_dagster_storage(settings.dagster_home)  # before the children race to create it (dagster_home.py)
    record_views_created(settings.dagster_home)  # prepare_database's migrate() (re)created them
    if celery_worker_names(settings):
        write_celery_yaml(settings)
    settings.dropzone.mkdir(parents=True, exist_ok=True)
    env = child_environment(settings, database.url, token)
    supervisor = Supervisor(child_specs(settings), env=env, cwd=REPO_ROOT, home=home, say=_say)
    watch = DatabaseWatch(database.url, database.embedded_dir, say=_say)
    failure = None
    try:
        supervisor.start()
        api, dagster = settings.api_base_url, f"http://{settings.local_host}:{settings.dagster_port}"
        supervise(supervisor, watch, stop, lambda: answers(f"{api}/readyz"), timeout=120, what="the API")
        if settings.load_sample and not stop.requested:
            _load_sample_once(database.url)
        supervise(supervisor, watch, stop, lambda: answers(f"{dagster}/server_info"), 120, "the Dagster webserver")
        if not stop.requested:
            workers = celery_worker_names(settings)
            _print_banner(api, dagster, settings, database, home / "logs", workers)
        supervise(supervisor, watch, stop)
    except (ChildKeptDying, StackFailed) as exc:
        failure = f"leadscore up failed: {exc}"
        _say(f"{failure}; stopping everything")
    finally:
        _say("stopping...")
        supervisor.stop()
        if database.embedded_dir is not None:
            stop_embedded(database.embedded_dir)
        claimed.unlink(missing_ok=True)
        _say("stopped")
    if failure:
        sys.exit(failure)


def _say(message: str) -> None:
    print(message, flush=True)


def _load_sample_once(database_url: str) -> None:
    with engine_for(database_url).begin() as conn:
        if conn.exec_driver_sql("select exists (select 1 from raw_deliveries)").scalar_one():
            return
        result = land_csv_file(conn.connection.driver_connection, SAMPLE_BATCH, channel="csv")
    print(f"Loaded {SAMPLE_BATCH.name}: {result.accepted} rows landed, {result.rejected} rejected", flush=True)


def _print_banner(
    api: str, dagster: str, settings: Settings, database: Database, logs: Path, workers: list[str]
) -> None:
    where = f"embedded, data in {database.embedded_dir}" if database.embedded_dir else "LEADSCORE_DATABASE_URL"
    celery = f"\n  Celery        {', '.join(workers)}   (replay steps run as Celery tasks)" if workers else ""
    keys = [name for name, key in (("reads", settings.read_key), ("ingestion", settings.ingest_key)) if key]
    access = f"\n  Keys          {' and '.join(keys)} need their bearer key" if keys else ""
    print(
        f"""
LeadScore is up (Postgres: {where}).
  Dashboard     {api}/
  API docs      {api}/docs
  Leaderboard   {api}/api/leaderboard
  Status        {api}/api/pipeline/status
  Dagster UI    {dagster}   (lineage, runs, replay)
  Drop folder   {settings.dropzone}   (CSV files put here are landed)
  Admin token   {where_the_admin_token_is(settings)}{access}
  Logs          {logs}   (a child that dies is restarted){celery}
Press Ctrl-C to stop.
""",
        flush=True,
    )
