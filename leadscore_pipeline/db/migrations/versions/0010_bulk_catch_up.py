"""The bulk path's bookkeeping: the landing seq a catch-up rebuilds through, and which step is done for which bucket.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- A backlog too big for one micro-batch is rebuilt bucket group by bucket group through this seq (the fence);
        -- past it, micro-batches take over. 0: none was ever started.
        alter table pipeline_state add column bulk_through bigint not null default 0;
        -- Each step of a catch-up marks its buckets done through the fence; the last one moves the step's watermark.
        create table bulk_progress (
            step         text not null,
            lead_bucket  smallint not null,
            through      bigint not null,
            primary key (step, lead_bucket)
        );
        """
    )


def downgrade() -> None:
    op.execute("drop table bulk_progress; alter table pipeline_state drop column bulk_through;")
