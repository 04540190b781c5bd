"""lead_scores and current_scores partitioned by lead bucket, as 0009 did clean_events and score_history.

A rebuild then swaps a bucket's scores in too (the decay step does when most of a bucket's served rows change, as
in a first import), instead of inserting them into a table with a dozen indexes. The keys become
(lead_key, lead_bucket); every other index, trigger and default moves over unchanged, read off the catalog.
The SQL models' views over these tables are dropped here and made again by `migrate` after the migrations.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from alembic import op

from leadscore_pipeline.db.partitions import PARTITIONED, create_partitions, name_partition_indexes

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TABLES = ("lead_scores", "current_scores")


def _catalog(bind, table: str) -> tuple[list[str], list[str], list[str]]:
    """Its secondary indexes' and triggers' definitions, and its stored (not generated) columns."""
    indexes = bind.exec_driver_sql(
        f"""select pg_get_indexdef(indexrelid) from pg_index
            where indrelid = '{table}'::regclass and not indisprimary
              and right(pg_get_indexdef(indexrelid), 13) <> '(lead_bucket)'"""  # pruning does a bucket index's job
    ).fetchall()
    triggers = bind.exec_driver_sql(
        f"select pg_get_triggerdef(oid) from pg_trigger where tgrelid = '{table}'::regclass and not tgisinternal"
    ).fetchall()
    columns = bind.exec_driver_sql(
        f"""select attname from pg_attribute where attrelid = '{table}'::regclass and attnum > 0
            and not attisdropped and attgenerated = '' order by attnum"""
    ).fetchall()
    return [i for (i,) in indexes], [t for (t,) in triggers], [c for (c,) in columns]


def _rebuild(bind, table: str, *, partitioned: bool, buckets: int) -> None:
    indexes, triggers, columns = _catalog(bind, table)
    old = f"{table}_old"
    key = "lead_key, lead_bucket" if partitioned else "lead_key"
    statements = [
        f"alter table {table} rename to {old}",
        f"alter table {old} rename constraint {table}_pkey to {old}_pkey",
    ]
    statements += [f"drop index {index.split()[2 if index.startswith('CREATE INDEX') else 3]}" for index in indexes]
    statements += [
        f"create table {table} (like {old} including defaults including generated)"
        + (" partition by list (lead_bucket)" if partitioned else ""),
        create_partitions(table, buckets) if partitioned else "",
        f"insert into {table} ({', '.join(columns)}) select {', '.join(columns)} from {old}",
        f"drop table {old}",
        # Keys and indexes after the rows: one sort each, not an index update per row.
        f"alter table {table} add constraint {table}_pkey primary key ({key})",
        *(index.replace(" ON ONLY ", " ON ") for index in indexes),
        *triggers,  # after the copy: the aggregates they keep count its rows already
    ]
    if not partitioned:
        statements.append(f"create index {table}_bucket on {table} (lead_bucket)")
    for statement in statements:
        if statement:
            bind.exec_driver_sql(statement)


def upgrade() -> None:
    bind = op.get_bind()
    (buckets,) = bind.exec_driver_sql("select lead_buckets from pipeline_state").fetchone()
    bind.exec_driver_sql("drop view if exists leaderboard cascade")
    for table in TABLES:
        _rebuild(bind, table, partitioned=True, buckets=buckets)
    for table in PARTITIONED:
        bind.exec_driver_sql(name_partition_indexes(table))


def downgrade() -> None:
    bind = op.get_bind()
    bind.exec_driver_sql("drop view if exists leaderboard cascade")
    for table in TABLES:
        _rebuild(bind, table, partitioned=False, buckets=0)
