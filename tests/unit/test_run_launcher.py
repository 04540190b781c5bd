"""Run monitoring: on in the instance config, with a launcher whose run-worker health check says a run's worker
is gone when the code server that launched it is gone or no longer runs it (a run no code server launched is
left alone)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterRun
from dagster._core.instance.config import dagster_instance_config
from dagster._core.launcher import RunLauncher, WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._grpc.client import DagsterGrpcClient
from dagster._serdes.config_class import ConfigurableClassData

from leadscore_pipeline.dagster_home import write_dagster_yaml
from leadscore_pipeline.process_groups import stop_groups
from leadscore_pipeline.run_launcher import WorkerCheckingRunLauncher
from leadscore_pipeline.sensors import BUCKETS_TAG
from leadscore_pipeline.settings import get_settings

BIN = Path(sys.executable).parent
TRIVIAL_CODE = "import dagster as dg\n\ndefs = dg.Definitions()\n"


def run_launched_at(**where) -> DagsterRun:
    return DagsterRun(job_name="score_deliveries", tags={GRPC_INFO_TAG: json.dumps({"host": "localhost", **where})})


def health(run: DagsterRun):
    return WorkerCheckingRunLauncher().check_run_worker_health(run)


@pytest.fixture
def live_code_server(tmp_path: Path):
    (tmp_path / "code.py").write_text(TRIVIAL_CODE)
    path = tmp_path / "server.sock"
    command = [str(BIN / "dagster"), "api", "grpc", "--python-file", str(tmp_path / "code.py"), "--socket", str(path)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        client, deadline = DagsterGrpcClient(socket=str(path), host="localhost"), time.monotonic() + 60
        while True:
            try:
                client.ping("up?")
                break
            except Exception:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        yield path
    finally:
        stop_groups([server.pid], timeout=30)  # the server and anything it started


def test_a_run_whose_code_server_socket_is_gone_has_a_failed_worker(tmp_path: Path):
    result = health(run_launched_at(socket=str(tmp_path / "gone.sock")))
    assert result.status == WorkerStatus.FAILED
    assert "gone" in result.msg


def test_a_run_whose_code_server_port_answers_no_more_has_a_failed_worker():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free once closed: nobody listens there
    assert health(run_launched_at(port=port)).status == WorkerStatus.FAILED


def test_a_live_code_server_that_does_not_run_the_run_means_its_worker_is_gone(live_code_server: Path):
    result = health(run_launched_at(socket=str(live_code_server)))
    assert result.status == WorkerStatus.NOT_FOUND  # run monitoring fails the run for anything but RUNNING/SUCCESS


def test_a_run_not_launched_on_a_code_server_is_left_alone():
    assert health(DagsterRun(job_name="score_deliveries")).status == WorkerStatus.RUNNING


def test_the_instance_config_turns_run_monitoring_on_with_this_launcher(tmp_path: Path):
    write_dagster_yaml(tmp_path, "postgresql://leadscore@localhost/leadscore")
    config, _ = dagster_instance_config(str(tmp_path))  # validated against Dagster's schema
    monitoring = config["run_monitoring"]
    assert monitoring["enabled"] is True and monitoring["max_resume_run_attempts"] == 0
    assert monitoring["poll_interval_seconds"] <= 30 and monitoring["start_timeout_seconds"] <= 120
    where = config["run_launcher"]
    launcher = ConfigurableClassData(where["module"], where["class"], "{}").rehydrate(RunLauncher)
    assert isinstance(launcher, WorkerCheckingRunLauncher)


def test_the_queue_caps_bucket_group_runs_at_the_setting_and_leaves_micro_batches_alone(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("LEADSCORE_PARALLEL_RUNS", "3")
    get_settings.cache_clear()
    try:
        write_dagster_yaml(tmp_path, "postgresql://leadscore@localhost/leadscore")
    finally:
        monkeypatch.delenv("LEADSCORE_PARALLEL_RUNS")
        get_settings.cache_clear()
    config, _ = dagster_instance_config(str(tmp_path))
    queue = config["run_coordinator"]
    assert queue["class"] == "QueuedRunCoordinator" and queue["config"]["dequeue_use_threads"] is True
    limits = {limit["key"]: limit["limit"] for limit in queue["config"]["tag_concurrency_limits"]}
    # A replay's runs (Dagster's backfill tag) and the sensors' bucket-group runs; a micro-batch carries neither.
    assert limits == {"dagster/backfill": 3, BUCKETS_TAG: 3}
