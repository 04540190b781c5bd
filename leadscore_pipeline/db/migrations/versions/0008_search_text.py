"""Lead search on one lower-cased column: `search_text` (lead_key, name and company, one per line), kept by Postgres
as a generated column, with one trigram GIN index instead of the three-column one of 0006.

A search is then one `like` on text already lower-cased (not three `ilike`s that lower every row they test), and
api/reads.py can give the index only the rarest word of a long term (see LeadFilter.where). The newline keeps
fields apart: pg_trgm makes no trigram across it, and a term holding one is searched field by field instead.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _has_trigram(bind) -> bool:
    return bind.exec_driver_sql("select 1 from pg_extension where extname = 'pg_trgm'").first() is not None


def upgrade() -> None:
    op.execute(
        r"""
        alter table current_scores add column search_text text generated always as (
            lower(lead_key || E'\n' || coalesce(name, '') || E'\n' || coalesce(company, ''))) stored;
        drop index if exists current_scores_search;
        """
    )
    if _has_trigram(op.get_bind()):
        op.execute("create index current_scores_search on current_scores using gin (search_text gin_trgm_ops);")
    op.execute("analyze current_scores;")  # the planner weighs a search by this column's statistics


def downgrade() -> None:
    op.execute("drop index if exists current_scores_search; alter table current_scores drop column search_text;")
    if _has_trigram(op.get_bind()):
        op.execute(
            """create index current_scores_search on current_scores using gin (
                lead_key gin_trgm_ops, name gin_trgm_ops, company gin_trgm_ops);"""
        )
