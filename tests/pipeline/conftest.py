"""Pipeline fixtures: a Dagster instance whose storage is the test run's own Postgres database."""

from __future__ import annotations

import dagster as dg
import pytest

from leadscore_pipeline.db.urls import dagster_url
from leadscore_pipeline.resources import PostgresResource


@pytest.fixture
def instance(database_url: str):
    overrides = {"storage": {"postgres": {"postgres_url": dagster_url(database_url)}}}
    with dg.instance_for_test(overrides=overrides) as test_instance:
        test_instance.wipe()  # the sensors read past runs: each test starts without another test's
        yield test_instance


@pytest.fixture
def tick(db, instance):
    """Evaluate a sensor once against the test database and instance."""

    def evaluate(sensor: dg.SensorDefinition) -> dg.SensorResult:
        context = dg.build_sensor_context(instance=instance, resources={"postgres": PostgresResource(database_url=db)})
        return sensor.evaluate_tick(context)

    return evaluate
