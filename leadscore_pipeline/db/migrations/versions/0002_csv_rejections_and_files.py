"""CSV channels: rejected rows kept with file, line and raw text; dropped files remembered by content.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table ingest_rejections (
            id           bigint generated always as identity primary key,
            file_name    text not null,
            line         integer not null,
            raw          text not null,
            reason       text not null,
            event_id     text,
            channel      text not null,
            received_at  timestamptz not null
        );
        create index ingest_rejections_event_id on ingest_rejections (event_id);

        -- A dropped file lands once per content, however often it is dropped.
        create table landed_files (
            sha256       text primary key,
            file_name    text not null,
            accepted     integer not null,
            rejected     integer not null,
            landed_at    timestamptz not null default now()
        );
        """
    )


def downgrade() -> None:
    op.execute("drop table landed_files, ingest_rejections")
