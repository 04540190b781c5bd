"""`leadscore up` itself, run as a process: a child that dies comes back, a run orphaned by a daemon crash ends
and the pipeline goes on, SIGTERM leaves no process behind, a child that keeps dying makes it exit non-zero,
and a killed embedded PostgreSQL is started again. Processes are killed by pid, never by name."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from leadscore_pipeline.db.embedded import drop_database, embedded_running, ensure_database, stop_embedded
from leadscore_pipeline.db.locks import DEDUP_LOCK
from leadscore_pipeline.db.urls import libpq_url
from leadscore_pipeline.partitions import MICROBATCH, MODE_TAG
from leadscore_pipeline.process_groups import live_members
from leadscore_pipeline.supervisor import run_dir, stop_previous_children
from tests.polling import free_port, wait_for

BIN = Path(sys.executable).parent
CHILDREN = ("api", "dagster-webserver", "dagster-daemon")
FINISHED = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
IN_FLIGHT = [status for status in DagsterRunStatus if status not in FINISHED]


@dataclass
class Up:
    """One `leadscore up` process and the ways to look at it."""

    process: subprocess.Popen
    home: Path
    output: Path
    output_from: int  # where this start's output begins in the file (a later start on the same home appends)
    api_port: int
    dagster_port: int
    database_url: str | None

    @property
    def api(self) -> httpx.Client:
        return httpx.Client(base_url=f"http://127.0.0.1:{self.api_port}", timeout=10)

    def said(self) -> str:
        return self.output.read_bytes()[self.output_from :].decode()

    def child_pid(self, name: str) -> int | None:
        """The pid (and process group) `leadscore up` recorded for a child."""
        with contextlib.suppress(OSError, ValueError):
            return int((run_dir(self.home) / f"{name}.pid").read_text())
        return None

    def is_up(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"leadscore up exited with {self.process.returncode}:\n{self.said()[-3000:]}")
        return "Press Ctrl-C to stop." in self.said()

    def answers(self, path: str) -> bool:
        with self.api as client:
            return client.get(path).status_code == 200

    def processes(self) -> list[psutil.Process]:
        """Every process of the stack: the descendants of `leadscore up` and the members of its children's groups."""
        found = {process.pid: process for process in psutil.Process(self.process.pid).children(recursive=True)}
        groups = [pid for name in CHILDREN if (pid := self.child_pid(name)) is not None]
        found.update({process.pid: process for process in live_members(groups)})
        return list(found.values())


def start_up(home: Path, database_url: str | None, api_port: int | None = None, dagster_port: int | None = None) -> Up:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("LEADSCORE_", "DAGSTER_"))}
    api_port, dagster_port = api_port or free_port(), dagster_port or free_port()
    env |= {
        "LEADSCORE_HOME": str(home),
        "LEADSCORE_API_PORT": str(api_port),
        "LEADSCORE_DAGSTER_PORT": str(dagster_port),
        "LEADSCORE_LOAD_SAMPLE": "0",
    }
    if database_url is not None:
        env["LEADSCORE_DATABASE_URL"] = database_url
    output = home.parent / "up.out"
    with output.open("ab") as out:
        output_from = out.tell()
        process = subprocess.Popen([str(BIN / "leadscore"), "up"], env=env, stdout=out, stderr=subprocess.STDOUT)
    return Up(process, home, output, output_from, api_port, dagster_port, database_url)


def stop_up(up: Up) -> int:
    """SIGTERM, as Ctrl-C or a service manager would; then make sure nothing it started is left."""
    if up.process.poll() is None:
        up.process.send_signal(signal.SIGTERM)
        try:
            up.process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            up.process.kill()
            up.process.wait()
    stop_previous_children(up.home)  # a no-op after a clean stop, which removes the pid files
    return up.process.returncode


