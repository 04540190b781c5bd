"""Read indexes: one per lead-list sort order and filter on current_scores, trigram search, and the small
aggregates' lookups, so every API read is an index range scan (see api/reads.py).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# One index per lead-list sort key, read forwards for one direction and backwards for the other (api/reads.py:
# ties go by lead_key ascending in the key's natural direction, descending when reversed). score is
# current_scores_rank (0001), read backwards for score asc. Nulls first going up, last going down.
SORT_INDEXES = {
    "current_scores_last_event": "last_event_at, lead_key",
    **{f"current_scores_{key}": f"{key} nulls first, lead_key" for key in ("name", "company", "email")},
}
FILTER_INDEXES = {
    # the tier filter in rank order, and the company filter (case-insensitive) in rank order; tier included so
    # that a company + tier count is an index-only scan of that company's entries
    "current_scores_tier_rank": "(tier, score desc, lead_key)",
    "current_scores_company_rank": "(lower(company), score desc, lead_key) include (tier)",
}


def _has_trigram(bind) -> bool:
    # pg_trgm ships with the embedded server (PG 18) and stock PG 15 packages; without it search scans.
    return bind.exec_driver_sql("select 1 from pg_available_extensions where name = 'pg_trgm'").first() is not None


def upgrade() -> None:
    statements = [f"create index {name} on current_scores ({columns});" for name, columns in SORT_INDEXES.items()]
    statements += [f"create index {name} on current_scores {columns};" for name, columns in FILTER_INDEXES.items()]
    statements += [
        "create index company_totals_lower on company_totals (lower(company)) include (leads);",
        # trends read days from a start on; the day alone, so no event type is too long for the index
        "create index daily_event_counts_day on daily_event_counts (day);",
    ]
    if _has_trigram(op.get_bind()):
        statements += [
            "create extension if not exists pg_trgm;",
            # one multicolumn GIN: `col ilike '%text%'` on any of the three is a bitmap scan of it. The lead_key is
            # the normalized email (or id:<external id>), so the email column itself is not indexed twice.
            """create index current_scores_search on current_scores using gin (
                lead_key gin_trgm_ops, name gin_trgm_ops, company gin_trgm_ops);""",
        ]
    op.execute("\n".join(statements))


def downgrade() -> None:
    names = [*SORT_INDEXES, *FILTER_INDEXES, "company_totals_lower", "daily_event_counts_day"]
    op.execute(f"drop index if exists current_scores_search; drop index {', '.join(names)};")
