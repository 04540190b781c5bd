"""Test fixtures: a real Postgres (embedded unless LEADSCORE_TEST_DATABASE_URL is set), one database per run."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from leadscore_pipeline import clock
from leadscore_pipeline.db.embedded import drop_database, ensure_database, start_embedded, stop_embedded
from leadscore_pipeline.db.engine import engine_for
from leadscore_pipeline.db.migrate import migrate, seed_default_rules
from leadscore_pipeline.db.urls import libpq_url
from leadscore_pipeline.settings import get_settings
from tests.frozen import NOW
from tests.settings_env import settings_env

DERIVED_AND_RAW = (
    "raw_deliveries, clean_events, lead_scores, score_history, current_scores, rules, ingest_rejections, landed_files,"
    " daily_event_counts, lead_event_stats, quarantined_deliveries, bulk_progress, split_events, rule_versions,"
    " identity_links, lead_aliases, identity_rescores, restaged_leads"
)
SERVING_AGGREGATES_RESET = """
    update serving_counts set leads = 0, total_points = 0, cold = 0, warm = 0, hot = 0, qualified = 0,
        events = 0, duplicates = 0, conflicts = 0;
    update rejection_counts set rejections = 0;
    truncate company_totals, event_type_totals;
"""


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process code reads a fixed now, so no test depends on the day or hour it runs (end-to-end
    processes keep the real clock and their tests time events relative to it)."""
    monkeypatch.setattr(clock, "utc_now", lambda: NOW)


@pytest.fixture(autouse=True)
def test_client_host():
    """TestClient sends `Host: testserver`: listed here, as a deployment lists the names it is reached by."""
    with settings_env(LEADSCORE_ALLOWED_HOSTS="testserver"):
        yield


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    configured = os.environ.get("LEADSCORE_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    # A folder of our own, not pytest's numbered ones: another pytest session prunes those.
    folder = Path(tempfile.mkdtemp(prefix="leadscore-test-pg-"))
    data_dir = folder / "pgdata"
    try:
        yield start_embedded(data_dir)
    finally:
        stop_embedded(data_dir)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh database for this test run, migrated; dropped at the end so nothing is left behind."""
    name = f"leadscore_test_{os.getpid()}_{secrets.token_hex(3)}"
    url = ensure_database(postgres_server_url, name)
    os.environ["LEADSCORE_DATABASE_URL"] = url
    get_settings.cache_clear()
    migrate(url)
    yield url
    engine_for(url).dispose()
    drop_database(postgres_server_url, name)


def reset_database(url: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(f"truncate {DERIVED_AND_RAW} restart identity")
        # The aggregates kept by triggers (migration 0005): its truncate triggers zero them; made sure of here.
        conn.execute(SERVING_AGGREGATES_RESET)
        conn.execute(
            """update pipeline_state set deduped_through = 0, scored_through = 0, served_through = 0,
                   counted_through = 0, stats_through = 0, bulk_through = 0, split_through = 0,
                   identity_max_emails = null, identity_generation = 0,
                   rules_version = 1, last_microbatch_at = null, last_replay_at = null, last_decay_at = null"""
        )
        conn.execute("update bucket_state set rules_version = 1, updated_at = null")
    seed_default_rules(engine_for(url))


@pytest.fixture
def db(database_url: str) -> Iterator[str]:
    """The test database, emptied and reseeded with the default rules before the test."""
    reset_database(database_url)
    yield database_url


@pytest.fixture
def conn(db: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(libpq_url(db), autocommit=True) as connection:
        yield connection
