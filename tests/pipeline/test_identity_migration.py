"""Migration 0013 on a database with history: it backfills the clean events' external ids and the identity links
from what is stored, and the sensor resolves the aliases at once (the upgrade itself cannot know the setting)."""

from __future__ import annotations

import psycopg
from alembic import command

from leadscore_pipeline.db.identity import pending_identity_work
from leadscore_pipeline.db.migrate import alembic_config
from leadscore_pipeline.db.urls import libpq_url
from leadscore_pipeline.microbatch import run_all_steps
from leadscore_pipeline.refresh import Scope
from tests.pipeline.helpers import event, land
from tests.pipeline.test_serving_tables import fresh_database_url  # noqa: F401 (a fixture)

LINKS = "select lead_bucket, email, external_id, events, first_at from identity_links order by email, external_id"
IDS = "select event_id, external_id from clean_events order by event_id"


def test_0013_backfills_links_from_stored_events_and_the_sensor_resolves_them(fresh_database_url):  # noqa: F811
    config = alembic_config(fresh_database_url)
    command.upgrade(config, "head")
    with psycopg.connect(libpq_url(fresh_database_url), autocommit=True) as conn:
        land(
            conn,
            {"event_id": "c1", "event_type": "PAGE_VIEW", "timestamp": "2026-11-01T10:00:00Z", "lead_id": "crm-1"},
            event("c2", "PAGE_VIEW", "2026-11-02T10:00:00Z", email="a@x.io", lead_id="crm-1"),
            event("c3", "PAGE_VIEW", "2026-11-03T10:00:00Z", email="a@x.io"),
        )
        run_all_steps(conn, Scope(incremental=True))
        links, ids = conn.execute(LINKS).fetchall(), conn.execute(IDS).fetchall()
        assert len(links) == 2 and ids == [("c1", "crm-1"), ("c2", "crm-1"), ("c3", None)]

        command.downgrade(config, "0012")
        command.upgrade(config, "0013")
        assert conn.execute(LINKS).fetchall() == links
        assert conn.execute(IDS).fetchall() == ids
        assert conn.execute("select count(*) from lead_aliases").fetchone() == (0,)
        assert pending_identity_work(conn)  # the sensor starts a micro-batch for it

        command.upgrade(config, "head")
        run_all_steps(conn, Scope(incremental=True))
        assert conn.execute("select identity_key, lead_key from lead_aliases").fetchall() == [("id:crm-1", "a@x.io")]
        assert not pending_identity_work(conn)
