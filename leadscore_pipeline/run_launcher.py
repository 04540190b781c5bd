"""Dagster's default run launcher plus a run-worker health check, so that run monitoring fails a run whose
worker died with its code server (a daemon or webserver crash) instead of leaving it STARTED forever."""

from __future__ import annotations

import json

import grpc
from dagster import DagsterRun, DefaultRunLauncher
from dagster._core.errors import DagsterUserCodeUnreachableError
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._grpc.client import DagsterGrpcClient
from dagster._grpc.types import CanCancelExecutionRequest, CanCancelExecutionResult
from dagster._serdes import deserialize_value

ASK_TIMEOUT_SECONDS = 10


class WorkerCheckingRunLauncher(DefaultRunLauncher):
    """Launches runs on the code servers, as the default launcher does, and can tell when a run's worker is gone.

    A run worker is a subprocess of the code server that launched it, and that server keeps it in its table
    of executions until it exits (and then fails the run itself if the worker crashed). So a server that is
    gone, or that no longer knows the run, means the worker is gone with nobody left to report the run.
    """

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        grpc_info = run.tags.get(GRPC_INFO_TAG)
        if grpc_info is None:
            # Executed in-process (not through a code server): there is no worker for us to look at.
            return CheckRunHealthResult(WorkerStatus.RUNNING, "not launched on a code server; not checked")
        info = json.loads(grpc_info)
        client = DagsterGrpcClient(
            host=info["host"], port=info.get("port"), socket=info.get("socket"), use_ssl=bool(info.get("use_ssl"))
        )
        where = f"{info['host']}:{info.get('port') or info.get('socket')}"
        try:
            answer = client.can_cancel_execution(
                CanCancelExecutionRequest(run_id=run.run_id), timeout=ASK_TIMEOUT_SECONDS
            )
        except DagsterUserCodeUnreachableError as exc:
            if _nobody_listening(exc):
                return CheckRunHealthResult(WorkerStatus.FAILED, f"the code server that launched it ({where}) is gone")
            # A slow answer is no proof of death: look again at the next monitoring tick.
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"could not ask {where}: {exc}", transient=True)
        if deserialize_value(answer, CanCancelExecutionResult).can_cancel:
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(WorkerStatus.NOT_FOUND, f"the code server at {where} does not run it (restarted?)")


def _nobody_listening(exc: DagsterUserCodeUnreachableError) -> bool:
    cause = exc.__cause__
    return isinstance(cause, grpc.RpcError) and cause.code() == grpc.StatusCode.UNAVAILABLE
