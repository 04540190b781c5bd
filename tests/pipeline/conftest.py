"""Pipeline fixtures: a Dagster instance whose storage is the test run's own Postgres database."""

from __future__ import annotations

import dagster as dg
import pytest

from leadscore_pipeline.db.urls import dagster_url


@pytest.fixture
def instance(database_url: str):
    overrides = {"storage": {"postgres": {"postgres_url": dagster_url(database_url)}}}
    with dg.instance_for_test(overrides=overrides) as test_instance:
        test_instance.wipe()  # the sensors read past runs: each test starts without another test's
        yield test_instance
