"""clean_events and score_history partitioned by lead bucket, and the bucket count kept in pipeline_state.

A replay then rebuilds a bucket into a fresh table and swaps it in (`db.partitions`) instead of diffing it row by
row against the old one. Keys must hold the partition column, so clean_events' keys become (event_id, lead_bucket)
and (seq, lead_bucket): an event's one clean row is the dedup's job, checked by the `unique_event_ids` asset check.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from alembic import op

from leadscore_pipeline.db.partitions import create_partitions

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BUCKETS = 16  # what 0001's generated column makes (hashtext & 15)
_TRIGGERS = {"INSERT": "new table as new_rows", "DELETE": "old table as old_rows", "UPDATE": None}


def _clean_events_triggers() -> str:
    """Migration 0005's aggregate triggers, again on the new table (the functions are kept)."""
    statements = []
    for operation in ("INSERT", "DELETE", "UPDATE"):
        name = f"clean_events_totals_{operation.lower()}"
        tables = _TRIGGERS[operation] or "old table as old_rows new table as new_rows"
        statements.append(
            f"""create trigger {name} after {operation.lower()} on clean_events referencing {tables}
                for each statement execute function {name}();"""
        )
    statements.append(
        """create trigger clean_events_totals_truncate after truncate on clean_events
           for each statement execute function clean_events_totals_truncate();"""
    )
    return "\n".join(statements)


def upgrade() -> None:
    op.execute(
        f"""
        alter table pipeline_state add column lead_buckets smallint not null default {BUCKETS};

        alter table clean_events rename to clean_events_unpartitioned;
        alter index clean_events_pkey rename to clean_events_unpartitioned_pkey;
        alter index clean_events_seq_key rename to clean_events_unpartitioned_seq_key;
        alter index clean_events_lead rename to clean_events_unpartitioned_lead;
        create table clean_events (
            event_id     text not null,
            seq          bigint not null,
            lead_key     text not null,
            lead_bucket  smallint not null,
            event_type   text not null,
            event_time   timestamptz not null,
            email        text,
            name         text,
            company      text,
            source       text not null,
            duplicates   integer not null default 0,
            conflicts    integer not null default 0,
            constraint clean_events_pkey primary key (event_id, lead_bucket),
            constraint clean_events_seq_key unique (seq, lead_bucket)
        ) partition by list (lead_bucket);
        create index clean_events_lead on clean_events (lead_key);

        alter table score_history rename to score_history_unpartitioned;
        alter index score_history_pkey rename to score_history_unpartitioned_pkey;
        create table score_history (
            lead_key     text not null,
            lead_bucket  smallint not null,
            event_time   timestamptz not null,
            event_id     text not null,
            event_type   text not null,
            points       integer not null,
            decay        integer not null,
            change       integer not null,
            score_after  integer not null,
            constraint score_history_pkey primary key (lead_key, event_time, event_id, lead_bucket)
        ) partition by list (lead_bucket);

        {create_partitions("clean_events", BUCKETS)}
        {create_partitions("score_history", BUCKETS)}

        insert into clean_events select * from clean_events_unpartitioned;
        insert into score_history select * from score_history_unpartitioned;
        drop table clean_events_unpartitioned, score_history_unpartitioned;
        -- After the copy: its rows are counted in serving_counts already.
        {_clean_events_triggers()}
        """
    )


def downgrade() -> None:
    op.execute(
        """
        create table clean_events_unpartitioned (like clean_events including defaults);
        insert into clean_events_unpartitioned select * from clean_events;
        create table score_history_unpartitioned (like score_history including defaults);
        insert into score_history_unpartitioned select * from score_history;
        drop table clean_events, score_history;
        alter table clean_events_unpartitioned rename to clean_events;
        alter table clean_events add primary key (event_id), add unique (seq);
        create index clean_events_lead on clean_events (lead_key);
        alter table score_history_unpartitioned rename to score_history;
        alter table score_history add primary key (lead_key, event_time, event_id);
        alter table pipeline_state drop column lead_buckets;
        """
        + _clean_events_triggers()
    )
