"""Dagster resources: the Postgres database the pipeline reads and writes."""

from __future__ import annotations

import dagster as dg
import psycopg

from leadscore_pipeline.db.urls import libpq_url


class PostgresResource(dg.ConfigurableResource):
    """LeadScore's Postgres database (the same server holds Dagster's own storage)."""

    database_url: str

    def connect(self) -> psycopg.Connection:
        # Autocommit: every write happens inside an explicit `conn.transaction()` block.
        return psycopg.connect(libpq_url(self.database_url), autocommit=True)
