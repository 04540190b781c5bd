"""The bulk path: a backlog past LEADSCORE_BULK_THRESHOLD is caught up a bucket group per run, through Dagster,
and micro-batches go on from its fence once every group is done, a failed group requested again on its own."""

from __future__ import annotations

import dagster as dg
import pytest

from leadscore_pipeline.partitions import CATCH_UP, MODE_TAG, THROUGH_SEQ_TAG
from leadscore_pipeline.refresh import microbatched_through
from leadscore_pipeline.sensors import new_deliveries_sensor
from tests.pipeline.helpers import assert_serving_tables_exact, event, land, scores
from tests.pipeline.test_refresh import replay
from tests.pipeline.test_sensor_retries import UNREACHABLE, clock_at, run
from tests.settings_env import settings_env


@pytest.fixture
def threshold_of_three():
    with settings_env(LEADSCORE_BULK_THRESHOLD="3"):
        yield


def test_a_backlog_past_the_threshold_is_caught_up_a_bucket_group_per_run(
    conn, instance, tick, monkeypatch, threshold_of_three
):
    land(
        conn,
        *(event(f"e{n}", "DEMO_REQUEST", f"2026-11-0{1 + n}T10:00:00Z", email=f"lead{n}@acme.io") for n in range(5)),
        event("e0", "DEMO_REQUEST", "2026-11-01T10:00:00Z", email="lead0@acme.io"),  # a redelivery
    )
    requests = tick(new_deliveries_sensor).run_requests
    # The buckets split over the runs that may go side by side (LEADSCORE_PARALLEL_RUNS, 2).
    assert [r.run_key for r in requests] == ["catch-up-6-b00-07", "catch-up-6-b08-15"]
    assert {(r.tags[MODE_TAG], r.tags[THROUGH_SEQ_TAG]) for r in requests} == {(CATCH_UP, "6")}
    assert conn.execute("select bulk_through from pipeline_state").fetchone()[0] == 6

    assert run(instance, requests[0]).dagster_run.status == dg.DagsterRunStatus.SUCCESS
    failed = run(instance, requests[1], UNREACHABLE)
    assert microbatched_through(conn) == 0  # a group is missing: no step has moved on
    land(conn, event("e9", "PURCHASE", "2026-11-09T10:00:00Z", email="lead0@acme.io"))
    clock_at(monkeypatch, failed.end_time + 9)
    waiting = tick(new_deliveries_sensor)
    assert waiting.run_requests == [] and "buckets 08-15: the catch-up through 6 failed 1 time(s)" in (
        waiting.skip_message
    )
    clock_at(monkeypatch, failed.end_time + 10)
    [again] = tick(new_deliveries_sensor).run_requests  # only the failed group, not the ones done
    assert again.run_key == f"catch-up-6-b08-15-retry-{failed.dagster_run.run_id[:8]}"
    assert run(instance, again).dagster_run.status == dg.DagsterRunStatus.SUCCESS
    assert microbatched_through(conn) == 6

    [microbatch] = tick(new_deliveries_sensor).run_requests  # what landed during the catch-up
    assert microbatch.run_key == "deliveries-7-7"
    assert run(instance, microbatch).dagster_run.status == dg.DagsterRunStatus.SUCCESS
    assert tick(new_deliveries_sensor).skip_message.startswith("nothing to do")

    caught_up = scores(conn)
    assert caught_up == {"lead0@acme.io": 150, **{f"lead{n}@acme.io": 50 for n in range(1, 5)}}
    assert conn.execute("select duplicates from clean_events where event_id = 'e0'").fetchone()[0] == 1
    assert_serving_tables_exact(conn)
    replay(conn)
    assert scores(conn) == caught_up
