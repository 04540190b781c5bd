"""Bring a database to the current schema: Alembic migrations, then the SQL models' views, then seed rules."""

from __future__ import annotations

from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from leadscore_pipeline.db.engine import engine_for
from leadscore_pipeline.db.rebucket import follow_setting
from leadscore_pipeline.db.urls import libpq_url, sqlalchemy_url
from leadscore_pipeline.rules import seed_first_version
from leadscore_pipeline.scoring.params import DEFAULT_RULES
from leadscore_pipeline.settings import get_settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Dagster's own storage keeps an `alembic_version` table in the same database; ours has its own name.
VERSION_TABLE = "leadscore_alembic_version"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("postgresql://x/y")).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def seed_default_rules(engine: Engine) -> None:
    """SPEC §4: the default rules are seeded only when the rules table is empty; the set found or seeded is
    rule version 1 when none is recorded yet."""
    with engine.begin() as conn:
        conn.exec_driver_sql("lock table rules in exclusive mode")
        if conn.exec_driver_sql("select count(*) from rules").scalar_one() == 0:
            conn.exec_driver_sql(
                "insert into rules (event_type, points, active) values "
                + ", ".join(f"('{event_type}', {points}, true)" for event_type, points in DEFAULT_RULES.items())
            )
        seed_first_version(conn)


def migrate(url: str) -> None:
    """Raises BucketCountMismatch when LEADSCORE_LEAD_BUCKETS differs from a database with history's split."""
    from leadscore_pipeline.db.views import apply_sql_models

    command.upgrade(alembic_config(url), "head")
    engine = engine_for(url)
    apply_sql_models(engine)
    seed_default_rules(engine)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        follow_setting(conn, get_settings().lead_buckets)
