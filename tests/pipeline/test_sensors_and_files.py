"""Rules-change rescoring, scoring-settings changes, and the drop folder (sensor + landing)."""

from __future__ import annotations

import os

import dagster as dg

from leadscore_pipeline.db.engine import engine_for
from leadscore_pipeline.definitions import defs
from leadscore_pipeline.dropzone import complete_files, land_dropped_file
from leadscore_pipeline.partitions import all_buckets_tags
from leadscore_pipeline.resources import PostgresResource
from leadscore_pipeline.rules import note_scoring_settings
from leadscore_pipeline.sensors import dropzone_sensor, rules_change_sensor
from leadscore_pipeline.settings import Settings, get_settings
from tests.pipeline.helpers import event, land, scores

CSV = "event_id,event_type,lead_id,email,timestamp,metadata\nf1,PURCHASE,,ann@acme.io,2026-11-01T00:00:00Z,{}\n"


def test_rules_change_sensor_rescores_once_per_version(db, conn, instance):
    resources = {"postgres": PostgresResource(database_url=db)}
    tick = lambda: rules_change_sensor.evaluate_tick(dg.build_sensor_context(instance=instance, resources=resources))  # noqa: E731
    assert tick().run_requests == []

    land(conn, event("e1", "PURCHASE", "2026-11-01T00:00:00Z"))
    conn.execute("update rules set points = 40 where event_type = 'PURCHASE'")
    conn.execute("update pipeline_state set rules_version = rules_version + 1")
    requests = tick().run_requests  # the buckets split over LEADSCORE_PARALLEL_RUNS (2) runs
    ranges = [
        (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"]) for r in requests
    ]
    assert ranges == [("00", "07"), ("08", "15")]
    assert [r.run_key for r in requests] == ["rules-v2-b00-07", "rules-v2-b08-15"]

    job = defs.resolve_job_def("score_deliveries")
    [ann_bucket] = conn.execute("select lead_bucket from raw_deliveries").fetchone()
    for request in requests:
        assert job.execute_in_process(instance=instance, tags=request.tags).success
        # each run rescored its own buckets only
        done = {b for (b,) in conn.execute("select lead_bucket from bucket_state where rules_version = 2")}
        assert int(request.tags["dagster/asset_partition_range_end"]) in done
    assert ann_bucket in done and scores(conn) == {"ann@acme.io": 40}
    assert tick().run_requests == []  # every bucket now reflects version 2


def test_changed_scoring_settings_bump_the_rules_version(db):
    engine = engine_for(db)
    with engine.begin() as conn:
        assert note_scoring_settings(conn, Settings()) is False  # first start: recorded only
        assert note_scoring_settings(conn, Settings()) is False
        assert note_scoring_settings(conn, Settings(score_cap=500)) is True
        assert conn.exec_driver_sql("select rules_version from pipeline_state").scalar_one() == 2


def test_complete_files_waits_until_a_file_stops_changing(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("event_id\n")
    ready, seen = complete_files(tmp_path, {})
    assert ready == []
    ready, seen = complete_files(tmp_path, seen)
    assert ready == [path]
    with path.open("a") as stream:
        stream.write("more\n")
    os.utime(path, ns=(seen["a.csv"][1] + 10**9, seen["a.csv"][1] + 10**9))
    assert complete_files(tmp_path, seen)[0] == []


def test_dropped_file_lands_once_and_moves(conn, tmp_path):
    settings = get_settings()
    (tmp_path / "day1.csv").write_text(CSV)
    outcome = land_dropped_file(conn, tmp_path / "day1.csv", settings)
    assert (outcome.outcome, outcome.accepted) == ("landed", 1)
    assert (tmp_path / "processed" / "day1.csv").exists() and not (tmp_path / "day1.csv").exists()

    (tmp_path / "again.csv").write_text(CSV)  # the same content under another name
    assert land_dropped_file(conn, tmp_path / "again.csv", settings).outcome == "duplicate"
    assert (tmp_path / "processed" / "again.csv").exists()
    assert conn.execute("select count(*) from raw_deliveries").fetchone()[0] == 1
    assert conn.execute("select channel from raw_deliveries").fetchone()[0] == "file"


def test_unreadable_dropped_file_goes_to_failed_with_a_reason(conn, tmp_path):
    (tmp_path / "bad.csv").write_bytes(b"\xff\xfe\x00binary")
    outcome = land_dropped_file(conn, tmp_path / "bad.csv", get_settings())
    assert outcome.outcome == "failed"
    assert (tmp_path / "failed" / "bad.csv").exists()
    assert "UTF-8" in (tmp_path / "failed" / "bad.csv.error.txt").read_text()
    assert conn.execute("select count(*) from raw_deliveries").fetchone()[0] == 0


def test_dropzone_sensor_requests_one_run_per_file_version(db, tmp_path, monkeypatch, instance):
    monkeypatch.setenv("LEADSCORE_DROP_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        (tmp_path / "day1.csv").write_text(CSV)
        first = dropzone_sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
        assert first.run_requests == []  # seen once: maybe still being written
        second = dropzone_sensor.evaluate_tick(dg.build_sensor_context(cursor=first.cursor, instance=instance))
        [request] = second.run_requests
        assert request.run_key.startswith("drop:day1.csv:")
        assert request.run_config["ops"]["land_file"]["config"]["path"] == str(tmp_path / "day1.csv")
        job = defs.resolve_job_def("land_dropped_files")
        result = job.execute_in_process(instance=instance, run_config=request.run_config)
        assert result.success
        assert (tmp_path / "processed" / "day1.csv").exists()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_all_buckets_tags_cover_every_partition():
    tags = all_buckets_tags()
    assert (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]) == ("00", "15")
