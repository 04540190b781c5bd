"""Work whose run failed for good is requested again by the sensors, under a new run key, after a backoff that
doubles: lag returns to 0 without a hand even when nothing new lands. The clock is set, never slept on."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from leadscore_pipeline import clock
from leadscore_pipeline.definitions import defs
from leadscore_pipeline.resources import PostgresResource
from leadscore_pipeline.sensors import WILL_RETRY_TAG, new_deliveries_sensor, rules_change_sensor
from tests.pipeline.helpers import event, land, scores

# Where a run fails at once, as one does whose database went away or whose worker was killed.
UNREACHABLE = {"postgres": PostgresResource(database_url="postgresql://postgres@127.0.0.1:1/unreachable")}
AUTO_RETRY_RUN_ID_TAG = "dagster/auto_retry_run_id"  # set by Dagster on a failed run once its retry is launched


def run(instance: dg.DagsterInstance, request: dg.RunRequest, resources: dict | None = None) -> dg.RunRecord:
    result = defs.resolve_job_def("score_deliveries").execute_in_process(
        instance=instance, tags=request.tags, resources=resources, raise_on_error=False
    )
    return instance.get_run_records(dg.RunsFilter(run_ids=[result.run_id]))[0]


def clock_at(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    monkeypatch.setattr(clock, "utc_now", lambda: datetime.fromtimestamp(seconds, UTC))


def test_a_failed_microbatch_is_requested_again_after_a_backoff_that_doubles(conn, instance, tick, monkeypatch):
    land(conn, event("e1", "DEMO_REQUEST", "2026-11-01T10:00:00Z"), event("e2", "PURCHASE", "2026-11-02T10:00:00Z"))
    [request] = tick(new_deliveries_sensor).run_requests
    assert request.run_key == "deliveries-1-2"

    first = run(instance, request, UNREACHABLE)
    assert first.dagster_run.status == dg.DagsterRunStatus.FAILURE
    clock_at(monkeypatch, first.end_time + 9)
    waiting = tick(new_deliveries_sensor)
    assert waiting.run_requests == [] and "failed 1 time(s)" in waiting.skip_message
    assert "again in 1 s" in waiting.skip_message

    clock_at(monkeypatch, first.end_time + 10)
    [again] = tick(new_deliveries_sensor).run_requests  # nothing new landed meanwhile
    assert again.run_key == f"deliveries-1-2-retry-{first.dagster_run.run_id[:8]}"

    second = run(instance, again, UNREACHABLE)
    clock_at(monkeypatch, second.end_time + 19)
    assert tick(new_deliveries_sensor).run_requests == []
    clock_at(monkeypatch, second.end_time + 20)
    [third] = tick(new_deliveries_sensor).run_requests
    assert third.run_key == f"deliveries-1-2-retry-{second.dagster_run.run_id[:8]}"

    assert run(instance, third).dagster_run.status == dg.DagsterRunStatus.SUCCESS
    assert scores(conn) == {"ann@acme.io": 150}
    assert tick(new_deliveries_sensor).skip_message.startswith("nothing to do")


def test_a_run_that_dagster_retries_is_waited_for_and_counted_once(conn, instance, tick, monkeypatch):
    land(conn, event("e1", "DEMO_REQUEST", "2026-11-01T10:00:00Z"))
    [request] = tick(new_deliveries_sensor).run_requests
    parent = run(instance, request, UNREACHABLE)
    instance.add_run_tags(parent.dagster_run.run_id, {WILL_RETRY_TAG: "true"})
    clock_at(monkeypatch, parent.end_time + 3600)
    waiting = tick(new_deliveries_sensor)
    assert waiting.run_requests == [] and "in flight" in waiting.skip_message

    retry = run(instance, request, UNREACHABLE)  # Dagster's retry: a new run with the same tags, failing again
    instance.add_run_tags(parent.dagster_run.run_id, {AUTO_RETRY_RUN_ID_TAG: retry.dagster_run.run_id})
    clock_at(monkeypatch, retry.end_time + 9)
    assert "failed 1 time(s)" in tick(new_deliveries_sensor).skip_message  # the chain counts once
    clock_at(monkeypatch, retry.end_time + 10)
    [again] = tick(new_deliveries_sensor).run_requests
    assert again.run_key == f"deliveries-1-1-retry-{retry.dagster_run.run_id[:8]}"


def test_new_deliveries_wait_while_a_microbatch_is_in_flight(conn, instance, tick):
    land(conn, event("e1", "DEMO_REQUEST", "2026-11-01T10:00:00Z"))
    [request] = tick(new_deliveries_sensor).run_requests
    job = defs.resolve_job_def("score_deliveries")
    instance.create_run_for_job(job_def=job, tags=request.tags, status=dg.DagsterRunStatus.STARTED)
    land(conn, event("e2", "PURCHASE", "2026-11-02T10:00:00Z"))
    waiting = tick(new_deliveries_sensor)
    assert waiting.run_requests == [] and "1 micro-batch run(s) in flight" in waiting.skip_message


def test_a_failed_rules_rescore_is_requested_again_after_a_backoff(conn, instance, tick, monkeypatch):
    land(conn, event("e1", "PURCHASE", "2026-11-01T00:00:00Z"))
    conn.execute("update rules set points = 40 where event_type = 'PURCHASE'")
    conn.execute("update pipeline_state set rules_version = rules_version + 1")
    requests = tick(rules_change_sensor).run_requests
    assert [r.run_key for r in requests] == ["rules-v2-b00-07", "rules-v2-b08-15"]

    # One group's run fails; the other succeeds and is not asked for again.
    failed = run(instance, requests[1], UNREACHABLE)
    assert run(instance, requests[0]).dagster_run.status == dg.DagsterRunStatus.SUCCESS
    clock_at(monkeypatch, failed.end_time + 9)
    waiting = tick(rules_change_sensor)
    assert waiting.run_requests == [] and "buckets 08-15: the rescore for rules version 2 failed 1 time(s)" in (
        waiting.skip_message
    )
    clock_at(monkeypatch, failed.end_time + 10)
    [again] = tick(rules_change_sensor).run_requests
    assert again.run_key == f"rules-v2-b08-15-retry-{failed.dagster_run.run_id[:8]}"

    assert run(instance, again).dagster_run.status == dg.DagsterRunStatus.SUCCESS
    assert scores(conn) == {"ann@acme.io": 40}
    assert tick(rules_change_sensor).run_requests == []
