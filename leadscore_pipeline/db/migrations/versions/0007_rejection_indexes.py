"""Rejection list indexes: newest first, and one file's rows, without scanning or sorting ingest_rejections.

The file name is a client's text of any length, so it is indexed by its md5 (a btree entry holds ~2.7 KB).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create index ingest_rejections_recent on ingest_rejections (received_at desc, id);
        create index ingest_rejections_file on ingest_rejections (md5(file_name), received_at desc, id);
        """
    )


def downgrade() -> None:
    op.execute("drop index ingest_rejections_recent, ingest_rejections_file;")
