"""Quarantined deliveries: what a pipeline step could not process, set aside so everything else goes on;
analytics keys that no stored value can overflow.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- One row per delivery set aside; every later read of raw_deliveries skips these seqs.
        create table quarantined_deliveries (
            seq             bigint primary key,
            event_id        text not null,
            -- Cut short: the whole key may be what broke an index.
            lead_key        text not null,
            step            text not null,
            reason          text not null,
            quarantined_at  timestamptz not null default now()
        );

        -- The analytics steps run after others have used an event, so they must not fail on its data:
        -- free text in their keys is hashed, or the key is the lead alone, which clean_events indexes already.
        alter table daily_event_counts drop constraint daily_event_counts_pkey;
        create unique index daily_event_counts_key on daily_event_counts (lead_bucket, day, md5(event_type));
        alter table lead_event_stats drop constraint lead_event_stats_pkey;
        create index lead_event_stats_lead on lead_event_stats (lead_key);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        drop index lead_event_stats_lead;
        alter table lead_event_stats add primary key (lead_key, event_type);
        drop index daily_event_counts_key;
        alter table daily_event_counts add primary key (lead_bucket, day, event_type);
        drop table quarantined_deliveries;
        """
    )
