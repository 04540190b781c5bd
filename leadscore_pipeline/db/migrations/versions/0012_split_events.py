"""Events whose deliveries landed under leads of different buckets (a redelivery under another lead key).

A bucket's dedup rebuild reads the deliveries of its own buckets, and of these events the deliveries in other
buckets too: the first delivery of an event decides its bucket, wherever it is. Kept through
pipeline_state.split_through by the rebuilds themselves (refresh._note_split_events).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table split_events (event_id text primary key);
        alter table pipeline_state add column split_through bigint not null default 0;
        """
    )


def downgrade() -> None:
    op.execute("drop table split_events; alter table pipeline_state drop column split_through;")
