"""Alembic environment: runs our migrations online against the configured URL."""

from alembic import context
from sqlalchemy import create_engine, pool

from leadscore_pipeline.db.migrate import VERSION_TABLE

config = context.config


def run_migrations_online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, version_table=VERSION_TABLE, transaction_per_migration=True)
        with context.begin_transaction():
            # Two processes starting at once must not both run the same migration.
            connection.exec_driver_sql("select pg_advisory_xact_lock(7406001)")
            context.run_migrations()


run_migrations_online()
