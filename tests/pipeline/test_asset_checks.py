"""The asset checks read the stored tables: each passes on what the pipeline wrote and fails when that table is
corrupted on purpose (a duplicated event, a wrong score, a missing lead, a wrong tier, a drifted total)."""

from __future__ import annotations

import dagster as dg
import pytest

from leadscore_pipeline.assets.checks import stored_table_checks
from leadscore_pipeline.buckets import ALL_BUCKETS
from leadscore_pipeline.db.views import load_sql_models
from leadscore_pipeline.definitions import defs
from leadscore_pipeline.microbatch import run_all_steps
from leadscore_pipeline.partitions import bucket_range_tags
from leadscore_pipeline.refresh import Scope
from leadscore_pipeline.resources import PostgresResource
from leadscore_pipeline.sql_models import record_views_created
from tests.pipeline.helpers import event, land

BUCKET_CHECKS = {
    "unique_event_ids",
    "every_lead_scored",
    "scores_within_bounds",
    "history_sums_to_score",
    "current_scores_agree",
}
RECOUNTS = {"serving_totals", "company_totals", "event_type_totals"}


def run_checks(db: str, instance: dg.DagsterInstance) -> set[str]:
    """Runs every check as a user does from the UI (the bucket checks over all buckets); returns the failed ones."""
    test_defs = dg.Definitions(
        assets=list(defs.assets),
        asset_checks=stored_table_checks,
        jobs=[
            dg.define_asset_job("bucket_checks", dg.AssetSelection.checks(*_keys(BUCKET_CHECKS))),
            dg.define_asset_job("recount_checks", dg.AssetSelection.checks(*_keys(RECOUNTS))),
        ],
        resources={"postgres": PostgresResource(database_url=db)},
    )
    evaluations = [
        *test_defs.resolve_job_def("bucket_checks")
        .execute_in_process(instance=instance, tags=bucket_range_tags(ALL_BUCKETS))
        .get_asset_check_evaluations(),
        *test_defs.resolve_job_def("recount_checks")
        .execute_in_process(instance=instance)
        .get_asset_check_evaluations(),
    ]
    names = {e.check_name if e.check_name != "equals_recount" else e.asset_key.to_user_string() for e in evaluations}
    assert names == BUCKET_CHECKS | RECOUNTS  # every check ran
    return {
        e.check_name if e.check_name != "equals_recount" else e.asset_key.to_user_string()
        for e in evaluations
        if not e.passed
    }


def _keys(names: set[str]) -> list[dg.AssetCheckKey]:
    keys = [spec.key for checks in stored_table_checks for spec in checks.check_specs]
    return [key for key in keys if key.name in names or key.asset_key.to_user_string() in names]


@pytest.fixture
def scored(conn):
    land(
        conn,
        event("e1", "PURCHASE", "2026-11-20T10:00:00Z", metadata={"company": "Acme"}),
        event("e2", "DEMO_REQUEST", "2026-11-21T10:00:00Z"),
        event("e3", "PAGE_VIEW", "2026-11-21T10:00:00Z", email="bob@globex.com", metadata={"company": "Globex"}),
    )
    land(conn, event("e1", "PURCHASE", "2026-11-20T10:00:00Z", metadata={"company": "Acme"}))  # a duplicate
    run_all_steps(conn, Scope(incremental=True))
    return conn


def test_every_check_passes_on_what_the_pipeline_wrote(db, scored, instance):
    assert run_checks(db, instance) == set()


CORRUPTIONS = {
    # The same event id in a second bucket's partition: the primary key (event_id, lead_bucket) lets it in.
    "unique_event_ids": """insert into clean_events (event_id, seq, lead_key, lead_bucket, event_type, event_time, source)
        select event_id, seq, lead_key, (lead_bucket + 1) %% 16, event_type, event_time, source
        from clean_events where event_id = 'e1'""",
    "every_lead_scored": "delete from lead_scores where lead_key = 'bob@globex.com'",
    "history_sums_to_score": "update lead_scores set score_at_last_event = 151 where lead_key = 'ann@acme.io'",
    "scores_within_bounds": """update score_history set score_after = 5000, change = change + 4850
        where event_id = 'e2'; update lead_scores set score_at_last_event = 5000 where lead_key = 'ann@acme.io'""",
    "current_scores_agree": "update current_scores set tier = 'qualified' where lead_key = 'bob@globex.com'",
    # Written around the triggers, as a bug in them would.
    "company_totals": "update company_totals set total_score = total_score + 1 where company = 'Acme'",
    "serving_totals": "update serving_counts set events = events + 1",
    "event_type_totals": "update event_type_totals set points = points + 5 where event_type = 'PURCHASE'",
}


@pytest.mark.parametrize("check", sorted(CORRUPTIONS))
def test_a_check_fails_when_its_table_is_corrupted(db, scored, instance, check):
    scored.execute(CORRUPTIONS[check].replace("%%", "%"))
    # The copied event's lead has no score in the bucket it was copied to either.
    also = {"every_lead_scored"} if check == "unique_event_ids" else set()
    assert run_checks(db, instance) == {check} | also


def test_the_sql_marts_are_materialized_when_their_views_are_created(instance):
    marts = [model.name for model in load_sql_models()]
    assert "leaderboard" in marts
    assert all(instance.get_latest_materialization_event(dg.AssetKey(name)) is None for name in marts)
    record_views_created(instance)
    for name in marts:
        event = instance.get_latest_materialization_event(dg.AssetKey(name))
        assert event is not None and event.asset_materialization.metadata["view"].value == name
