"""Analytics tables (events per day and type, per-lead type stats) and score change tracking for the stream.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- Events per UTC day and type, by lead bucket so a replay of some buckets rebuilds just theirs.
        create table daily_event_counts (
            lead_bucket  smallint not null,
            day          date not null,
            event_type   text not null,
            events       integer not null,
            primary key (lead_bucket, day, event_type)
        );

        -- Per lead and event type: events, points, and the purchases this type came just before.
        create table lead_event_stats (
            lead_key     text not null,
            lead_bucket  smallint not null,
            event_type   text not null,
            events       integer not null,
            points       integer not null,
            conversions  integer not null,
            primary key (lead_key, event_type)
        );

        alter table pipeline_state
            add column counted_through bigint not null default 0,
            add column stats_through bigint not null default 0;

        -- Every rewrite of a current score gets a new change id; the live stream follows them.
        create sequence score_changes;
        alter table current_scores
            add column previous_score integer,
            add column change_id bigint not null default nextval('score_changes');
        create index current_scores_change on current_scores (change_id);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        drop index current_scores_change;
        alter table current_scores drop column change_id, drop column previous_score;
        drop sequence score_changes;
        alter table pipeline_state drop column counted_through, drop column stats_through;
        drop table lead_event_stats, daily_event_counts;
        """
    )