def report(up: Up) -> None:
    print(f"--- leadscore up (tail) ---\n{up.said()[-3000:]}")
    for log in sorted((up.home / "logs").glob("*.log")):
        print(f"--- {log.name} (tail) ---\n{log.read_text(errors='replace')[-2000:]}")


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@pytest.fixture
def folder() -> Iterator[Path]:
    # Not pytest's numbered folders: another pytest session on the machine may prune those under us.
    path = Path(tempfile.mkdtemp(prefix="leadscore-supervision-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    name = f"leadscore_supervision_{os.getpid()}_{secrets.token_hex(3)}"
    url = ensure_database(server_url, name)
    try:
        yield url
    finally:
        drop_database(server_url, name)


@pytest.fixture(scope="module")
def up(postgres_server_url: str) -> Iterator[Up]:
    """A stack on a database of its own on the test server; the tests below use it in file order."""
    path = Path(tempfile.mkdtemp(prefix="leadscore-supervision-"))
    with fresh_database(postgres_server_url) as url:
        stack = start_up(path / "home", url)
        try:
            wait_for(stack.is_up, "leadscore up to be up", timeout=180)
            yield stack
        finally:
            stop_up(stack)
            report(stack)
    shutil.rmtree(path, ignore_errors=True)


def test_a_killed_api_comes_back_and_events_posted_after_are_scored(up: Up):
    killed = up.child_pid("api")
    os.kill(killed, signal.SIGKILL)

    wait_for(lambda: up.child_pid("api") not in (None, killed) and up.answers("/readyz"), "the API back", 60)
    assert "api exited with code -9" in up.said()
    with up.api as api:
        assert api.post("/api/events", json={"event_type": "DEMO_REQUEST", "email": "back@acme.io"}).status_code == 202
        wait_for(lambda: api.get("/api/leads/back@acme.io").status_code == 200, "the event to be scored", 120)


def microbatches(instance: DagsterInstance, statuses: list[DagsterRunStatus]) -> list:
    return instance.get_runs(RunsFilter(statuses=statuses, tags={MODE_TAG: MICROBATCH}))


def test_a_run_orphaned_by_a_daemon_crash_ends_and_the_pipeline_goes_on(up: Up):
    instance = DagsterInstance.from_config(str(up.home / "dagster"))
    daemon_log = up.home / "logs" / "dagster-daemon.log"
    try:
        wait_for(lambda: not microbatches(instance, IN_FLIGHT), "earlier micro-batches to finish", 120)
        with psycopg.connect(libpq_url(up.database_url), autocommit=True) as holder:
            holder.execute("select pg_advisory_lock(%s)", (DEDUP_LOCK,))  # the micro-batch waits for it: mid-run
            with up.api as api:
                assert (
                    api.post("/api/events", json={"event_type": "PURCHASE", "email": "orphan@acme.io"}).status_code
                    == 202
                )
            [run] = wait_for(
                lambda: microbatches(instance, [DagsterRunStatus.STARTED]), "its micro-batch to start", 120
            )
            looked = daemon_log.read_text().count(f"Checking run {run.run_id}")
            wait_for(lambda: daemon_log.read_text().count(f"Checking run {run.run_id}") > looked, "monitoring", 60)
            assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTED  # a live worker is no orphan

            # The daemon dies with its code server and the run worker (as kill -9 of the group or the OOM killer
            # would do it): nobody is left to report the run.
            daemon = up.child_pid("dagster-daemon")
            os.killpg(daemon, signal.SIGKILL)

        wait_for(lambda: up.child_pid("dagster-daemon") not in (None, daemon), "the daemon to be restarted", 60)
        wait_for(lambda: instance.get_run_by_id(run.run_id).status in FINISHED, "the orphaned run to end", 120)
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE

        with up.api as api:
            wait_for(lambda: api.get("/api/pipeline/status").json()["lag"] == 0, "the lag to return to 0", 180)
            assert api.get("/api/leads/orphan@acme.io").status_code == 200
    finally:
        instance.dispose()


def test_sigterm_stops_everything_and_leaves_no_process_behind(up: Up):
    processes = up.processes()
    commands = [" ".join(process.cmdline()) for process in processes if alive(process)]
    assert sum("dagster api grpc" in command for command in commands) >= 2, commands  # code servers of both

    up.process.send_signal(signal.SIGTERM)
    assert up.process.wait(timeout=90) == 0
    assert [process for process in processes if alive(process)] == []
    assert list(run_dir(up.home).glob("*.pid")) == []


def test_a_child_that_keeps_dying_makes_up_stop_everything_and_exit_non_zero(postgres_server_url: str, folder: Path):
    home = folder / "home"
    with fresh_database(postgres_server_url) as url, socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()  # the API's port is taken: it can never start
        stack = start_up(home, url, api_port=taken.getsockname()[1])
        groups: set[int] = set()

        def exited() -> bool:
            groups.update(pid for name in CHILDREN if (pid := stack.child_pid(name)) is not None)
            return stack.process.poll() is not None

        try:
            wait_for(exited, "leadscore up to give up", timeout=150)
        finally:
            stop_up(stack)
            report(stack)

    assert stack.process.returncode != 0
    said = stack.said()
    assert "api died 5 times within 300 s, giving up" in said and str(home / "logs" / "api.log") in said
    assert "address already in use" in (home / "logs" / "api.log").read_text().lower()
    assert live_members(groups) == []


def postmaster_pid(data_dir: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int((data_dir / "postmaster.pid").read_text().split()[0])
    return None


def test_a_killed_embedded_postgres_is_restarted_and_a_killed_up_is_cleaned_up_after(folder: Path):
    home, stacks = folder / "home", []
    try:
        first = start_up(home, None)
        stacks.append(first)
        wait_for(first.is_up, "leadscore up (embedded PostgreSQL) to be up", timeout=180)
        killed = postmaster_pid(home / "pgdata")
        os.kill(killed, signal.SIGKILL)

        def back() -> bool:
            return postmaster_pid(home / "pgdata") not in (None, killed) and first.answers("/readyz")

        wait_for(back, "PostgreSQL to be started again and the API ready", timeout=180)
        # The API may reconnect a moment before the supervisor, back from the restart, says so.
        wait_for(
            lambda: "the embedded PostgreSQL is running again" in first.said(), "the supervisor to say so", timeout=30
        )

        # `leadscore up` killed with no chance to stop its children: the next start stops them first.
        left = first.processes()
        first.process.kill()
        first.process.wait()
        second = start_up(home, None, first.api_port, first.dagster_port)
        stacks.append(second)
        wait_for(second.is_up, "a second leadscore up on the same home and ports", timeout=180)
        assert [process for process in left if alive(process)] == []
        assert "left running by a previous start" in second.said()
        assert second.answers("/readyz")

        assert stop_up(second) == 0
        assert not embedded_running(home / "pgdata")
    finally:
        for stack in reversed(stacks):  # the later start owns the pid files now
            stop_up(stack)
        stop_embedded(home / "pgdata")  # still running if the second start never came up
        if stacks:
            report(stacks[-1])
