"""The Dagster layer: definitions load, a micro-batch run scores, the sensor requests ranges with run keys."""

from __future__ import annotations

import dagster as dg

from leadscore_pipeline.definitions import defs
from leadscore_pipeline.partitions import MICROBATCH, MODE_TAG, THROUGH_SEQ_TAG, all_buckets_tags
from leadscore_pipeline.resources import PostgresResource
from leadscore_pipeline.sensors import new_deliveries_sensor
from tests.pipeline.helpers import event, land, scores


def test_definitions_hold_one_lineage_with_jobs_sensor_and_schedule():
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {"raw_deliveries", "clean_events", "lead_scores", "score_history", "current_scores", "leaderboard"} <= keys

    def parents(key: str) -> set[str]:
        return {parent.to_user_string() for parent in graph.get(dg.AssetKey(key)).parent_keys}

    # The leaderboard reads the one serving table; the analytics marts read aggregates its writers keep.
    assert parents("leaderboard") == {"current_scores"}
    assert parents("company_totals") == {"current_scores"}
    assert parents("event_type_totals") == {"lead_event_stats"}
    assert defs.resolve_job_def("score_deliveries").partitions_def is not None
    assert defs.resolve_sensor_def("new_deliveries_sensor")
    assert defs.resolve_schedule_def("daily_decay_schedule").cron_schedule == "5 0 * * *"


def test_microbatch_run_scores_without_the_asset_checks(conn, instance):
    land(conn, event("e1", "DEMO_REQUEST", "2026-11-01T10:00:00Z"), event("e2", "PURCHASE", "2026-11-02T10:00:00Z"))
    result = defs.resolve_job_def("score_deliveries").execute_in_process(
        instance=instance, tags={**all_buckets_tags(), MODE_TAG: MICROBATCH, THROUGH_SEQ_TAG: "2"}
    )
    assert result.success
    assert scores(conn) == {"ann@acme.io": 150}
    # The checks read whole buckets of the stored tables: they run from the UI, not in every micro-batch.
    assert result.get_asset_check_evaluations() == []
    checks = {key.to_user_string() for key in defs.resolve_asset_graph().asset_check_keys}
    assert {"clean_events:unique_event_ids", "score_history:history_sums_to_score"} <= checks


def test_full_run_rebuilds_every_bucket(conn, instance):
    for i in range(20):
        land(conn, event(f"e{i}", "PURCHASE", "2026-11-01T10:00:00Z", email=f"lead{i}@y.io"))
    job = defs.resolve_job_def("score_deliveries")
    assert job.execute_in_process(instance=instance, tags={**all_buckets_tags(), MODE_TAG: MICROBATCH}).success
    conn.execute("update rules set points = 7 where event_type = 'PURCHASE'")
    conn.commit()
    assert job.execute_in_process(instance=instance, tags=all_buckets_tags()).success
    assert set(scores(conn).values()) == {7}
    assert conn.execute("select count(*) from current_scores where score = 7").fetchone()[0] == 20


def test_sensor_requests_each_new_range_once(db, conn, instance):
    resources = {"postgres": PostgresResource(database_url=db)}
    land(conn, event("e1", "PAGE_VIEW", "2026-11-01T10:00:00Z"), event("e2", "PAGE_VIEW", "2026-11-01T11:00:00Z"))

    context = dg.build_sensor_context(cursor=None, instance=instance, resources=resources)
    first = new_deliveries_sensor.evaluate_tick(context)
    assert [r.run_key for r in first.run_requests] == ["deliveries-1-2"]
    assert first.run_requests[0].tags[THROUGH_SEQ_TAG] == "2"
    assert first.run_requests[0].tags[MODE_TAG] == MICROBATCH
    assert first.cursor == "2"

    job = defs.resolve_job_def("score_deliveries")
    assert job.execute_in_process(instance=instance, tags=first.run_requests[0].tags).success
    idle = new_deliveries_sensor.evaluate_tick(
        dg.build_sensor_context(cursor="2", instance=instance, resources=resources)
    )
    assert idle.run_requests == [] and idle.skip_message.startswith("nothing to do")

    land(conn, event("e3", "PAGE_VIEW", "2026-11-01T12:00:00Z"))
    nxt = new_deliveries_sensor.evaluate_tick(
        dg.build_sensor_context(cursor="2", instance=instance, resources=resources)
    )
    assert [r.run_key for r in nxt.run_requests] == ["deliveries-3-3"]
    assert nxt.cursor == "3"


def test_sensor_waits_for_a_landing_in_flight_without_queueing_others(db, conn, instance):
    import psycopg

    from leadscore_pipeline.db.urls import libpq_url
    from leadscore_pipeline.ingest.accept import accept_events
    from leadscore_pipeline.ingest.land import landed_through
    from leadscore_pipeline.settings import get_settings

    with psycopg.connect(libpq_url(db)) as uploading:  # not autocommit: its landing stays uncommitted
        accept_events(
            uploading, [event("big", "PAGE_VIEW", "2026-11-01T10:00:00Z")], channel="csv", settings=get_settings()
        )
        assert landed_through(conn, patience=0.2) is None
        resources = {"postgres": PostgresResource(database_url=db)}
        tick = new_deliveries_sensor.evaluate_tick(dg.build_sensor_context(instance=instance, resources=resources))
        assert tick.run_requests == [] and "still committing" in tick.skip_message
        land(conn, event("small", "PAGE_VIEW", "2026-11-01T11:00:00Z"))  # other landings are not held up
        uploading.commit()
    assert landed_through(conn, patience=0.2) == 2
