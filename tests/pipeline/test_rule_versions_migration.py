"""Migration 0014 on a database that has rules already: they become rule version 1, unchanged, and the scoring
steps go on writing history (with its new note column) as before."""

from __future__ import annotations

import psycopg
from alembic import command

from leadscore_pipeline.db.migrate import alembic_config
from leadscore_pipeline.db.urls import libpq_url
from tests.pipeline.test_serving_tables import fresh_database_url  # noqa: F401 (a fixture)


def test_existing_rules_become_version_1_and_the_downgrade_undoes_it(fresh_database_url):  # noqa: F811
    config = alembic_config(fresh_database_url)
    command.upgrade(config, "0013")
    with psycopg.connect(libpq_url(fresh_database_url), autocommit=True) as conn:
        conn.execute("insert into rules (event_type, points, active) values ('PURCHASE', 120, true), ('X', -5, false)")
        conn.execute("update pipeline_state set rules_version = 7")
        command.upgrade(config, "0014")
        version, kind, rules, rules_version, change = conn.execute(
            "select version, kind, rules, rules_version, change from rule_versions"
        ).fetchone()
        assert (version, kind, rules_version) == (1, "seed", 7)
        assert rules == [
            {"event_type": "PURCHASE", "points": 120, "active": True, "max_per_day": None},
            {"event_type": "X", "points": -5, "active": False, "max_per_day": None},
        ]
        assert [c["event_type"] for c in change] == ["PURCHASE", "X"] and change[0]["before"] is None
        command.downgrade(config, "0013")
        assert conn.execute("select to_regclass('rule_versions')").fetchone()[0] is None
        columns = {
            c for (c,) in conn.execute("select column_name from information_schema.columns where table_name = 'rules'")
        }
        assert "max_per_day" not in columns
