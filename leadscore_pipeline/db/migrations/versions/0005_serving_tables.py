"""Serving tables: current_scores widened into the one table the leaderboard and lead list read, and small
aggregates (totals, companies, event types) kept exact by statement-level triggers in every writer's transaction.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# current_scores' new columns, copied from lead_scores by the decay step (every path) and backfilled here.
SERVING_COLUMNS = (
    "email text",
    "name text",
    "company text",
    "score_at_last_event integer not null",
    "event_count integer not null",
    "first_event_at timestamptz not null",
    "last_event_at timestamptz not null",
    "rules_version integer not null",
)
TIERS = ("cold", "warm", "hot", "qualified")

# Every trigger that changes an aggregate row first locks the one serving_counts row: the pipeline's writers of
# the aggregates then go one at a time from that point to their commit, so their row locks on company and event
# type rows (taken by two statements, a delete and a copy) can never be taken in crossing orders (a deadlock).
# CSV landings count rejections in a row of their own, so an upload never waits for a pipeline transaction.
_GUARD = "perform 1 from serving_counts where id = 1 for update;"


def _changes(operation: str, columns: str) -> str:
    """The rows a statement changed, signed: +1 for what it added, -1 for what it removed."""
    added = f"select 1 as sign, {columns} from new_rows"
    removed = f"select -1 as sign, {columns} from old_rows"
    return {"INSERT": added, "DELETE": removed, "UPDATE": f"{added} union all {removed}"}[operation]


def _current_scores_body(changes: str) -> str:
    tiers = ", ".join(f"coalesce(sum(sign) filter (where tier = '{t}'), 0) as {t}" for t in TIERS)
    return f"""
        {_GUARD}
        with delta as (
            select coalesce(sum(sign), 0) as leads, coalesce(sum(sign * score), 0) as total_points, {tiers}
            from ({changes}) as changes
        )
        update serving_counts as s set
            leads = s.leads + d.leads,
            total_points = s.total_points + d.total_points,
            {", ".join(f"{t} = s.{t} + d.{t}" for t in TIERS)}
        from delta as d where s.id = 1;
        insert into company_totals as t (company, leads, total_score)
            select company, sum(sign), sum(sign * score)
            from ({changes}) as changes
            where company is not null
            group by company
            having sum(sign) <> 0 or sum(sign * score) <> 0
        on conflict (company) do update
            set leads = t.leads + excluded.leads, total_score = t.total_score + excluded.total_score;
        delete from company_totals where leads = 0;
    """


def _clean_events_body(changes: str) -> str:
    return f"""
        {_GUARD}
        with delta as (
            select coalesce(sum(sign), 0) as events,
                   coalesce(sum(sign * duplicates), 0) as duplicates,
                   coalesce(sum(sign * conflicts), 0) as conflicts
            from ({changes}) as changes
        )
        update serving_counts as s set
            events = s.events + d.events,
            duplicates = s.duplicates + d.duplicates,
            conflicts = s.conflicts + d.conflicts
        from delta as d where s.id = 1;
    """


def _lead_event_stats_body(changes: str) -> str:
    return f"""
        {_GUARD}
        insert into event_type_totals as t (event_type, events, unique_leads, points, conversions, lead_rows)
            select event_type,
                   sum(sign * events),
                   coalesce(sum(sign) filter (where events > 0), 0),
                   sum(sign * points),
                   sum(sign * conversions),
                   sum(sign)
            from ({changes}) as changes
            group by event_type
        on conflict (md5(event_type)) do update set
            events = t.events + excluded.events,
            unique_leads = t.unique_leads + excluded.unique_leads,
            points = t.points + excluded.points,
            conversions = t.conversions + excluded.conversions,
            lead_rows = t.lead_rows + excluded.lead_rows;
        delete from event_type_totals where lead_rows = 0;
    """


def _ingest_rejections_body(changes: str) -> str:
    return f"""
        update rejection_counts set rejections = rejections + (select coalesce(sum(sign), 0) from ({changes}) as c)
        where id = 1;
    """


# table -> (columns the aggregates need, trigger body, operations, what a truncate of the table resets)
_MAINTAINED = {
    "current_scores": (
        "score, tier, company",
        _current_scores_body,
        ("INSERT", "DELETE", "UPDATE"),
        f"""{_GUARD}
            update serving_counts set leads = 0, total_points = 0, {", ".join(f"{t} = 0" for t in TIERS)};
            delete from company_totals;""",
    ),
    "clean_events": (
        "duplicates, conflicts",
        _clean_events_body,
        ("INSERT", "DELETE", "UPDATE"),
        f"{_GUARD} update serving_counts set events = 0, duplicates = 0, conflicts = 0;",
    ),
    "lead_event_stats": (
        "event_type, events, points, conversions",
        _lead_event_stats_body,
        ("INSERT", "DELETE", "UPDATE"),
        f"{_GUARD} delete from event_type_totals;",
    ),
    "ingest_rejections": (
        "1 as one",
        _ingest_rejections_body,
        ("INSERT", "DELETE"),
        "update rejection_counts set rejections = 0;",
    ),
}


def _triggers_sql() -> str:
    statements = []
    for table, (columns, body, operations, on_truncate) in _MAINTAINED.items():
        for operation in operations:
            name = f"{table}_totals_{operation.lower()}"
            tables = {
                "INSERT": "new table as new_rows",
                "DELETE": "old table as old_rows",
                "UPDATE": "old table as old_rows new table as new_rows",
            }[operation]
            # A statement that changed no row (a delete of leads not served yet) leaves the aggregates alone.
            unchanged = f"if not exists (select from {'old_rows' if operation == 'DELETE' else 'new_rows'}) then"
            statements.append(
                f"""create function {name}() returns trigger language plpgsql as $$
                    begin
                        {unchanged} return null; end if;
                        {body(_changes(operation, columns))}
                        return null;
                    end $$;
                    create trigger {name} after {operation.lower()} on {table} referencing {tables}
                        for each statement execute function {name}();"""
            )
        statements.append(
            f"""create function {table}_totals_truncate() returns trigger language plpgsql as $$
                begin {on_truncate} return null; end $$;
                create trigger {table}_totals_truncate after truncate on {table}
                    for each statement execute function {table}_totals_truncate();"""
        )
    return "\n".join(statements)


def upgrade() -> None:
    columns = [column.split()[0] for column in SERVING_COLUMNS]
    op.execute(
        f"""
        alter table current_scores {", ".join(f"add column {c.split()[0]} {c.split()[1]}" for c in SERVING_COLUMNS)};
        update current_scores c set {", ".join(f"{name} = l.{name}" for name in columns)}
            from lead_scores l where l.lead_key = c.lead_key;
        -- A current score without a scored lead was never served (the leaderboard joined the two).
        delete from current_scores where score_at_last_event is null;
        alter table current_scores
            {", ".join(f"alter column {c.split()[0]} set not null" for c in SERVING_COLUMNS if "not null" in c)};

        create table serving_counts (
            id            smallint primary key default 1 check (id = 1),
            leads         bigint not null default 0,
            total_points  bigint not null default 0,
            {", ".join(f"{t} bigint not null default 0" for t in TIERS)},
            events        bigint not null default 0,
            duplicates    bigint not null default 0,
            conflicts     bigint not null default 0
        );
        create table rejection_counts (
            id          smallint primary key default 1 check (id = 1),
            rejections  bigint not null default 0
        );
        -- The summary's numbers in one row: counts of current_scores, clean_events and ingest_rejections.
        create view serving_totals as
            select c.id, c.leads, c.total_points, {", ".join(f"c.{t}" for t in TIERS)},
                   c.events, c.duplicates, c.conflicts, r.rejections
            from serving_counts c cross join rejection_counts r;

        create table company_totals (
            company      text primary key,
            leads        integer not null,
            total_score  bigint not null
        );
        create index company_totals_rank on company_totals (leads desc, total_score desc, company);

        create table event_type_totals (
            event_type    text not null,
            events        bigint not null,
            unique_leads  integer not null,
            points        bigint not null,
            conversions   integer not null,
            -- rows of lead_event_stats of this type: the row goes when the last one does
            lead_rows     integer not null
        );
        -- Keyed by its hash, like daily_event_counts (0004): the stats step must not fail on a long event type.
        create unique index event_type_totals_key on event_type_totals (md5(event_type));

        insert into serving_counts (leads, total_points, {", ".join(TIERS)}, events, duplicates, conflicts)
            select s.*, e.* from (
                select count(*), coalesce(sum(score), 0), {", ".join(f"count(*) filter (where tier = '{t}')" for t in TIERS)}
                from current_scores
            ) s, (
                select count(*), coalesce(sum(duplicates), 0), coalesce(sum(conflicts), 0) from clean_events
            ) e;
        insert into rejection_counts (rejections) select count(*) from ingest_rejections;
        insert into company_totals (company, leads, total_score)
            select company, count(*), sum(score) from current_scores where company is not null group by company;
        insert into event_type_totals (event_type, events, unique_leads, points, conversions, lead_rows)
            select event_type, sum(events), count(*) filter (where events > 0), sum(points), sum(conversions), count(*)
            from lead_event_stats group by event_type;

        {_triggers_sql()}
        """
    )


def downgrade() -> None:
    drops = []
    for table, (_, _, operations, _) in _MAINTAINED.items():
        for name in [f"{table}_totals_{o.lower()}" for o in operations] + [f"{table}_totals_truncate"]:
            drops.append(f"drop trigger {name} on {table}; drop function {name}();")
    op.execute(
        f"""
        {" ".join(drops)}
        drop view serving_totals;
        drop table event_type_totals, company_totals, rejection_counts, serving_counts;
        alter table current_scores {", ".join(f"drop column {c.split()[0]}" for c in SERVING_COLUMNS)};
        """
    )
