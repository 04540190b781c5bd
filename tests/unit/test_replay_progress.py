"""A replay's state and progress from the Dagster webserver's GraphQL answers (through a fake transport, no
network): buckets are counted once each, from the successful runs of the backfill whatever ranges they cover,
and the queries are valid against the installed Dagster's schema."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import httpx
import pytest

from leadscore_pipeline import replay
from leadscore_pipeline.replay import ReplayError, ReplayNotFound, ReplayProgress, replay_progress

DAGSTER = "http://dagster.test"
BUCKETS = [f"{bucket:02d}" for bucket in range(16)]


def run(status: str, **tags: str) -> dict:
    tags = {"dagster/backfill": "abcdefgh", "leadscore/trigger": "api", **tags}
    return {"status": status, "tags": [{"key": key, "value": value} for key, value in tags.items()]}


def range_run(status: str, start: str, end: str) -> dict:
    return run(status, **{"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end})


def partition_run(status: str, bucket: str) -> dict:
    return run(status, **{"dagster/partition": bucket})


def backfill(status: str, runs: list[dict], partition_names: list[str] = BUCKETS) -> dict:
    answer = {"__typename": "PartitionBackfill", "id": "abcdefgh", "status": status}
    return {"data": {"partitionBackfillOrError": answer | {"partitionNames": partition_names, "runs": runs}}}


@dataclass
class FakeDagster:
    body: dict = field(default_factory=dict)  # the answer to every request
    requests: list[dict] = field(default_factory=list)


@pytest.fixture
def dagster(monkeypatch: pytest.MonkeyPatch):
    fake = FakeDagster()

    def handler(request: httpx.Request) -> httpx.Response:
        fake.requests.append(json.loads(request.content))
        return httpx.Response(200, json=fake.body)

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        monkeypatch.setattr(replay.httpx, "post", lambda url, **kwargs: client.post(url, **kwargs))
        yield fake


def test_launched_but_no_run_yet_is_queued_with_nothing_done(dagster):
    dagster.body = backfill("REQUESTED", [])
    assert replay_progress(DAGSTER, "abcdefgh") == ReplayProgress("queued", 0, 16)
    [request] = dagster.requests
    assert request["variables"] == {"id": "abcdefgh"}


def test_only_buckets_of_successful_runs_are_done(dagster):
    runs = [
        range_run("STARTED", "12", "15"),
        range_run("FAILURE", "08", "11"),
        range_run("QUEUED", "04", "07"),
        range_run("SUCCESS", "00", "03"),
    ]
    dagster.body = backfill("REQUESTED", runs)
    assert replay_progress(DAGSTER, "abcdefgh") == ReplayProgress("running", 4, 16)


def test_a_bucket_run_again_after_a_failure_counts_once(dagster):
    runs = [
        range_run("SUCCESS", "04", "07"),  # the retry
        range_run("FAILURE", "04", "07"),
        range_run("SUCCESS", "00", "07"),
    ]
    dagster.body = backfill("REQUESTED", runs)
    assert replay_progress(DAGSTER, "abcdefgh") == ReplayProgress("running", 8, 16)


def test_ranges_of_any_length_and_single_partition_runs(dagster):
    runs = [range_run("SUCCESS", "00", "09"), range_run("SUCCESS", "10", "10"), partition_run("SUCCESS", "15")]
    dagster.body = backfill("REQUESTED", [*runs, partition_run("STARTED", "11")])
    assert replay_progress(DAGSTER, "abcdefgh") == ReplayProgress("running", 12, 16)


def test_only_targeted_buckets_count(dagster):
    dagster.body = backfill("REQUESTED", [range_run("SUCCESS", "00", "15")], partition_names=["03", "04", "09"])
    assert replay_progress(DAGSTER, "abcdefgh") == ReplayProgress("running", 3, 3)


def test_a_finished_replay_reports_its_end_state(dagster):
    runs = [range_run("SUCCESS", f"{first:02d}", f"{first + 3:02d}") for first in range(0, 16, 4)]
    dagster.body = backfill("COMPLETED_SUCCESS", runs)
    assert replay_progress(DAGSTER, "abcdefgh") == ReplayProgress("succeeded", 16, 16)
    dagster.body = backfill("COMPLETED_FAILED", [*runs[:3], range_run("FAILURE", "12", "15")])
    assert replay_progress(DAGSTER, "abcdefgh") == ReplayProgress("failed", 12, 16)


def test_no_such_backfill_is_not_found(dagster):
    dagster.body = {
        "data": {"partitionBackfillOrError": {"__typename": "BackfillNotFoundError", "message": "Backfill nope"}}
    }
    with pytest.raises(ReplayNotFound, match="Backfill nope"):
        replay_progress(DAGSTER, "nope")


def test_graphql_errors_are_replay_errors(dagster):
    dagster.body = {"data": None, "errors": [{"message": "Cannot query field"}]}
    with pytest.raises(ReplayError, match="Cannot query field"):
        replay_progress(DAGSTER, "abcdefgh")


def test_the_queries_are_valid_for_the_installed_dagster():
    from dagster_graphql.schema import create_schema
    from graphql import parse, validate

    schema = create_schema().graphql_schema
    for query in (replay._LAUNCH, replay._STATE):
        assert validate(schema, parse(query)) == []
